package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cluster runs n ordo processes. With proxies, every peer link i->j goes
// through its own linkProxy so tests can cut links (partitions); clients
// always connect to nodes directly.
type cluster struct {
	t       *testing.T
	n       int
	ports   []int
	dirs    []string
	procs   []*proc
	proxies [][]*linkProxy
	extra   []string
}

func newCluster(t *testing.T, n int, withProxies bool, extra ...string) *cluster {
	c := &cluster{t: t, n: n, extra: extra, procs: make([]*proc, n+1)}
	c.ports = make([]int, n+1)
	c.dirs = make([]string, n+1)
	for i := 1; i <= n; i++ {
		c.ports[i] = freePort(t)
		c.dirs[i] = t.TempDir()
	}
	if withProxies {
		c.proxies = make([][]*linkProxy, n+1)
		for i := 1; i <= n; i++ {
			c.proxies[i] = make([]*linkProxy, n+1)
			for j := 1; j <= n; j++ {
				if i != j {
					c.proxies[i][j] = newLinkProxy(t, c.addr(j))
				}
			}
		}
	}
	return c
}

func (c *cluster) addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.ports[i]) }

func (c *cluster) peersFor(i int) string {
	var ps []string
	for j := 1; j <= c.n; j++ {
		a := c.addr(j)
		if j != i && c.proxies != nil {
			a = c.proxies[i][j].addr()
		}
		ps = append(ps, fmt.Sprintf("%d:%s", j, a))
	}
	return strings.Join(ps, ",")
}

func (c *cluster) start(i int) *proc {
	args := append([]string{"node", "--id", strconv.Itoa(i), "--port", strconv.Itoa(c.ports[i]),
		"--data-dir", c.dirs[i], "--peers", c.peersFor(i)}, c.extra...)
	c.procs[i] = startOrdo(c.t, c.ports[i], nil, args...)
	return c.procs[i]
}

func (c *cluster) startAll() {
	for i := 1; i <= c.n; i++ {
		c.start(i)
	}
}

func (c *cluster) status(i int) map[string]string {
	r := dialOrdo(c.t, c.addr(i))
	defer r.c.Close()
	v := r.do("STATUS")
	out := map[string]string{}
	for k := 0; k+1 < len(v.arr); k += 2 {
		out[v.arr[k].s] = v.arr[k+1].s
	}
	return out
}

