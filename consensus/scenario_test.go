package consensus

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

func (c *cluster) requireLeader(want NodeID, maxRounds int) {
	c.tb.Helper()
	if l := c.waitLeader(maxRounds); l != want {
		c.tb.Fatalf("leader = %d, want %d\n%s", l, want, c.logText())
	}
}

func (c *cluster) logText() string {
	if c.logs == nil {
		return ""
	}
	return c.logs.String()
}

// commitAll proposes k entries at node id and waits until every running
// node applied them.
func (c *cluster) proposeAndCommit(id NodeID, k int) []reqKey {
	c.tb.Helper()
	var keys []reqKey
	for i := 0; i < k; i++ {
		key, err := c.propose(id)
		if err != nil {
			c.tb.Fatalf("propose at %d: %v", id, err)
		}
		keys = append(keys, key)
	}
	for r := 0; r < 100; r++ {
		c.round()
		done := true
		for _, key := range keys {
			if !c.ck.acked[key] {
				done = false
			}
		}
		if done {
			return keys
		}
	}
	c.tb.Fatalf("proposals at %d did not commit\n%s", id, c.logText())
	return nil
}

func newTestCluster(t *testing.T, size int) *cluster {
	c := newCluster(t, size, 1, defaultSimConfig)
	c.logs = &strings.Builder{}
	c.fifo = true
	return c
}

func TestSingleNodeElectsItselfOnFirstTick(t *testing.T) {
	c := newTestCluster(t, 1)
	c.round()
	if nd := c.n(1).node; nd.role != Leader {
		t.Fatalf("role = %v after one tick", nd.role)
	}
	c.round()
	c.proposeAndCommit(1, 3)
}

func TestElectsHighestID(t *testing.T) {
	for _, size := range []int{3, 5} {
		c := newTestCluster(t, size)
		c.requireLeader(NodeID(size), 30)
		if term := c.n(NodeID(size)).node.term; term != 1 {
			t.Errorf("%d nodes: term = %d, want 1", size, term)
		}
		for _, want := range []string{"failure.1 Leader timeout!", "election." + utoa(size) + " Starting election for term 1",
			"election.1 Received COORDINATOR from node_" + utoa(size), "node." + utoa(size) + " Became LEADER for term 1",
			"node.1 New coordinator: node_" + utoa(size) + ", term=1"} {
			if !strings.Contains(c.logText(), want) {
				t.Errorf("%d nodes: log lacks %q", size, want)
			}
		}
		c.proposeAndCommit(1, 5)
		c.proposeAndCommit(NodeID(size), 5)
	}
}

func utoa(i int) string { return string(rune('0' + i)) }

func TestLeaderCrashNextHighestTakesOver(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 5)
	c.crash(3)
	c.requireLeader(2, 60)
	c.proposeAndCommit(1, 5)
	if got := len(c.ck.history); got != 10 {
		t.Fatalf("history has %d entries, want 10", got)
	}
}

const testElection = 8 // defaultSimConfig.election

// appendAlone makes leader id append one proposal that reaches nobody
// (it is cut off), and persist it.
func (c *cluster) appendAlone(id NodeID) reqKey {
	c.tb.Helper()
	saved := maps.Clone(c.cut)
	c.isolate(id)
	k, err := c.propose(id)
	if err != nil {
		c.tb.Fatalf("propose at %d: %v", id, err)
	}
	for c.process(id) {
	}
	c.cut = saved
	return k
}

func (c *cluster) hasEntry(id NodeID, k reqKey) bool {
	for _, e := range c.diskLog(id) {
		if e.Origin == k.origin && e.ReqID == k.req {
			return true
		}
	}
	return false
}

