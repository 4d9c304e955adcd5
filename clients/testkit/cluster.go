package testkit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
)

// Cluster runs n ordo processes, numbered 1..n. With proxies, every peer
// link i->j goes through its own LinkProxy so a test can cut links;
// clients always connect to nodes directly.
type Cluster struct {
	t testing.TB
	N int
	// Args are added to every node's command line when it is started
	// (change them between starts to restart a node differently).
	Args []string
	// Static is the membership given with --peers (default: every node).
	// A node outside it is started with --seed naming node Seed (default
	// 1): it joins the cluster. A Static of one node starts it alone,
	// without --peers, as a new cluster.
	Static  []int
	Seed    int
	ports   []int
	dirs    []string
	procs   []*Proc
	proxies [][]*LinkProxy

	// NodeArgs, if set, adds node i's own arguments after Args (a TLS
	// port, a certificate of its own).
	NodeArgs func(i int) []string
	// PeerAddr, if set, is the address members list for node i in --peers
	// and --seed (default Addr(i)): its TLS port with --tls-cluster (link
	// proxies do not follow it).
	PeerAddr func(i int) string
}

// NewCluster prepares a cluster of n nodes (none started yet), each with
// its own port and data directory.
func NewCluster(t testing.TB, n int, withProxies bool, args ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, N: n, Args: args, ports: make([]int, n+1), dirs: make([]string, n+1), procs: make([]*Proc, n+1)}
	// A failure in one node is often explained by another's log.
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range c.procs {
				if p != nil {
					t.Logf("node %d, last lines of its log:\n%s", i, lastLines(p.Logs(), 40))
				}
			}
		}
	})
	for i := 1; i <= n; i++ {
		c.ports[i] = FreePort(t)
		c.dirs[i] = t.TempDir()
	}
	if withProxies {
		c.proxies = make([][]*LinkProxy, n+1)
		for i := 1; i <= n; i++ {
			c.proxies[i] = make([]*LinkProxy, n+1)
			for j := 1; j <= n; j++ {
				if i != j {
					c.proxies[i][j] = NewLinkProxy(t, c.Addr(j))
				}
			}
		}
	}
	return c
}

// Addr is node i's client address.
func (c *Cluster) Addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.ports[i]) }

// Dir is node i's data directory.
func (c *Cluster) Dir(i int) string { return c.dirs[i] }

// Proc is node i's current process (nil before it was started).
func (c *Cluster) Proc(i int) *Proc { return c.procs[i] }

// All is every node id, 1..n.
func (c *Cluster) All() []int {
	ids := make([]int, c.N)
	for i := range ids {
		ids[i] = i + 1
	}
	return ids
}

// Except is nodes without the ids in drop.
func Except(nodes []int, drop ...int) []int {
	return slices.DeleteFunc(slices.Clone(nodes), func(i int) bool { return slices.Contains(drop, i) })
}

// NewJoinedCluster prepares a cluster grown by joins, as the guide's
// peer-to-peer mode grows one: node 1 starts alone, every other node
// with --seed naming node 1.
func NewJoinedCluster(t testing.TB, n int, args ...string) *Cluster {
	c := NewCluster(t, n, false, args...)
	c.Static = []int{1}
	return c
}

func (c *Cluster) membership(i int) []string {
	static := c.Static
	if static == nil {
		static = c.All()
	}
	switch {
	case len(static) == 1 && static[0] == i:
		return nil // alone: a new cluster
	case slices.Contains(static, i):
		var ps []string
		for _, j := range static {
			a := c.peerAddr(j)
			if j != i && c.proxies != nil {
				a = c.proxies[i][j].Addr()
			}
			ps = append(ps, fmt.Sprintf("%d:%s", j, a))
		}
		return []string{"--peers", strings.Join(ps, ",")}
	}
	seed := max(c.Seed, 1)
	a := c.peerAddr(seed)
	if c.proxies != nil {
		a = c.proxies[i][seed].Addr()
	}
	return []string{"--seed", fmt.Sprintf("%d:%s", seed, a)}
}

func (c *Cluster) peerAddr(i int) string {
	if c.PeerAddr != nil {
		return c.PeerAddr(i)
	}
	return c.Addr(i)
}