// waitLeader waits until every listed node reports the same leader, which
// leads, and returns it.
func (c *cluster) waitLeader(timeout time.Duration, nodes ...int) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader, agreed := "", true
		for _, i := range nodes {
			st := c.status(i)
			if st["leader_id"] == "0" || (leader != "" && st["leader_id"] != leader) {
				agreed = false
				break
			}
			leader = st["leader_id"]
		}
		if agreed && leader != "" {
			l, _ := strconv.Atoi(leader)
			listed := false
			for _, i := range nodes {
				listed = listed || i == l
			}
			if listed && c.status(l)["role"] == "leader" {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, i := range nodes {
		c.t.Logf("node %d: %v", i, c.status(i))
	}
	c.t.Fatalf("nodes %v agreed on no leader within %s", nodes, timeout)
	return 0
}

// isolate cuts every link to and from node i (or heals them).
func (c *cluster) isolate(i int, cut bool) {
	for j := 1; j <= c.n; j++ {
		if j != i {
			c.proxies[i][j].setCut(cut)
			c.proxies[j][i].setCut(cut)
		}
	}
}

// waitSameHistory waits until every listed node's channel history is the
// same and returns it; it fails on gaps or duplicates.
func (c *cluster) waitSameHistory(channel string, timeout time.Duration, nodes ...int) ([]uint64, []string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var seqs [][]uint64
	var pls [][]string
	for {
		seqs, pls = nil, nil
		for _, i := range nodes {
			s, p := history(c.t, c.addr(i), channel)
			seqs, pls = append(seqs, s), append(pls, p)
		}
		same := true
		for k := 1; k < len(nodes); k++ {
			if fmt.Sprint(seqs[k]) != fmt.Sprint(seqs[0]) || strings.Join(pls[k], "\x00") != strings.Join(pls[0], "\x00") {
				same = false
			}
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			for k, i := range nodes {
				c.t.Logf("node %d: %d entries, last %v", i, len(seqs[k]), tail(seqs[k]))
			}
			c.t.Fatalf("histories of %v did not converge within %s", nodes, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, p := range pls[0] {
		if seen[p] {
			c.t.Fatalf("duplicate message %q in history", p)
		}
		seen[p] = true
	}
	return seqs[0], pls[0]
}

func tail(s []uint64) []uint64 {
	if len(s) > 3 {
		return s[len(s)-3:]
	}
	return s
}

// loader publishes from one connection per node until stopped, recording
// what was acknowledged.
type loader struct {
	mu    sync.Mutex
	acked map[string]bool
	stop  atomic.Bool
	wg    sync.WaitGroup
	fails atomic.Int64
}

func startLoad(t *testing.T, c *cluster, channel string, nodes ...int) *loader {
	l := &loader{acked: map[string]bool{}}
	for _, i := range nodes {
		l.wg.Add(1)
		go func(i int) {
			defer l.wg.Done()
			var r *rconn
			for k := 0; !l.stop.Load() && k < 1000000; k++ {
				if r == nil {
					cn, err := dialQuiet(c.addr(i))
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					r = &rconn{t: t, c: cn, r: newReader(cn)}
				}
				msg := fmt.Sprintf("n%d-%d", i, k)
				if r.send("PUBLISH", channel, msg) != nil {
					r.c.Close()
					r = nil
					continue
				}
				v, err := r.read()
				if err != nil {
					r.c.Close()
					r = nil
					continue
				}
				if strings.HasPrefix(v.s, "-") {
					l.fails.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				l.acked[msg] = true
				l.mu.Unlock()
			}
			if r != nil {
				r.c.Close()
			}
		}(i)
	}
	return l
}

func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *loader) finish() map[string]bool {
	l.stop.Store(true)
	l.wg.Wait()
	return l.acked
}

func (l *loader) waitCount(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d publishes acknowledged (%d errors)", l.count(), l.fails.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveSub records what a subscriber connected to one node receives.
type liveSub struct {
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func subscribe(t *testing.T, addr, channel string) *liveSub {
	r := dialOrdo(t, addr)
	if v := r.do("SUBSCRIBE", channel); len(v.arr) != 3 {
		t.Fatalf("subscribe: %+v", v)
	}
	s := &liveSub{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
			v, err := r.read()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, v.arr[2].s)
			s.mu.Unlock()
		}
	}()
	return s
}

// waitFor waits until the subscriber has received exactly the history, in
// order: subscribers miss nothing across failovers and partitions.
func (s *liveSub) waitFor(t *testing.T, node int, history []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.msgs...)
		s.mu.Unlock()
		if strings.Join(got, ",") == strings.Join(history, ",") {
			return
		}
		if len(got) > len(history) || time.Now().After(deadline) {
			for i := range got {
				if i >= len(history) || got[i] != history[i] {
					t.Fatalf("subscriber on node %d: message %d is %q, history has %d entries (got %d)", node, i, got[i], len(history), len(got))
				}
			}
			t.Fatalf("subscriber on node %d received %d of %d messages", node, len(got), len(history))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkAllAcked(t *testing.T, acked map[string]bool, payloads []string, seqs []uint64) {
	t.Helper()
	have := map[string]bool{}
	for i, p := range payloads {
		have[p] = true
		if i > 0 && seqs[i] <= seqs[i-1] {
			t.Fatalf("history out of order at %d", i)
		}
	}
	lost := 0
	for m := range acked {
		if !have[m] {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged publish %q lost", m)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged publishes lost", lost, len(acked))
	}
}

func TestClusterElectsHighestID(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	start := time.Now()
	if l := c.waitLeader(10*time.Second, 1, 2, 3); l != 3 {
		t.Fatalf("leader %d, want 3", l)
	}
	t.Logf("three nodes agreed on node 3 after %s", time.Since(start).Round(time.Millisecond))
	c.procs[3].waitLog("Became LEADER for term")
}

// Publishers on every node; every subscriber on every node receives every
// message once, in one identical order, with contiguous sequence numbers.
func TestClusterTotalOrder(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	const each = 200
	type got struct{ msgs []string }
	subs := make([]*got, 4)
	var swg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		r := dialOrdo(t, c.addr(i))
		r.do("SUBSCRIBE", "o")
		subs[i] = &got{}
		swg.Add(1)
		go func(g *got, r *rconn) {
			defer swg.Done()
			for len(g.msgs) < 3*each {
				v, err := r.read()
				if err != nil {
					return
				}
				g.msgs = append(g.msgs, v.arr[2].s)
			}
		}(subs[i], r)
	}
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		r := dialOrdo(t, c.addr(i))
		wg.Add(1)
		go func(i int, r *rconn) {
			defer wg.Done()
			for k := 0; k < each; k++ {
				r.send("PUBLISH", "o", fmt.Sprintf("n%d-%d", i, k))
			}
			for k := 0; k < each; k++ {
				if v, err := r.read(); err != nil || strings.HasPrefix(v.s, "-") {
					t.Errorf("node %d publish %d: %+v %v", i, k, v, err)
				}
			}
		}(i, r)
	}
	wg.Wait()
	swg.Wait()
	for i := 1; i <= 3; i++ {
		if len(subs[i].msgs) != 3*each {
			t.Fatalf("subscriber on node %d got %d messages", i, len(subs[i].msgs))
		}
		if strings.Join(subs[i].msgs, ",") != strings.Join(subs[1].msgs, ",") {
			t.Fatalf("subscriber on node %d saw a different order", i)
		}
	}
	seqs, pls := c.waitSameHistory("o", 10*time.Second, 1, 2, 3)
	for k := range seqs {
		if seqs[k] != uint64(k+1) || pls[k] != subs[1].msgs[k] {
			t.Fatalf("history entry %d: seq %d %q, delivered %q", k, seqs[k], pls[k], subs[1].msgs[k])
		}
	}
}

// kill -9 of the leader under load: node 2 takes over, nothing acknowledged
// is lost or duplicated; the killed node returns as a follower and catches
// up to the identical history.
func TestClusterLeaderKill9(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	subs := []*liveSub{nil, subscribe(t, c.addr(1), "k"), subscribe(t, c.addr(2), "k")}
	load := startLoad(t, c, "k", 1, 2, 3)
	load.waitCount(t, 300)

	probe := dialOrdo(t, c.addr(1))
	c.procs[3].kill()
	killed := time.Now()
	var failover time.Duration
	for {
		v := probe.do("PUBLISH", "probe", "x")
		if !strings.HasPrefix(v.s, "-") {
			failover = time.Since(killed)
			break
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("no successful publish within 15s of killing the leader: %s", v.s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("failover: first successful publish %s after kill -9 of the leader", failover.Round(time.Millisecond))
	if os.Getenv("ORDO_REPORT") != "" {
		fmt.Fprintf(os.Stderr, "FAILOVER_MS %d\n", failover.Milliseconds())
	}
	if l := c.waitLeader(10*time.Second, 1, 2); l != 2 {
		t.Fatalf("leader after kill: %d, want 2", l)
	}
	before := load.count()
	load.waitCount(t, before+200)
	acked := load.finish()
	seqs, pls := c.waitSameHistory("k", 10*time.Second, 1, 2)
	checkAllAcked(t, acked, pls, seqs)
	subs[1].waitFor(t, 1, pls)
	subs[2].waitFor(t, 2, pls)

	c.start(3)
	c.waitSameHistory("k", 20*time.Second, 1, 2, 3)
	if l := c.waitLeader(5*time.Second, 1, 2, 3); l != 2 {
		t.Fatalf("returning node 3 deposed the leader: leader %d", l)
	}
	if st := c.status(3); st["role"] != "follower" {
		t.Fatalf("node 3 after restart: %v", st)
	}
}

// kill -9 of every node, then restart: nothing acknowledged is lost and
// numbering continues.
func TestClusterFullRestart(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	r := dialOrdo(t, c.addr(1))
	for k := 0; k < 100; k++ {
		if v := r.do("PUBLISH", "r", fmt.Sprintf("m%d", k)); strings.HasPrefix(v.s, "-") {
			t.Fatalf("publish %d: %s", k, v.s)
		}
	}
	for i := 1; i <= 3; i++ {
		c.procs[i].kill()
	}
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	seqs, _ := c.waitSameHistory("r", 10*time.Second, 1, 2, 3)
	if len(seqs) != 100 || seqs[99] != 100 {
		t.Fatalf("after full restart: %d entries, last %v", len(seqs), tail(seqs))
	}
	if v := dialOrdo(t, c.addr(2)).do("PUBLISH", "r", "next"); strings.HasPrefix(v.s, "-") {
		t.Fatal(v.s)
	}
	seqs, _ = c.waitSameHistory("r", 10*time.Second, 1, 2, 3)
	if seqs[len(seqs)-1] <= 100 {
		t.Fatalf("numbering did not continue: %v", tail(seqs))
	}
}

// The leader cut off from the others: the majority elects a new leader, the
// old one refuses publishes within its leader timeout, and after healing it
// rejoins as a follower with the majority's history.
func TestClusterPartitionedLeader(t *testing.T) {
	c := newCluster(t, 3, true)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	onIsolated := subscribe(t, c.addr(3), "p")
	load := startLoad(t, c, "p", 1, 2)
	load.waitCount(t, 100)

	c.isolate(3, true)
	cut := time.Now()
	old := dialOrdo(t, c.addr(3))
	var refused time.Duration
	for {
		start := time.Now()
		v := old.do("PUBLISH", "p", "from-isolated-leader")
		if took := time.Since(start); took > 6*time.Second {
			t.Fatalf("PUBLISH on the isolated leader hung for %s", took)
		}
		if strings.HasPrefix(v.s, "-CLUSTERDOWN") || strings.HasPrefix(v.s, "-TRYAGAIN") {
			refused = time.Since(cut)
			break
		}
		if !strings.HasPrefix(v.s, "-") && time.Since(cut) > time.Second {
			t.Fatalf("isolated leader acknowledged a publish %s after the cut", time.Since(cut))
		}
		if time.Since(cut) > 10*time.Second {
			t.Fatalf("isolated leader still accepts publishes after 10s: %+v", v)
		}
	}
	t.Logf("isolated leader refused publishes %s after the cut", refused.Round(time.Millisecond))
	if refused > 3*time.Second {
		t.Errorf("isolated leader took %s to refuse publishes (leader timeout 500ms)", refused)
	}
	if l := c.waitLeader(10*time.Second, 1, 2); l != 2 {
		t.Fatalf("majority leader %d, want 2", l)
	}
	load.waitCount(t, load.count()+100)

	c.isolate(3, false)
	acked := load.finish()
	seqs, pls := c.waitSameHistory("p", 20*time.Second, 1, 2, 3)
	checkAllAcked(t, acked, pls, seqs)
	// The subscriber on the partitioned node gets the backlog, in order.
	onIsolated.waitFor(t, 3, pls)
	if l := c.waitLeader(5*time.Second, 1, 2, 3); l != 2 {
		t.Fatalf("after healing leader is %d, want 2", l)
	}
}

// A leader paused (SIGSTOP) past the leader timeout and resumed cannot
// commit in its stale term.
func TestClusterPausedLeaderCannotCommit(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	stale := dialOrdo(t, c.addr(3))
	stale.do("PING")
	c.procs[3].signal(sigStop)
	if l := c.waitLeader(10*time.Second, 1, 2); l != 2 {
		t.Fatalf("leader while 3 paused: %d", l)
	}
	r := dialOrdo(t, c.addr(1))
	for k := 0; k < 20; k++ {
		if v := r.do("PUBLISH", "s", fmt.Sprintf("m%d", k)); strings.HasPrefix(v.s, "-") {
			t.Fatal(v.s)
		}
	}
	// Queue a publish at the paused leader; it runs the moment it resumes.
	stale.send("PUBLISH", "s", "stale")
	c.procs[3].signal(sigCont)
	v, err := stale.read()
	if err != nil {
		t.Fatal(err)
	}
	seqs, pls := c.waitSameHistory("s", 15*time.Second, 1, 2, 3)
	if !strings.HasPrefix(v.s, "-") {
		// Accepted: then it must have been committed by the new leader,
		// after everything the majority committed meanwhile.
		if len(pls) != 21 || pls[20] != "stale" {
			t.Fatalf("resumed leader acknowledged a publish that is not in the majority's history: %v", pls)
		}
	} else if len(pls) > 21 || (len(pls) == 21 && pls[20] != "stale") {
		t.Fatalf("unexpected history %v", pls)
	}
	_ = seqs
	if st := c.status(3); st["role"] == "leader" {
		t.Fatalf("resumed node 3 still claims leadership: %v", st)
	}
}

// A follower whose log lost its tail or has a record failing its checksum
// repairs itself from its peers and serves nothing corrupt.
func TestClusterFollowerRepairsCorruptLog(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	r := dialOrdo(t, c.addr(3))
	for k := 0; k < 60; k++ {
		r.do("PUBLISH", "x", fmt.Sprintf("payload-%03d", k))
	}
	c.waitSameHistory("x", 10*time.Second, 1, 2, 3)
	c.procs[1].kill()
	seg := lastSegment(t, c.dirs[1])
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(b), "payload-030")
	if at < 0 {
		t.Fatal("record not found")
	}
	b[at+9] ^= 0x04
	b = append(b, 0x7f, 0x00, 0x00) // and a torn tail
	os.WriteFile(seg, b, 0o644)

	p := c.start(1)
	p.waitLog("Corrupt record at seq_no=")
	_, pls := c.waitSameHistory("x", 20*time.Second, 1, 2, 3)
	for k, pl := range pls {
		if pl != fmt.Sprintf("payload-%03d", k) {
			t.Fatalf("entry %d = %q", k, pl)
		}
	}
}

// A follower that was down while retention dropped what it lacks restarts
// its log at the leader's first retained entry and follows from there.
func TestClusterFollowerCatchesUpPastRetention(t *testing.T) {
	c := newCluster(t, 3, false, "--segment-size", "4kb", "--retention-bytes", "16kb", "--publish-timeout", "200ms")
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	r := dialOrdo(t, c.addr(2))
	pad := strings.Repeat("p", 100)
	for k := 0; k < 50; k++ {
		r.do("PUBLISH", "ret", fmt.Sprintf("a%03d%s", k, pad))
	}
	c.waitSameHistory("ret", 10*time.Second, 1, 2, 3)
	c.procs[1].kill()
	for k := 0; k < 600; k++ {
		if v := r.do("PUBLISH", "ret", fmt.Sprintf("b%03d%s", k, pad)); strings.HasPrefix(v.s, "-") {
			t.Fatal(v.s)
		}
	}
	// Retention runs once a second on the live nodes.
	deadline := time.Now().Add(15 * time.Second)
	for {
		seqs, _ := history(t, c.addr(3), "ret")
		if len(seqs) > 0 && seqs[0] > 51 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leader's retention dropped nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := c.start(1)
	p.waitLog("restarting the log at seq_no=")
	deadline = time.Now().Add(20 * time.Second)
	for {
		s1, p1 := history(t, c.addr(1), "ret")
		s3, p3 := history(t, c.addr(3), "ret")
		if len(s1) > 0 && len(s3) > 0 && s1[len(s1)-1] == s3[len(s3)-1] {
			// Same tail, and node 1 holds a contiguous suffix of it.
			n := min(len(s1), len(s3))
			if fmt.Sprint(s1[len(s1)-n:]) != fmt.Sprint(s3[len(s3)-n:]) || strings.Join(p1[len(p1)-n:], ",") != strings.Join(p3[len(p3)-n:], ",") {
				t.Fatalf("node 1 differs from the leader in the retained range")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 1 did not catch up: %v vs %v", tail(s1), tail(s3))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := dialOrdo(t, c.addr(1)).do("PUBLISH", "ret", "after"); strings.HasPrefix(v.s, "-") {
		t.Fatalf("publish on the reset node: %s", v.s)
	}
}

// A member whose disk was wiped rejoins with --rejoin-empty: it does not
// vote until the leader has refilled its log, then holds the same history.
func TestClusterWipedFollowerRejoins(t *testing.T) {
	c := newCluster(t, 3, false)
	c.startAll()
	c.waitLeader(10*time.Second, 1, 2, 3)
	r := dialOrdo(t, c.addr(3))
	for k := 0; k < 40; k++ {
		r.do("PUBLISH", "w", fmt.Sprintf("m%02d", k))
	}
	c.waitSameHistory("w", 10*time.Second, 1, 2, 3)
	c.procs[2].kill()
	if err := os.RemoveAll(c.dirs[2]); err != nil {
		t.Fatal(err)
	}
	c.extra = []string{"--rejoin-empty"}
	p := c.start(2)
	c.extra = nil
	p.waitLog("Rejoining with an empty disk")
	_, pls := c.waitSameHistory("w", 20*time.Second, 1, 2, 3)
	if len(pls) != 40 {
		t.Fatalf("history after rejoin: %d entries", len(pls))
	}
	if l := c.waitLeader(5*time.Second, 1, 2, 3); l != 3 {
		t.Fatalf("leader after rejoin: %d", l)
	}
	if v := dialOrdo(t, c.addr(2)).do("PUBLISH", "w", "after"); strings.HasPrefix(v.s, "-") {
		t.Fatalf("publish through the rejoined node: %s", v.s)
	}
}
