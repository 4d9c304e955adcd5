package main

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// Real-process tests of dynamic membership: joins through a seed,
// removals, leaving, restarts with the seed down, hand-off on SIGTERM and
// clusters that must not mix.

// member is one row of CLUSTER MEMBERS.
type member struct {
	id    int
	addr  string
	role  string
	state string
	lag   int64
}

func membersOf(addr string) ([]member, error) {
	rc, err := resp.Dial(addr, testkit.Scale(testkit.DefaultTimeout))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	v, err := rc.Do("CLUSTER", "MEMBERS")
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	var out []member
	for _, row := range v.Array() {
		f := row.Array()
		m := member{}
		for k := 0; k+1 < len(f); k += 2 {
			switch f[k].String() {
			case "id":
				n, _ := f[k+1].Int()
				m.id = int(n)
			case "addr":
				m.addr = f[k+1].String()
			case "role":
				m.role = f[k+1].String()
			case "state":
				m.state = f[k+1].String()
			case "lag":
				m.lag, _ = f[k+1].Int()
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// waitVoters waits until node i lists exactly the given voters (and no
// learner).
func waitVoters(t *testing.T, c *testkit.Cluster, i int, want ...int) {
	t.Helper()
	var last []member
	testkit.Eventually(t, 30*time.Second, func() bool {
		ms, err := membersOf(c.Addr(i))
		if err != nil {
			return false
		}
		last = ms
		var ids []int
		for _, m := range ms {
			if m.state != "voter" {
				return false
			}
			ids = append(ids, m.id)
		}
		return slices.Equal(ids, want)
	}, "node %d never listed voters %v (last: %+v)", i, want, last)
}

// growByJoins starts node 1 alone and nodes 2..n one by one through
// their seed, each a voter before the next starts.
func growByJoins(t *testing.T, c *testkit.Cluster, n int) {
	t.Helper()
	c.Start(1)
	c.WaitLeader(1)
	for i := 2; i <= n; i++ {
		c.Start(i)
		waitVoters(t, c, 1, c.All()[:i]...)
	}
}

func publishOK(t *testing.T, addr, channel, payload string) {
	t.Helper()
	r := testkit.Dial(t, addr)
	defer r.Close()
	if v := r.Do("PUBLISH", channel, payload); v.Err() != nil {
		t.Fatalf("PUBLISH %s on %s: %v", payload, addr, v)
	}
}

// The guide's demo 1: peer 1 starts alone and leads; peers 2 and 3 join
// through it. Peer 1 stays leader, membership entries take no sequence
// number (the first message is seq 1), and all three hold one history.
func TestJoinThroughSeed(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 3)
	growByJoins(t, c, 3)
	for _, i := range []int{2, 3} {
		p := c.Proc(i)
		p.WaitLog(fmt.Sprintf("membership.%d - INFO - Attempting to join via node_1 at %s", i, c.Addr(1)))
		p.WaitLog(fmt.Sprintf("membership.%d - INFO - Joined cluster ", i))
		p.WaitLog("as follower of node_1")
		c.Proc(1).WaitLog(fmt.Sprintf("membership.1 - INFO - Sent JOIN_ACK to node_%d", i))
	}
	if l := c.WaitLeader(1, 2, 3); l != 1 {
		t.Fatalf("node %d leads after the joins; joining must not depose node 1", l)
	}
	ids := map[string]bool{}
	for i := 1; i <= 3; i++ {
		st := statusOf(c, i)
		ids[st["cluster_id"]] = true
		if st["cluster_id"] == "" {
			t.Fatalf("node %d has no cluster id: %v", i, st)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("nodes disagree on the cluster id: %v", ids)
	}
	publishOK(t, c.Addr(3), "chat", "first")
	publishOK(t, c.Addr(2), "chat", "second")
	h := c.WaitSameHistory("chat")
	if !slices.Equal(h.Seqs, []uint64{1, 2}) {
		t.Fatalf("history seqs %v, want [1 2]: membership entries must not take sequence numbers", h.Seqs)
	}
}

// loadResult is what a background publisher saw.
type loadResult struct {
	ok, failed int
	errs       []string
	maxGap     time.Duration // longest time between two acknowledged publishes
}

// publishLoad publishes to addr until stop, one at a time, recording
// failures and the longest gap between acknowledgements.
func publishLoad(t *testing.T, addr, channel, prefix string, stop <-chan struct{}) <-chan loadResult {
	out := make(chan loadResult, 1)
	go func() {
		var res loadResult
		defer func() { out <- res }()
		rc, err := resp.Dial(addr, testkit.Scale(10*time.Second))
		if err != nil {
			res.errs = append(res.errs, err.Error())
			res.failed++
			return
		}
		defer rc.Close()
		last := time.Now()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			v, err := rc.Do("PUBLISH", channel, fmt.Sprintf("%s-%d", prefix, k))
			switch {
			case err != nil:
				res.failed++
				res.errs = append(res.errs, err.Error())
				return
			case v.Err() != nil:
				res.failed++
				res.errs = append(res.errs, v.Err().Error())
			default:
				res.ok++
				res.maxGap = max(res.maxGap, time.Since(last))
				last = time.Now()
			}
		}
	}()
	return out
}

// A static three-node cluster grows to five under load, through a seed
// that is not the leader, without a failed publish; then a dead member
// is removed and the survivors keep committing.
func TestJoinUnderLoadThenRemoveDeadMember(t *testing.T) {
	c := testkit.NewCluster(t, 5, false)
	c.Static = []int{1, 2, 3}
	c.Seed = 2
	for _, i := range c.Static {
		c.Start(i)
	}
	c.WaitLeader(1, 2, 3)
	stop := make(chan struct{})
	var loads []<-chan loadResult
	for _, i := range c.Static {
		loads = append(loads, publishLoad(t, c.Addr(i), "grow", fmt.Sprintf("n%d", i), stop))
	}
	c.Start(4)
	c.Start(5)
	leader := c.WaitLeader(1, 2, 3)
	waitVoters(t, c, leader, 1, 2, 3, 4, 5)
	close(stop)
	for _, l := range loads {
		res := <-l
		if res.failed > 0 || res.ok == 0 {
			t.Fatalf("publishing while nodes joined: %d ok, %d failed: %v", res.ok, res.failed, res.errs)
		}
	}
	c.WaitSameHistory("grow")

	c.Proc(5).Kill()
	r := testkit.Dial(t, c.Addr(leader))
	if v := r.Do("CLUSTER", "REMOVE", "5"); v.Err() != nil {
		t.Fatalf("CLUSTER REMOVE 5: %v", v)
	}
	waitVoters(t, c, leader, 1, 2, 3, 4)
	if v := r.Do("CLUSTER", "REMOVE", "9"); !v.IsErr("ERR no member with id 9") {
		t.Fatalf("removing a non-member: %v", v)
	}
	// Four voters: a majority is three; with node 4 down too, 1-3 still commit.
	c.Proc(4).Kill()
	publishOK(t, c.Addr(1), "grow", "after-removal")
	c.WaitSameHistory("grow", 1, 2, 3)
}

// The guide's demo 3: a joined member restarts while its seed is down;
// it comes back through the members it knows, and catches up.
func TestRestartWithSeedDown(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 3)
	growByJoins(t, c, 3)
	publishOK(t, c.Addr(1), "demo3", "before")
	c.Proc(3).Kill()
	publishOK(t, c.Addr(2), "demo3", "while-3-down")
	c.Proc(1).Kill() // the seed; 2 alone is no majority of {1,2,3}
	c.Start(3)       // its --seed names node 1, which is down
	leader := c.WaitLeader(2, 3)
	publishOK(t, c.Addr(leader), "demo3", "after")
	h := c.WaitSameHistory("demo3", 2, 3)
	if !slices.Equal(h.Payloads, []string{"before", "while-3-down", "after"}) {
		t.Fatalf("history %v", h.Payloads)
	}
}

// Every node killed and restarted: the membership and the numbering
// continue where they were.
func TestJoinedClusterSurvivesFullRestart(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 3)
	growByJoins(t, c, 3)
	for k := 1; k <= 3; k++ {
		publishOK(t, c.Addr(1+k%3), "full", fmt.Sprint(k))
	}
	for i := 1; i <= 3; i++ {
		c.Proc(i).Kill()
	}
	for i := 1; i <= 3; i++ {
		c.Start(i)
	}
	leader := c.WaitLeader(1, 2, 3)
	waitVoters(t, c, leader, 1, 2, 3)
	for k := 4; k <= 6; k++ {
		publishOK(t, c.Addr(1+k%3), "full", fmt.Sprint(k))
	}
	h := c.WaitSameHistory("full")
	if !slices.Equal(h.Seqs, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("seqs after a full restart: %v", h.Seqs)
	}
}

// rollingLoad publishes one message at a time through the nodes at
// addrs, moving to the next node when its node goes away (connection
// closed, or "shutting down": a client of a stopped node must
// reconnect, that is not a lost publish). It records every other error
// and the longest time between two acknowledged publishes.
type rollingLoad struct {
	acked  atomic.Int64
	stop   chan struct{}
	result chan loadResult
}

func startRollingLoad(addrs []string, channel string) *rollingLoad {
	l := &rollingLoad{stop: make(chan struct{}), result: make(chan loadResult, 1)}
	go func() {
		var res loadResult
		defer func() { l.result <- res }()
		var rc *resp.Conn
		next, last := 0, time.Now()
		for k := 0; ; k++ {
			select {
			case <-l.stop:
				if rc != nil {
					rc.Close()
				}
				return
			default:
			}
			if rc == nil {
				var err error
				if rc, err = resp.Dial(addrs[next%len(addrs)], testkit.Scale(time.Second)); err != nil {
					next++
					continue
				}
			}
			v, err := rc.Do("PUBLISH", channel, fmt.Sprint("m", k))
			switch {
			case err != nil || v.IsErr("ERR server is shutting down") || v.IsErr("TRYAGAIN node is shutting down"):
				rc.Close()
				rc, next = nil, next+1
			case v.Err() != nil:
				res.failed++
				res.errs = append(res.errs, v.Err().Error())
			default:
				res.ok++
				l.acked.Add(1)
				res.maxGap = max(res.maxGap, time.Since(last))
				last = time.Now()
			}
		}
	}()
	return l
}

// waitAcked waits until the load has n more acknowledged publishes.
func (l *rollingLoad) waitAcked(t *testing.T, n int64) {
	t.Helper()
	want := l.acked.Load() + n
	testkit.Eventually(t, 20*time.Second, func() bool { return l.acked.Load() >= want },
		"publishes stalled at %d acknowledgements", l.acked.Load())
}

// A rolling restart under load: every node in turn is stopped with
// SIGTERM (the leader hands its leadership over first) and restarted.
// No publish fails, and the longest pause between two acknowledged
// publishes — the unavailability — stays far below the leader timeout
// an election would cost. The README reports it.
func TestRollingRestartHandsOverWithoutUnavailability(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	load := startRollingLoad([]string{c.Addr(1), c.Addr(2), c.Addr(3)}, "rolling")
	load.waitAcked(t, 50)
	handoffs := 0
	for i := 1; i <= 3; i++ {
		st := statusOf(c, i)
		if st["role"] == "leader" {
			handoffs++
		}
		c.Proc(i).Signal(syscall.SIGTERM)
		if code := c.Proc(i).ExitCode(testkit.Scale(20 * time.Second)); code != 0 {
			t.Fatalf("node %d exited with %d after SIGTERM", i, code)
		}
		if st["role"] == "leader" {
			c.Proc(i).WaitLog("Handed leadership to node_")
		}
		load.waitAcked(t, 20) // the other two go on without it
		c.Start(i)
		testkit.Eventually(t, 20*time.Second, func() bool {
			now := statusOf(c, i)
			return now != nil && now["leader_id"] != "0" && num(now, "commit_seq") >= num(st, "commit_seq")
		}, "node %d did not rejoin after its restart", i)
		load.waitAcked(t, 20)
	}
	close(load.stop)
	res := <-load.result
	if res.failed > 0 {
		t.Fatalf("%d publishes failed during the rolling restart: %v", res.failed, res.errs)
	}
	if handoffs == 0 {
		t.Fatal("no leader was restarted")
	}
	t.Logf("rolling restart of 3 nodes (%d leader hand-offs): %d publishes, longest gap between acknowledgements %v",
		handoffs, res.ok, res.maxGap)
	// Without the hand-off the gap is at least a leader timeout (500ms).
	if res.maxGap >= testkit.Scale(500*time.Millisecond) {
		t.Fatalf("publishes stalled %v during the rolling restart: no faster than an election", res.maxGap)
	}
	c.WaitSameHistory("rolling")
}

// CLUSTER LEAVE on the leader: it hands over, its removal commits, it
// exits; the others go on. A follower stopped with --leave-on-shutdown
// leaves the same way.
func TestLeave(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 4)
	growByJoins(t, c, 4)
	r := testkit.Dial(t, c.Addr(1))
	if v := r.Do("CLUSTER", "LEAVE"); v.Err() != nil {
		t.Fatalf("CLUSTER LEAVE: %v", v)
	}
	if code := c.Proc(1).ExitCode(testkit.Scale(20 * time.Second)); code != 0 {
		t.Fatalf("node 1 exited with %d after leaving", code)
	}
	leader := c.WaitLeader(2, 3, 4)
	waitVoters(t, c, leader, 2, 3, 4)

	// Node 4 leaves at shutdown: restart it with the option, then SIGTERM.
	c.Proc(4).Kill()
	c.Args = []string{"--leave-on-shutdown"}
	c.Start(4)
	waitVoters(t, c, leader, 2, 3, 4)
	testkit.Eventually(t, 20*time.Second, func() bool {
		st := statusOf(c, 4)
		return st != nil && st["leader_id"] != "0" && st["leader_id"] != ""
	}, "node 4 did not find the leader after its restart")
	c.Proc(4).Signal(syscall.SIGTERM)
	if code := c.Proc(4).ExitCode(testkit.Scale(20 * time.Second)); code != 0 {
		t.Fatalf("node 4 exited with %d", code)
	}
	c.Proc(4).WaitLog("Left the cluster")
	leader = c.WaitLeader(2, 3)
	waitVoters(t, c, leader, 2, 3)
	publishOK(t, c.Addr(2), "left", "x")
	c.WaitSameHistory("left", 2, 3)
}