// Stability (Raft thesis §9.6): a returning node, even the highest ID,
// neither deposes the leader nor inflates terms; it follows and catches up.
func TestReturningHighestIDDoesNotPreempt(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 3)
	c.crash(3)
	c.requireLeader(2, 60)
	term := c.n(2).node.term
	c.proposeAndCommit(1, 3)

	c.logs.Reset()
	c.restart(3)
	c.rounds(5 * testElection)
	if l := c.leader(); l != 2 || c.n(2).node.term != term {
		t.Fatalf("after restart of node 3: leader %d term %d, want 2 term %d\n%s", l, c.n(2).node.term, term, c.logText())
	}
	if nd := c.n(3).node; nd.lead != 2 || nd.log.committed != c.n(2).node.log.committed {
		t.Fatalf("node 3 follows %d with commit %d", nd.lead, nd.log.committed)
	}
	if strings.Contains(c.logText(), "election.3 Starting election") {
		t.Fatalf("returning node 3 started an election\n%s", c.logText())
	}
	c.proposeAndCommit(3, 2) // forwarded to node 2

	// A long partition of node 3 does not inflate its term (pre-vote), so
	// healing does not depose node 2 either.
	c.isolate(3)
	c.rounds(10 * testElection)
	if nd := c.n(3).node; nd.term != term {
		t.Fatalf("isolated node 3 moved to term %d (leader's %d)", nd.term, term)
	}
	c.heal()
	c.rounds(5 * testElection)
	if l := c.leader(); l != 2 || c.n(2).node.term != term {
		t.Fatalf("after healing: leader %d term %d, want 2 term %d", l, c.n(2).node.term, term)
	}
	c.proposeAndCommit(3, 2)
}

// Raft's Figure 8, in Zab's terms: the new leader must take the log with
// the highest (AcceptedTerm, LastIndex), not the one whose last entry has
// the highest term. Node 2 holds w (term 1) that was never committed;
// node 1 synced to term 2 (empty history) and then term 3. Choosing by
// last entry term would let term 3 commit w, and term 4 (node 3, whose
// last entry x has term 2) overwrite it.
func TestFigure8HighestAcceptedTermWins(t *testing.T) {
	c := newTestCluster(t, 3)
	c.crash(3)
	c.requireLeader(2, 40) // term 1: {1, 2}
	w := c.appendAlone(2)  // w at index 1, term 1, only on node 2
	c.crash(2)

	c.restart(3)
	c.requireLeader(3, 80) // term 2: {1, 3}; history = node 1's (empty)
	x := c.appendAlone(3)  // x at index 1, term 2, only on node 3
	c.crash(3)

	c.restart(2)
	c.requireLeader(2, 80) // term 3: {1, 2}; node 1 has AcceptedTerm 2 > node 2's 1
	c.rounds(3)
	if c.hasEntry(2, w) {
		t.Fatalf("term 3 kept w from the log with the older accepted term")
	}
	c.crash(2)

	c.restart(3)
	c.requireLeader(3, 80) // term 4: {1, 3}; node 1 has AcceptedTerm 3 > node 3's 2
	c.rounds(3)
	if c.hasEntry(3, x) {
		t.Fatalf("term 4 kept x from the log with the older accepted term")
	}
	c.restart(2)
	keys := c.proposeAndCommit(1, 2)
	if e := c.ck.history[0]; e.Origin != keys[0].origin || e.ReqID != keys[0].req {
		t.Fatalf("history starts with %s", fmtEntry(e))
	}
}

// A leader paused (SIGSTOP) past the election timeout and resumed still
// believes it leads, but cannot commit in its stale term: the majority has
// moved on; it learns the new term from the rejections and steps down. Its
// stale-term proposal is re-forwarded and lands exactly once.
func TestStaleLeaderAfterPauseCannotCommit(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 2)
	c.n(3).paused = true
	c.requireLeader(2, 60)
	c.proposeAndCommit(1, 2)

	c.n(3).paused = false
	if c.n(3).node.role != Leader {
		t.Fatal("node 3 should still believe it leads")
	}
	k, err := c.propose(3) // sequenced by the stale leader in term 1
	if err != nil {
		t.Fatal(err)
	}
	c.rounds(3)
	if nd := c.n(3).node; nd.role == Leader || nd.term != c.n(2).node.term {
		t.Fatalf("stale leader: role %v term %d", nd.role, nd.term)
	}
	for _, e := range c.ck.history {
		if e.Term == 1 && e.Index > 2 {
			t.Fatalf("stale term committed %s", fmtEntry(e))
		}
	}
	c.rounds(10)
	if !c.ck.acked[k] {
		t.Fatalf("proposal at the stale leader never committed")
	}
}

