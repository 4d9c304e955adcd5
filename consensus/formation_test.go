package consensus

import (
	"strings"
	"testing"
)

// Formation (ARCHITECTURE.md): when a new cluster's members start within
// a few seconds of each other, the highest ID ends up leading even if it
// starts last — but only while nothing has been sequenced.

// awaitLeader runs rounds until want leads (sequencing, followed by all).
func (c *cluster) awaitLeader(want NodeID, maxRounds int) {
	c.tb.Helper()
	for r := 0; r < maxRounds; r++ {
		if c.leader() == want {
			c.requireLeader(want, maxRounds)
			return
		}
		c.round()
	}
	c.tb.Fatalf("leader = %d, want %d\n%s", c.leader(), want, c.logText())
}

// Nodes 1 and 2 form the cluster first; node 3 starts before anything is
// published and takes over.
func TestFormationHighestIDLeadsWhenLast(t *testing.T) {
	c := newTestCluster(t, 3)
	c.crash(3) // not started yet
	c.requireLeader(2, 40)
	term := c.n(2).node.term
	c.logs.Reset()
	c.restart(3)
	c.awaitLeader(3, 10*testElection)
	if nd := c.n(3).node; nd.term <= term {
		t.Fatalf("node 3 leads in term %d, not after node 2's %d", nd.term, term)
	}
	if !strings.Contains(c.logText(), "election.3 Leader node_2 has sequenced nothing; taking over as a higher ID") {
		t.Errorf("log lacks the takeover line\n%s", c.logText())
	}
	c.proposeAndCommit(1, 2)
	c.proposeAndCommit(2, 2)
	// Now that it has sequenced messages, nothing preempts it.
	c.rounds(5 * testElection)
	if l := c.leader(); l != 3 {
		t.Fatalf("leader %d after publishing", l)
	}
}

// Same, but a message was published before node 3 starts: node 2 stays
// leader (same term), node 3 follows and catches up.
func TestFormationNoPreemptionAfterPublish(t *testing.T) {
	c := newTestCluster(t, 3)
	c.crash(3)
	c.requireLeader(2, 40)
	c.proposeAndCommit(1, 1)
	term := c.n(2).node.term
	c.logs.Reset()
	c.restart(3)
	c.rounds(10 * testElection)
	if l := c.leader(); l != 2 || c.n(2).node.term != term {
		t.Fatalf("leader %d term %d, want 2 in term %d\n%s", l, c.n(2).node.term, term, c.logText())
	}
	if nd := c.n(3).node; nd.lead != 2 || nd.log.committed != 1 {
		t.Fatalf("node 3 follows %d with commit %d", nd.lead, nd.log.committed)
	}
	if strings.Contains(c.logText(), "election.3 Starting election") {
		t.Fatalf("node 3 campaigned against a leader that sequenced messages\n%s", c.logText())
	}
	c.proposeAndCommit(3, 2)
}

// A leader with sequenced but not yet committed entries is not provisional
// either: its own log decides, not its followers'.
func TestFormationLeaderWithUncommittedEntriesStays(t *testing.T) {
	c := newTestCluster(t, 3)
	c.crash(3)
	c.requireLeader(2, 40)
	c.propose(2)
	for c.process(2) { // sequenced at node 2, not yet acknowledged
	}
	if nd := c.n(2).node; nd.log.lastIndex() != 1 || nd.provisional() {
		t.Fatalf("setup: node 2 log ends at %d", nd.log.lastIndex())
	}
	c.restart(3)
	c.rounds(10 * testElection)
	if l := c.leader(); l != 2 {
		t.Fatalf("leader %d, want 2", l)
	}
}

// Five nodes: 1..3 form, 4 and then 5 start later; 5 ends up leading,
// each takeover needing a majority (at most one leader per term: the
// checker runs throughout).
func TestFormationFiveNodesStaggered(t *testing.T) {
	c := newTestCluster(t, 5)
	c.crash(4)
	c.crash(5)
	c.requireLeader(3, 40)
	c.restart(4)
	c.awaitLeader(4, 10*testElection)
	c.restart(5)
	c.awaitLeader(5, 10*testElection)
	c.proposeAndCommit(1, 3)
	c.rounds(5 * testElection)
	if l := c.leader(); l != 5 {
		t.Fatalf("leader %d", l)
	}
}