// Two clusters do not mix: a member of cluster B pointed at a node of
// cluster A is refused, and both nodes say why in their logs.
func TestNodeOfAnotherClusterIsRefused(t *testing.T) {
	c := testkit.NewCluster(t, 2, false)
	c.Static = []int{1}
	c.Start(1)
	c.WaitLeader(1)
	// Node 2 forms a cluster of its own, then is restarted with --seed
	// naming node 1: its data directory says it belongs elsewhere.
	c.Static = []int{2}
	c.Start(2)
	c.WaitLeader(2)
	c.Proc(2).Kill()
	c.Static, c.Seed = []int{1}, 1
	c.Start(2)
	c.Proc(2).WaitLog("belongs to cluster")
	c.Proc(1).WaitLog("node_2 belongs to another cluster")
	ms, err := membersOf(c.Addr(1))
	if err != nil || len(ms) != 1 {
		t.Fatalf("cluster A's members: %+v, %v", ms, err)
	}
}

// A fresh node given the id of an existing member (at another address) is
// refused, and says why.
func TestJoinWithTakenIDIsRefused(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 3)
	c.Start(1)
	c.WaitLeader(1)
	c.Start(2)
	waitVoters(t, c, 1, 1, 2)
	port := testkit.FreePort(t)
	p := testkit.StartOrdo(t, testkit.ProcConfig{Name: "impostor", Port: port, Args: []string{"node", "--id", "2",
		"--port", strconv.Itoa(port), "--data-dir", t.TempDir(), "--seed", "1:" + c.Addr(1)}})
	p.WaitLog("Join refused: node id 2 is already a member, at " + c.Addr(2))
	c.Proc(1).WaitLog("Refused JOIN of node_2")
	waitVoters(t, c, 1, 1, 2)
}

