package consensus

import (
	"math"
	"strings"
	"testing"
)

// loseTail models a restart after the log lost its tail (a cut file, a
// length prefix that makes the rest look torn): the log ends at keep, and
// HardState.Acked says how far it reached (the core holds the rest as
// damaged, recover.go). (It used to set MustReach instead.)
func (c *cluster) loseTail(id NodeID, keep uint64) {
	c.tb.Helper()
	sn := c.n(id)
	if sn.node != nil {
		c.tb.Fatalf("loseTail: node %d is running", id)
	}
	d := &sn.disk
	keep = max(keep, d.log.FirstIndex()-1) // (a corrupt record is one the log holds)
	old := d.log.LastIndex()
	d.log.Truncate(keep + 1)
	for i := range d.faulty {
		if i > keep {
			delete(d.faulty, i)
		}
	}
	d.hs.Commit = min(d.hs.Commit, keep)
	d.applied = min(d.applied, keep)
	c.tracef("node %d lost its log after %d (had %d)", id, keep, old)
}

// wipeDisk models a restart with an empty data directory (disk replaced):
// log and hard state are gone; the caller marks the loss as unknown.
func (c *cluster) wipeDisk(id NodeID) {
	sn := c.n(id)
	sn.disk = simDisk{log: NewMemoryStorage(), hs: HardState{MustReach: math.MaxUint64}}
	c.tracef("node %d lost its whole disk", id)
}

// The real-process failure: a follower restarts with half its log (a
// corrupt record), same leader, same term. The leader still believes the
// follower holds everything it acknowledged; it must notice the regression
// and re-send the lost entries, and the follower must be trusted again
// once it holds them.
func TestRegressedFollowerIsRefilled(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 60)
	term := c.n(3).node.term
	c.crash(1)
	c.loseTail(1, 30)
	c.restart(1)
	c.rounds(4 * testElection)
	if l := c.leader(); l != 3 || c.n(3).node.term != term {
		t.Fatalf("leader %d term %d; the repair must not need an election", l, c.n(3).node.term)
	}
	if got := c.n(1).disk.log.LastIndex(); got != 60 {
		t.Fatalf("node 1 holds %d of 60 entries after the leader's heartbeats\n%s", got, c.logText())
	}
	if nd := c.n(1).node; nd.mustReach != 0 || c.n(1).disk.hs.MustReach != 0 {
		t.Fatalf("node 1 still must reach %d", nd.mustReach)
	}
	if !strings.Contains(c.logText(), "ordering.1 Requesting catch-up from seq_no=31") {
		t.Errorf("log lacks the catch-up request")
	}
	c.proposeAndCommit(1, 3)
	if got := c.n(1).disk.applied; got != 63 {
		t.Fatalf("node 1 applied %d, want 63", got)
	}
}

// A follower restarted with an empty data directory (same leader, same
// term) is refilled, and until it holds everything it may have
// acknowledged it is not trusted. Term 2's history is 1..10; entries
// 11..20 are committed on {3, 1} only. Node 1 loses its disk, re-syncs to
// term 2's history but receives nothing beyond it. Trusting it then (as
// if syncing with the current term repaired it) would let nodes 1 and 2
// elect a leader without 11..20.
func TestWipedFollowerNotTrustedUntilRefilled(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(3, 10)
	c.crash(3)
	c.restart(3)
	c.requireLeader(3, 100) // term 2, history 1..10 (node 3 outranks node 2)
	if nd := c.n(3).node; nd.term != 2 || nd.syncIndex != 10 {
		t.Fatalf("setup: term %d sync index %d", nd.term, nd.syncIndex)
	}
	c.isolate(2)
	c.proposeAndCommit(3, 10)
	c.crash(1)
	c.wipeDisk(1)
	c.heal()
	c.isolate(2)
	c.mutate = func(m *Message) { // node 1 gets term 2's history only
		if m.To == 1 && m.Type == MsgApp {
			for len(m.Entries) > 0 && m.Entries[len(m.Entries)-1].Index > 10 {
				m.Entries = m.Entries[:len(m.Entries)-1]
			}
		}
	}
	c.restart(1)
	c.rounds(3 * testElection)
	if nd := c.n(1).node; nd.lead != 3 || nd.acceptedTerm != 2 || c.n(1).disk.log.LastIndex() != 10 {
		t.Fatalf("setup: node 1 lead %d accepted term %d last %d\n%s", nd.lead, nd.acceptedTerm, c.n(1).disk.log.LastIndex(), c.logText())
	}
	if nd := c.n(1).node; nd.mustReach == 0 {
		t.Fatalf("node 1 trusted again with 10 of the 20 entries it may have acknowledged\n%s", c.logText())
	}
	c.crash(3)
	c.heal()
	c.rounds(10 * testElection)
	if l := c.leader(); l != 0 {
		t.Fatalf("node %d became leader while node 3, the only full copy, is down\n%s", l, c.logText())
	}
	c.mutate = nil
	c.restart(3)
	c.requireLeader(3, 100)
	c.rounds(3 * testElection)
	if nd := c.n(1).node; nd.mustReach != 0 || c.n(1).disk.log.LastIndex() != 20 {
		t.Fatalf("node 1 not repaired: must reach %d, last %d\n%s", nd.mustReach, c.n(1).disk.log.LastIndex(), c.logText())
	}
	c.proposeAndCommit(1, 2)
}

// Same leader, same term, nothing starved: the wiped follower is refilled
// and trusted again without waiting for a leader change.
func TestWipedFollowerRepairedWithoutLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 40)
	term := c.n(3).node.term
	c.crash(1)
	c.wipeDisk(1)
	c.restart(1)
	c.rounds(4 * testElection)
	nd := c.n(1).node
	if l := c.leader(); l != 3 || c.n(3).node.term != term {
		t.Fatalf("leader %d term %d", l, c.n(3).node.term)
	}
	if nd.mustReach != 0 || c.n(1).disk.log.LastIndex() != 40 || nd.term != term {
		t.Fatalf("node 1: must reach %d, last %d, term %d\n%s", nd.mustReach, c.n(1).disk.log.LastIndex(), nd.term, c.logText())
	}
	if nd.vote != 3 {
		t.Errorf("repaired node 1 votes %d in term %d; it must not acknowledge a rival in a term it may have voted in", nd.vote, term)
	}
}