// Start (re)starts node i and waits until it accepts connections.
func (c *Cluster) Start(i int) *Proc {
	c.t.Helper()
	args := append([]string{"node", "--id", strconv.Itoa(i), "--port", strconv.Itoa(c.ports[i]),
		"--data-dir", c.dirs[i]}, c.membership(i)...)
	args = append(args, c.Args...)
	if c.NodeArgs != nil {
		args = append(args, c.NodeArgs(i)...)
	}
	c.procs[i] = StartOrdo(c.t, ProcConfig{Args: args, Port: c.ports[i], Name: fmt.Sprintf("node%d", i)})
	return c.procs[i]
}

// StartAll starts every node. On a new cluster (no node started before)
// it also waits until formation has settled: members started together
// with nothing published end up led by the highest id, which takes over
// from whoever led first about a leader timeout after it hears them.
// Tests then publish to a settled cluster rather than into that hand-over
// (under -race and load it can outlast the parking of a publish).
func (c *Cluster) StartAll() {
	c.t.Helper()
	fresh := true
	for i := 1; i <= c.N; i++ {
		fresh = fresh && c.procs[i] == nil
	}
	for i := 1; i <= c.N; i++ {
		c.Start(i)
	}
	if !fresh {
		return
	}
	var l int
	var last error
	if err := poll(LeaderTimeout, func() bool {
		l, last = c.agreedLeader(c.All())
		return last == nil && l == c.N
	}); err != nil {
		c.t.Fatalf("a new cluster of %d did not settle on node %d as leader: leader %d, %v (%v)", c.N, c.N, l, last, err)
	}
}

// Status returns node i's STATUS fields; an error if it cannot be asked
// (down, paused, cut off from the test is impossible: clients connect
// directly).
func (c *Cluster) Status(i int) (map[string]string, error) {
	return Status(c.Addr(i))
}

// Status asks the node at addr for its STATUS fields, with a short
// timeout: a paused or dying node must not stall a polling loop.
func Status(addr string) (map[string]string, error) {
	rc, err := resp.Dial(addr, Scale(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	v, err := rc.Do("STATUS")
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return v.StringMap(), nil
}

// agreedLeader returns the leader every listed node agrees on, or an
// error saying why there is none: each node reports the same leader_id
// and term, the leader is among them and reports role leader in that
// term, and every other node reports role follower.
func (c *Cluster) agreedLeader(nodes []int) (int, error) {
	sts := map[int]map[string]string{}
	for _, i := range nodes {
		st, err := c.Status(i)
		if err != nil {
			return 0, fmt.Errorf("node %d: %v", i, err)
		}
		sts[i] = st
	}
	first := sts[nodes[0]]
	lead, term := first["leader_id"], first["term"]
	for _, i := range nodes {
		if st := sts[i]; st["leader_id"] != lead || st["term"] != term {
			return 0, fmt.Errorf("no agreement: %s", describe(nodes, sts))
		}
	}
	l, _ := strconv.Atoi(lead)
	if l == 0 || !slices.Contains(nodes, l) {
		return 0, fmt.Errorf("leader %q is not among %v: %s", lead, nodes, describe(nodes, sts))
	}
	for _, i := range nodes {
		want := "follower"
		if i == l {
			want = "leader"
		}
		if sts[i]["role"] != want {
			return 0, fmt.Errorf("node %d is %s, want %s: %s", i, sts[i]["role"], want, describe(nodes, sts))
		}
	}
	return l, nil
}

func describe(nodes []int, sts map[int]map[string]string) string {
	var b strings.Builder
	for _, i := range nodes {
		st := sts[i]
		fmt.Fprintf(&b, "[node %d: role=%s term=%s leader_id=%s] ", i, st["role"], st["term"], st["leader_id"])
	}
	return b.String()
}

// LeaderTimeout is how long (before Scale) WaitLeader waits.
const LeaderTimeout = 15 * time.Second

// WaitLeader waits until the listed nodes (default: all) agree on a
// leader among them, and returns it.
func (c *Cluster) WaitLeader(nodes ...int) int {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.All()
	}
	var l int
	var last error
	err := poll(LeaderTimeout, func() bool {
		l, last = c.agreedLeader(nodes)
		return last == nil
	})
	if err != nil {
		c.t.Fatalf("nodes %v agreed on no leader: %v (%v)", nodes, last, err)
	}
	return l
}

// Followers waits for a leader among nodes (default: all) and returns
// the others, each of which reports it follows that leader.
func (c *Cluster) Followers(nodes ...int) (leader int, followers []int) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.All()
	}
	l := c.WaitLeader(nodes...)
	return l, Except(nodes, l)
}

