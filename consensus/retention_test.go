package consensus

import (
	"strings"
	"testing"
)

// compact drops node id's entries before first (retention), as the caller
// does while running; forgetTerm models a Storage that cannot answer
// Term(first-1) afterwards.
func (c *cluster) compact(id NodeID, first uint64, forgetTerm bool) {
	s := c.n(id).disk.log
	s.Compact(first)
	if forgetTerm {
		s.prevTerm = 0
	}
	c.tracef("node %d compacts its log to %d (forget term %v)", id, first, forgetTerm)
}

func (c *cluster) requireLog(id NodeID, first, last uint64) {
	c.tb.Helper()
	s := c.n(id).disk.log
	if s.FirstIndex() != first || s.LastIndex() != last {
		c.tb.Fatalf("node %d log [%d, %d], want [%d, %d]\n%s", id, s.FirstIndex(), s.LastIndex(), first, last, c.logText())
	}
	for _, e := range c.diskLog(id) {
		if h := c.ck.history[e.Index-1]; !sameEntry(e, h) {
			c.tb.Fatalf("node %d holds %s at %d, history %s", id, fmtEntry(e), e.Index, fmtEntry(h))
		}
	}
}

// A follower whose match is below the leader's first index (the leader
// dropped old segments) restarts its log at the leader's first index and
// catches up from there; what it missed before is gone for it (retention
// is the user's choice), everything after is delivered.
func TestCatchUpPastRetention(t *testing.T) {
	for _, forget := range []bool{false, true} {
		c := newTestCluster(t, 3)
		c.requireLeader(3, 30)
		c.proposeAndCommit(2, 5)
		c.crash(1)
		c.proposeAndCommit(2, 35)
		c.compact(3, 31, forget)
		c.compact(2, 31, forget)
		c.logs.Reset()
		c.restart(1)
		c.rounds(4 * testElection)
		c.requireLog(1, 31, 40)
		if sn := c.n(1); sn.disk.applied != 40 || sn.node.mustReach != 0 {
			t.Fatalf("forget=%v: node 1 applied %d, must reach %d", forget, sn.disk.applied, sn.node.mustReach)
		}
		if !strings.Contains(c.logText(), "storage.1 Restarting the log at seq_no=31") {
			t.Errorf("forget=%v: log lacks the restart line\n%s", forget, c.logText())
		}
		c.proposeAndCommit(1, 2)
		// The restarted log serves a later leader.
		c.crash(3)
		c.requireLeader(2, 80)
		c.proposeAndCommit(1, 2)
		c.requireLog(1, 31, 44)
	}
}

// A follower whose own log starts after retention, with the term of the
// entry before its first one unknown, still accepts the leader's entries:
// that entry is committed, so it matches without its term.
func TestFollowerRetentionBoundaryTermUnknown(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 30)
	c.crash(1)
	c.compact(1, 31, true) // node 1 keeps nothing, not even the term of 30
	c.proposeAndCommit(2, 10)
	c.restart(1)
	c.rounds(4 * testElection)
	c.requireLog(1, 31, 40)
	if got := c.n(1).disk.applied; got != 40 {
		t.Fatalf("node 1 applied %d", got)
	}
}

// A new leader whose log ends before the first index of the most advanced
// log of its election (that voter dropped old segments) restarts its own
// log there and fetches the rest, instead of failing to synchronise.
func TestCoordinatorFetchesPastRetention(t *testing.T) {
	for _, forget := range []bool{false, true} {
		c := newTestCluster(t, 3)
		c.requireLeader(3, 30)
		c.crash(2)
		c.proposeAndCommit(1, 40) // on {1, 3}
		c.compact(1, 31, forget)
		c.crash(3)
		c.restart(2)
		c.requireLeader(2, 100) // fetches from node 1, whose log is [31, 40]
		c.requireLog(2, 31, 40)
		c.proposeAndCommit(1, 2)
		c.requireLog(2, 31, 42)
		c.requireLog(1, 31, 42)
	}
}

// A follower whose log regressed (a corrupt record) to below the leader's
// first index is reset there, refilled, and trusted again once it holds
// what it had.
func TestRegressedFollowerPastRetention(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 40)
	c.crash(1)
	c.loseTail(1, 20)
	c.compact(3, 31, true)
	c.compact(2, 31, true)
	c.restart(1)
	c.rounds(4 * testElection)
	c.requireLog(1, 31, 40)
	if nd := c.n(1).node; nd.mustReach != 0 {
		t.Fatalf("node 1 still must reach %d\n%s", nd.mustReach, c.logText())
	}
	c.proposeAndCommit(1, 2)
}

// The common retention case with a Storage that does not keep the term of
// the entry before its first one: the leader keeps entries from the
// slowest active follower's match on, so that follower sits exactly at the
// boundary, and here it does not even know its entries are committed. It
// must be caught up, not made to drop its whole log. The leader knows the
// boundary term if it saw it (it remembers where terms start); after a
// restart it does not, and the follower's acknowledgement settles it.
func TestFollowerAtRetentionBoundaryKeepsItsLog(t *testing.T) {
	for _, variant := range []string{"same leader", "leader forgot terms", "leader re-elected"} {
		leaderForgot := variant == "leader forgot terms"
		c := newTestCluster(t, 3)
		c.requireLeader(3, 30)
		c.mutate = func(m *Message) { // node 1 never learns the commit index
			if m.To == 1 && (m.Type == MsgApp || m.Type == MsgHeartbeat) {
				m.Commit = 0
			}
		}
		c.proposeAndCommit(2, 30)
		c.mutate = nil
		if nd := c.n(1).node; nd.log.committed != 0 || c.n(1).disk.log.LastIndex() != 30 {
			t.Fatalf("setup: node 1 commit %d last %d", nd.log.committed, c.n(1).disk.log.LastIndex())
		}
		c.isolate(1)
		c.proposeAndCommit(2, 10)
		c.compact(3, 31, true)
		c.compact(2, 31, true)
		if leaderForgot {
			c.n(3).node.log.runs = nil // as after a restart
		}
		if variant == "leader re-elected" {
			// A new term without a restart: no acknowledgement from node 1
			// yet, only the remembered term of seq_no 30 avoids a restart.
			c.isolate(3)
			c.rounds(3 * testElection)
			c.heal()
			c.requireLeader(3, 100)
		}
		c.heal()
		if _, err := c.propose(3); err != nil { // an append reaches node 1 before any heartbeat
			t.Fatal(err)
		}
		c.settle()
		c.rounds(4 * testElection)
		c.requireLog(1, 1, 41)
		if got := c.n(1).disk.applied; got != 41 {
			t.Fatalf("%s: node 1 applied %d", variant, got)
		}
	}
}