// Check quorum: a leader on the minority side steps down within about an
// election timeout; PUBLISH there fails fast (ErrNoLeader) instead of
// hanging; after healing it rejoins as follower and its uncommitted tail is
// discarded while the proposal itself is retried and lands once.
func TestMinorityLeaderStepsDown(t *testing.T) {
	c := newTestCluster(t, 5)
	c.requireLeader(5, 30)
	c.proposeAndCommit(1, 2)
	c.partition([]NodeID{5, 1}, []NodeID{2, 3, 4})
	k, err := c.propose(5) // appended in the old term, cannot commit
	if err != nil {
		t.Fatal(err)
	}
	c.rounds(2*testElection + 1)
	if c.n(5).node.role == Leader {
		t.Fatalf("minority leader did not step down\n%s", c.logText())
	}
	if !strings.Contains(c.logText(), "failure.5 Lost contact with a majority") {
		t.Errorf("log lacks the step-down line")
	}
	c.rounds(testElection) // node 1 notices too
	for _, id := range []NodeID{5, 1} {
		if _, err := c.propose(id); err != ErrNoLeader {
			t.Fatalf("propose on the minority side at %d: %v, want ErrNoLeader", id, err)
		}
	}
	c.requireLeader(4, 60)
	c.proposeAndCommit(2, 2)
	c.heal()
	c.rounds(5 * testElection)
	if l := c.leader(); l != 4 {
		t.Fatalf("after healing leader = %d, want 4", l)
	}
	if !c.ck.acked[k] {
		t.Fatalf("proposal from the old minority leader was not retried")
	}
}

// Exactly-once forwarding: node 1's proposal commits on the old leader and
// node 2, but node 1 never hears of it before the leader dies; node 1
// re-forwards it to the new leader, which recognises it.
func TestForwardDedupAfterFailover(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.setFilter(func(m Message) bool { return m.From == 3 && m.To == 1 })
	k, err := c.propose(1)
	if err != nil {
		t.Fatal(err)
	}
	c.settle()
	if c.ck.acked[k] || !c.hasEntry(2, k) {
		t.Fatalf("setup: acked %v, on node 2 %v", c.ck.acked[k], c.hasEntry(2, k))
	}
	c.crash(3)
	c.setFilter(nil)
	c.requireLeader(2, 60)
	c.rounds(10)
	if !c.ck.acked[k] {
		t.Fatalf("proposal not committed after failover")
	}
	if len(c.ck.history) != 1 {
		t.Fatalf("history has %d entries, want 1 (the retry must be deduplicated)", len(c.ck.history))
	}
}