// Cut cuts (or heals) the directed link from node i to node j. It needs
// a cluster made with proxies.
func (c *Cluster) Cut(i, j int, cut bool) {
	c.t.Helper()
	if c.proxies == nil {
		c.t.Fatal("testkit: Cut needs NewCluster(..., withProxies=true, ...)")
	}
	c.proxies[i][j].SetCut(cut)
}

// Isolate cuts every link to and from node i (or heals them).
func (c *Cluster) Isolate(i int, cut bool) {
	c.t.Helper()
	for j := 1; j <= c.N; j++ {
		if j != i {
			c.Cut(i, j, cut)
			c.Cut(j, i, cut)
		}
	}
}

// History is a channel's log on one node, read with XRANGE.
type History struct {
	Seqs     []uint64
	Payloads []string
}

// ReadHistory reads a channel's whole log from the node at addr.
func ReadHistory(addr, channel string) (History, error) {
	rc, err := resp.Dial(addr, Scale(DefaultTimeout))
	if err != nil {
		return History{}, err
	}
	defer rc.Close()
	v, err := rc.Do("XRANGE", channel, "-", "+")
	if err != nil {
		return History{}, err
	}
	return ParseEntries(v)
}

// ParseEntries reads an XRANGE/XREVRANGE reply: [[id, [field, value
// ...]] ...] with ids "<seq>-0" and the payload in field "payload".
func ParseEntries(v resp.Value) (History, error) {
	if err := v.Err(); err != nil {
		return History{}, err
	}
	var h History
	for _, e := range v.Array() {
		es := e.Array()
		if len(es) != 2 {
			return h, fmt.Errorf("entry is not [id, fields]: %+v", e)
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(es[0].String(), "-0"), 10, 64)
		if err != nil {
			return h, fmt.Errorf("entry id %q: %v", es[0].String(), err)
		}
		h.Seqs = append(h.Seqs, seq)
		h.Payloads = append(h.Payloads, es[1].StringMap()["payload"])
	}
	return h, nil
}

// History reads a channel's log on node i, failing the test on error.
func (c *Cluster) History(i int, channel string) History {
	c.t.Helper()
	h, err := ReadHistory(c.Addr(i), channel)
	if err != nil {
		c.t.Fatalf("history of %q on node %d: %v", channel, i, err)
	}
	return h
}

// HistoryTimeout is how long (before Scale) WaitSameHistory waits.
const HistoryTimeout = 20 * time.Second

// WaitSameHistory waits until every listed node (default: all) holds the
// same history of channel and returns it; it fails on duplicates and on
// sequence numbers that do not increase.
func (c *Cluster) WaitSameHistory(channel string, nodes ...int) History {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.All()
	}
	hs := make([]History, len(nodes))
	var last error
	err := poll(HistoryTimeout, func() bool {
		for k, i := range nodes {
			h, err := ReadHistory(c.Addr(i), channel)
			if err != nil {
				last = fmt.Errorf("node %d: %v", i, err)
				return false
			}
			hs[k] = h
		}
		for k := 1; k < len(nodes); k++ {
			if !slices.Equal(hs[k].Seqs, hs[0].Seqs) || !slices.Equal(hs[k].Payloads, hs[0].Payloads) {
				last = fmt.Errorf("node %d has %d entries (last %v), node %d has %d (last %v)",
					nodes[0], len(hs[0].Seqs), Tail(hs[0].Seqs), nodes[k], len(hs[k].Seqs), Tail(hs[k].Seqs))
				return false
			}
		}
		return true
	})
	if err != nil {
		c.t.Fatalf("histories of %q on %v did not converge: %v (%v)", channel, nodes, last, err)
	}
	seen := map[string]bool{}
	for k, p := range hs[0].Payloads {
		if seen[p] {
			c.t.Fatalf("duplicate message %q in history", p)
		}
		seen[p] = true
		if k > 0 && hs[0].Seqs[k] <= hs[0].Seqs[k-1] {
			c.t.Fatalf("history out of order at entry %d: seq %d after %d", k, hs[0].Seqs[k], hs[0].Seqs[k-1])
		}
	}
	return hs[0]
}

// Tail is the last three elements of s, for messages.
func Tail[T any](s []T) []T {
	if len(s) > 3 {
		return s[len(s)-3:]
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