// The founder's address is part of the first configuration: a node that
// joined through another seed and restarted knows how to reach node 1
// from the configuration alone (not only because node 1 dialled it).
// End to end: node 1 may also become reachable because it dials node 3,
// so TestBootstrapRules (broker/replica) pins the address itself.
func TestFounderAddressInConfiguration(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 3)
	c.Start(1)
	c.WaitLeader(1)
	c.Start(2)
	waitVoters(t, c, 1, 1, 2)
	c.Seed = 2 // node 3 joins through node 2, not the founder
	c.Start(3)
	waitVoters(t, c, 1, 1, 2, 3)
	publishOK(t, c.Addr(1), "founder", "one")
	c.Proc(3).Kill()
	c.Start(3)
	c.Proc(2).Kill() // 1 and 3 are a majority only if 3 can reach 1
	leader := c.WaitLeader(1, 3)
	publishOK(t, c.Addr(3), "founder", "two")
	h := c.WaitSameHistory("founder", 1, 3)
	if len(h.Seqs) != 2 || leader == 0 {
		t.Fatalf("history %v", h.Payloads)
	}
	ms, err := membersOf(c.Addr(3))
	if err != nil || len(ms) != 3 || ms[0].addr != c.Addr(1) {
		t.Fatalf("node 3's members: %+v, %v", ms, err)
	}
}