// The dedup table is the highest ReqID per origin in the log; when a
// divergent tail is truncated it must be recomputed from what remains, or
// a retried proposal whose first copy was discarded would be dropped as a
// duplicate and lost.
func TestTruncationRecomputesDedup(t *testing.T) {
	c := newTestCluster(t, 3)
	c.crash(3)
	c.requireLeader(2, 40) // term 1: {1, 2}
	// Node 1's proposal reaches leader 2's log only.
	c.setFilter(func(m Message) bool { return m.From == 2 && m.To == 1 && m.Type == MsgApp })
	k, err := c.propose(1)
	if err != nil {
		t.Fatal(err)
	}
	c.settle()
	if !c.hasEntry(2, k) || c.hasEntry(1, k) {
		t.Fatal("setup: proposal should be on node 2 only")
	}
	c.crash(2)
	// Term 2: node 3 leads {1, 3} and never receives node 1's forward.
	c.setFilter(func(m Message) bool { return m.From == 1 && m.To == 3 && m.Type == MsgForward })
	c.restart(3)
	c.requireLeader(3, 80)
	c.proposeAndCommit(3, 1) // index 1 in term 2
	// Node 2 returns; syncing truncates its copy of k.
	c.restart(2)
	c.rounds(5)
	if c.hasEntry(2, k) {
		t.Fatal("node 2 kept its divergent tail")
	}
	if m := c.n(2).node.log.reqs.max[1]; m != 0 {
		t.Fatalf("node 2 still records ReqID %d for origin 1 after truncation", m)
	}
	// Term 3: node 2 leads; node 1 re-forwards k, which must be accepted.
	c.crash(3)
	c.setFilter(nil)
	c.requireLeader(2, 80)
	c.rounds(10)
	if !c.ck.acked[k] {
		t.Fatal("retried proposal was wrongly dropped as a duplicate")
	}
}

// A far-behind follower catches up from the leader's log in big pipelined
// batches, asking for the gap explicitly.
func TestCatchUpFarBehindFollowerInBatches(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.crash(1)
	for i := 0; i < 6; i++ {
		c.proposeAndCommit(2, 50)
	}
	var msgs, ents, maxInflight int
	c.setFilter(func(m Message) bool {
		if m.To == 1 && m.Type == MsgApp && len(m.Entries) > 0 {
			msgs++
			ents += len(m.Entries)
		}
		return false
	})
	c.restart(1)
	for r := 0; r < 200 && c.n(1).disk.applied < 300; r++ {
		c.tickAll()
		for i := 0; i < 100; i++ {
			inflight := 0
			for _, e := range c.net {
				if e.to == 1 {
					inflight++
				}
			}
			maxInflight = max(maxInflight, inflight)
			for _, id := range c.ids {
				c.process(id)
			}
			if len(c.net) == 0 {
				break
			}
			c.deliver(c.rng.Intn(len(c.net)))
		}
	}
	if got := c.n(1).disk.applied; got != 300 {
		t.Fatalf("node 1 applied %d of 300", got)
	}
	if ents < 300 || msgs*4 > ents {
		t.Errorf("catch-up used %d messages for %d entries; want big batches", msgs, ents)
	}
	if maxInflight < 2 {
		t.Errorf("no pipelining: at most %d messages in flight to node 1", maxInflight)
	}
	if !strings.Contains(c.logText(), "ordering.1 Requesting catch-up from seq_no=1") {
		t.Errorf("log lacks the catch-up request\n%s", c.logText())
	}
	t.Logf("catch-up: %d entries in %d messages, up to %d in flight", ents, msgs, maxInflight)
}

// Jepsen's NATS lesson: a node whose log lost acknowledged entries must not
// be trusted. Entries 6..10 are committed on {2, 3}; node 2's disk then
// loses them and node 3 dies. Nodes 1 and 2 alone would elect a leader
// whose history lacks 6..10; with MustReach node 2 refuses to take part,
// so the cluster waits for node 3 and nothing is lost.
func TestMustReachCorruptedMinorityNotTrusted(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(3, 5)
	c.isolate(1)
	c.proposeAndCommit(3, 5)
	c.crash(2)
	c.crash(3)
	c.heal()
	d := &c.n(2).disk
	d.log.Truncate(6)
	d.hs.MustReach = 10
	c.restart(2)
	c.rounds(10 * testElection)
	if l := c.leader(); l != 0 {
		t.Fatalf("node %d became leader with a corrupted member\n%s", l, c.logText())
	}
	if _, err := c.propose(1); err != ErrNoLeader {
		t.Fatalf("propose without a trustworthy majority: %v", err)
	}
	c.restart(3)
	c.requireLeader(3, 80)
	c.proposeAndCommit(1, 2)
	c.rounds(5)
	if nd, d := c.n(2).node, c.n(2).disk; nd.mustReach != 0 || d.hs.MustReach != 0 {
		t.Fatalf("node 2 still must reach %d (disk %d)", nd.mustReach, d.hs.MustReach)
	}
	if got := len(c.diskLog(2)); got != 12 {
		t.Fatalf("node 2 has %d entries, want 12", got)
	}
}

// Commit counts only followers that persisted AcceptedTerm = term. Here
// the term-3 leader (node 3) syncs node 1, whose log then holds x, but
// node 1 crashes before persisting AcceptedTerm 3. Counting its plain
// acknowledgement would commit x on {3, 1}; yet nodes 1 and 2 would then
// elect node 2, whose AcceptedTerm 2 beats node 1's 1, and lose x.
func TestCommitCountsOnlySyncedFollowers(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(3, 2)
	c.isolate(1)
	c.crash(3)
	c.restart(3)
	c.requireLeader(3, 80) // term 2 on {2, 3}
	if a1, a2 := c.n(1).node.acceptedTerm, c.n(2).node.acceptedTerm; a1 != 1 || a2 != 2 {
		t.Fatalf("setup: accepted terms %d, %d", a1, a2)
	}
	x := c.appendAlone(3)
	c.crash(3)
	c.crash(1)
	c.partition([]NodeID{1, 3}, []NodeID{2})
	c.restart(1)
	c.restart(3)
	// Run until node 1 has x and its AcceptedTerm 3 is in memory only.
	stopped := c.settleUntil(func() bool {
		sn := c.n(1)
		return sn.node != nil && sn.node.role == Follower && sn.node.lead == 3 &&
			sn.node.acceptedTerm == 3 && sn.disk.hs.AcceptedTerm < 3
	})
	if !stopped || !c.hasEntry(1, x) {
		t.Fatalf("setup: node 1 did not sync (has x: %v)\n%s", c.hasEntry(1, x), c.logText())
	}
	c.crash(1)
	c.settle()
	if _, ok := c.ck.seen[x]; ok {
		t.Fatalf("x committed on an unsynced acknowledgement")
	}
	c.crash(3)
	c.heal()
	c.restart(1)
	c.requireLeader(2, 80)
	c.proposeAndCommit(1, 1)
	c.restart(3)
	c.rounds(10)
}

// Out-of-order appends are held back and used once the gap is filled.
func TestFollowerHoldsBackOutOfOrderAppends(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.setFilter(func(m Message) bool { return m.To == 1 && m.Type == MsgApp })
	c.proposeAndCommit(3, 4)
	c.setFilter(nil)
	// Hand-craft two appends from the leader and deliver them reversed.
	ents := c.diskLog(3)
	nd := c.n(1).node
	base := nd.log.lastIndex()
	if base != 0 {
		t.Fatalf("setup: node 1 has %d entries", base)
	}
	term := c.n(3).node.term
	late := Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 2, LogTerm: ents[1].Term, Entries: ents[2:4]}
	early := Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 0, LogTerm: 0, Entries: ents[0:2]}
	var dbg strings.Builder
	nd.logger = loggerFunc(func(l Level, comp, f string, a ...any) { fmt.Fprintf(&dbg, comp+" "+f+"\n", a...) })
	nd.Step(late)
	nd.Step(early)
	if got := nd.log.lastIndex(); got != 4 {
		t.Fatalf("after reordered appends last index = %d, want 4", got)
	}
	for _, line := range []string{
		"ordering.1 Buffered out-of-order message seq_no=3 (expected 1)",
		"ordering.1 Delivering seq_no=3 from buffer",
	} {
		if !strings.Contains(dbg.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, dbg.String())
		}
	}
}

type loggerFunc func(l Level, comp, format string, args ...any)

func (f loggerFunc) Logf(l Level, comp, format string, args ...any) { f(l, comp, format, args...) }
