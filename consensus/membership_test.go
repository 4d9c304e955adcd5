package consensus

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func newSpareCluster(t *testing.T, size, spares int) *cluster {
	c := newClusterSpares(t, size, spares, 1, defaultSimConfig)
	c.logs = &strings.Builder{}
	c.fifo = true
	return c
}

// change proposes cc at the leader and waits until every running member
// of the resulting configuration applied it.
func (c *cluster) change(cc MembershipChange) uint64 {
	c.tb.Helper()
	l := c.leader()
	if l == 0 {
		c.tb.Fatalf("change %v: no leader", cc)
	}
	idx, err := c.n(l).node.ProposeMembership(cc)
	if err != nil {
		c.tb.Fatalf("change %v at leader %d: %v\n%s", cc, l, err, c.logText())
	}
	for r := 0; r < 100; r++ {
		c.round()
		if len(c.ck.history) >= int(idx) {
			return idx
		}
	}
	c.tb.Fatalf("change %v (index %d) did not commit\n%s", cc, idx, c.logText())
	return 0
}

// join adds id as a learner, lets it catch up, and promotes it.
func (c *cluster) join(id NodeID) {
	c.tb.Helper()
	c.change(MembershipChange{Type: AddLearner, ID: id})
	c.rounds(3)
	l := c.n(c.leader()).node
	for _, ms := range l.Status().Members {
		if ms.ID == id && (!ms.Learner || ms.Lag != 0) {
			c.tb.Fatalf("node %d before promotion: %+v", id, ms)
		}
	}
	c.change(MembershipChange{Type: PromoteLearner, ID: id})
}

// Join (the demo's peer-to-peer growth): the leader adds a learner, which
// catches up without voting, then promotes it; membership entries consume
// no sequence numbers (Seq stays 1, 2, 3... on every node) and the
// joiner, even with a higher ID, does not depose the leader.
func TestJoinAsLearnerThenPromote(t *testing.T) {
	c := newSpareCluster(t, 1, 2)
	c.requireLeader(1, 10)
	c.proposeAndCommit(1, 3)
	c.join(2)
	c.proposeAndCommit(2, 2)
	c.join(3)
	c.proposeAndCommit(3, 2)
	if l := c.leader(); l != 1 {
		t.Fatalf("leader %d after joins, want 1 (joining never deposes)\n%s", l, c.logText())
	}
	st := c.n(1).node.Status()
	if len(st.Members) != 3 || st.Members[1].Learner || st.Members[2].Learner || !st.Voter {
		t.Fatalf("members %+v", st.Members)
	}
	for _, id := range c.ids {
		var seq uint64
		for _, e := range c.diskLog(id) {
			if e.Type == EntryNormal {
				seq++
			}
			if e.Seq != seq {
				t.Fatalf("node %d: entry %d (type %d) has Seq %d, want %d", id, e.Index, e.Type, e.Seq, seq)
			}
		}
		if seq != 7 {
			t.Fatalf("node %d holds %d messages, want 7", id, seq)
		}
	}
	// Now a majority of three: losing the leader elects another.
	c.crash(1)
	c.requireLeader(3, 60)
	c.proposeAndCommit(2, 1)
}

// A learner never counts toward commit: with the only other voter down, a
// two-voter... here: one voter plus a learner commits alone (the learner's
// acknowledgement is not needed), and a cluster of two voters whose second
// voter is down does not commit even though a learner acknowledges.
func TestLearnerDoesNotCountOrCampaign(t *testing.T) {
	c := newSpareCluster(t, 2, 1)
	c.requireLeader(2, 30)
	c.change(MembershipChange{Type: AddLearner, ID: 3})
	c.proposeAndCommit(1, 2)
	c.crash(1)
	k, err := c.propose(2)
	if err != nil {
		t.Fatal(err)
	}
	c.rounds(3)
	if c.ck.acked[k] {
		t.Fatalf("committed with one voter of two and a learner\n%s", c.logText())
	}
	// The leader steps down (check quorum: the learner does not count);
	// the learner never campaigns.
	c.rounds(6 * testElection)
	if nd := c.n(3).node; nd.role != Follower || nd.term != c.n(2).node.term {
		t.Fatalf("learner: role %v term %d (voter's term %d)", nd.role, nd.term, c.n(2).node.term)
	}
	if c.n(2).node.role == Leader {
		t.Fatalf("leader kept leading with a learner for a majority")
	}
	c.restart(1)
	if l := c.waitLeader(80); l == 0 || l == 3 {
		t.Fatalf("leader %d once the voter returned", l)
	}
	c.rounds(5)
	if !c.ck.acked[k] {
		t.Fatalf("proposal did not commit once the voter returned")
	}
}

func TestProposeMembershipErrors(t *testing.T) {
	c := newSpareCluster(t, 3, 1)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 1)
	l := c.n(3).node
	for _, tc := range []struct {
		cc   MembershipChange
		want error
	}{
		{MembershipChange{Type: PromoteLearner, ID: 4}, ErrUnknownMember},
		{MembershipChange{Type: RemoveMember, ID: 9}, ErrUnknownMember},
		{MembershipChange{Type: AddLearner, ID: 2}, ErrMemberExists},
		{MembershipChange{Type: AddLearner, ID: 0}, ErrBadChange},
		{MembershipChange{Type: 7, ID: 4}, ErrBadChange},
		{MembershipChange{Type: AddLearner, ID: 4, Addr: strings.Repeat("x", MaxAddrLen+1)}, ErrBadChange},
	} {
		if _, err := l.ProposeMembership(tc.cc); !errors.Is(err, tc.want) {
			t.Errorf("%v: %v, want %v", tc.cc, err, tc.want)
		}
	}
	if _, err := c.n(1).node.ProposeMembership(MembershipChange{Type: AddLearner, ID: 4}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("at a follower: %v", err)
	}
	if _, err := l.ProposeMembership(MembershipChange{Type: AddLearner, ID: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ProposeMembership(MembershipChange{Type: RemoveMember, ID: 1}); !errors.Is(err, ErrChangePending) {
		t.Errorf("second change while one is uncommitted: %v", err)
	}
	if err := l.Propose(Proposal{Type: EntryMembership}); !errors.Is(err, ErrBadChange) {
		t.Errorf("Propose of a membership entry: %v", err)
	}
	c.rounds(3)
	if _, err := l.ProposeMembership(MembershipChange{Type: RemoveMember, ID: 4}); err != nil {
		t.Errorf("change after the previous committed: %v", err)
	}
	one := newSpareCluster(t, 1, 0)
	one.requireLeader(1, 5)
	if _, err := one.n(1).node.ProposeMembership(MembershipChange{Type: RemoveMember, ID: 1}); !errors.Is(err, ErrLastVoter) {
		t.Errorf("removing the last voter: %v", err)
	}
}

// A removed follower no longer counts, and cannot disturb the cluster:
// its elections are ignored, the leader's term does not move.
func TestRemovedNodeIsIgnored(t *testing.T) {
	c := newSpareCluster(t, 3, 0)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 2)
	c.change(MembershipChange{Type: RemoveMember, ID: 1})
	c.rounds(2)
	if nd := c.n(1).node; nd.isVoter(1) {
		t.Fatalf("node 1 does not know it was removed (log ends at %d)", nd.log.lastIndex())
	}
	term := c.n(3).node.term
	c.isolate(1)
	c.rounds(6 * testElection)
	c.heal()
	c.n(1).node.becomePreCandidate() // even if it tried
	c.n(1).node.becomeCandidate()
	c.rounds(4 * testElection)
	if l := c.leader(); l != 3 || c.n(3).node.term != term {
		t.Fatalf("leader %d term %d, want 3 in term %d: a removed node disturbed the cluster\n%s", l, c.n(3).node.term, term, c.logText())
	}
	// Two voters left: both needed.
	c.crash(2)
	k, _ := c.propose(3)
	c.rounds(3)
	if c.ck.acked[k] {
		t.Fatalf("committed with the removed node's acknowledgement")
	}
}

// A leader that removes itself keeps leading until the removal commits,
// then hands over at once (no election timeout) and never campaigns again.
func TestLeaderRemovesItself(t *testing.T) {
	c := newSpareCluster(t, 3, 0)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 2)
	c.change(MembershipChange{Type: RemoveMember, ID: 3})
	c.rounds(2)
	if nd := c.n(3).node; nd.role == Leader {
		t.Fatalf("node 3 still leads after its removal committed")
	}
	if l := c.leader(); l == 0 || l == 3 {
		t.Fatalf("no new leader two rounds after the removal (TimeoutNow): %d\n%s", l, c.logText())
	}
	c.proposeAndCommit(1, 2)
	c.rounds(5 * testElection)
	if nd := c.n(3).node; nd.role != Follower {
		t.Fatalf("removed node campaigns: %v", nd.role)
	}
}

// Leadership transfer to a lower ID: the bully order and stickiness would
// keep node 3; the transfer-initiated election is accepted anyway.
// Proposals made meanwhile commit after the transfer.
func TestTransferLeadershipToLowerID(t *testing.T) {
	c := newSpareCluster(t, 3, 0)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 3)
	if err := c.n(3).node.TransferLeadership(1); err != nil {
		t.Fatal(err)
	}
	k, _ := c.propose(3)
	if c.n(3).node.Status().Sequencing {
		t.Fatalf("leader still sequencing during the transfer")
	}
	c.rounds(3)
	if l := c.leader(); l != 1 {
		t.Fatalf("leader %d after transfer to 1\n%s", l, c.logText())
	}
	c.rounds(3)
	if !c.ck.acked[k] {
		t.Fatalf("proposal made during the transfer did not commit")
	}
	c.proposeAndCommit(3, 1)
	// Most up-to-date voter.
	if err := c.n(1).node.TransferLeadership(0); err != nil {
		t.Fatal(err)
	}
	c.rounds(3)
	if l := c.leader(); l == 1 || l == 0 {
		t.Fatalf("leader %d after transfer to the best voter", l)
	}
}

// A transfer that cannot complete (the target is down) is abandoned after
// an election timeout; the leader sequences again.
func TestTransferTimesOut(t *testing.T) {
	c := newSpareCluster(t, 3, 0)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 1)
	c.crash(1)
	l := c.n(3).node
	if err := l.TransferLeadership(1); err != nil {
		t.Fatal(err)
	}
	if err := l.TransferLeadership(2); !errors.Is(err, ErrTransferring) {
		t.Fatalf("second transfer: %v", err)
	}
	k, _ := c.propose(2)
	c.rounds(testElection + 2)
	if c.leader() != 3 || l.transferee != 0 || !c.ck.acked[k] {
		t.Fatalf("leader %d transferee %d acked %v\n%s", c.leader(), l.transferee, c.ck.acked[k], c.logText())
	}
	if err := c.n(2).node.TransferLeadership(0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("at a follower: %v", err)
	}
}

// The configuration survives restarts: from the persisted ConfState and
// the membership entries in the log.
func TestMembershipSurvivesRestart(t *testing.T) {
	c := newSpareCluster(t, 3, 1)
	c.requireLeader(3, 30)
	c.join(4)
	c.change(MembershipChange{Type: RemoveMember, ID: 1})
	c.proposeAndCommit(2, 2)
	for _, id := range c.ids {
		c.crash(id)
	}
	for _, id := range c.ids {
		c.restart(id)
	}
	for _, id := range []NodeID{2, 3, 4} {
		if got := c.n(id).node.voters(); len(got) != 3 || got[0] != 2 || got[2] != 4 {
			t.Fatalf("node %d voters after restart: %v", id, got)
		}
	}
	c.requireLeader(4, 80) // (node 1 is removed: it does not campaign)
	c.proposeAndCommit(2, 1)
	if st := c.n(4).node.Status(); len(st.Members) != 3 {
		t.Fatalf("members %+v", st.Members)
	}
}

// A node with a stale configuration must not win an election with the
// acknowledgements of nodes that were removed without learning it: the
// bully election counts under the coordinator's own configuration, so
// voters refuse a coordinator whose configuration differs and whose
// (AcceptedTerm, configuration position) is older than theirs.
func TestStaleConfigurationCannotWin(t *testing.T) {
	c := newSpareCluster(t, 5, 0)
	c.requireLeader(5, 30)
	c.proposeAndCommit(1, 2)
	c.crash(4) // keeps the initial configuration {1..5}
	c.isolate(3)
	c.change(MembershipChange{Type: RemoveMember, ID: 3}) // 3 never learns
	c.heal()
	c.isolate(3)
	c.isolate(1)
	c.change(MembershipChange{Type: RemoveMember, ID: 1}) // 1 knows {1,2,4,5} only
	c.proposeAndCommit(5, 2)
	// 5 and 2 are cut off from the rest; 4 returns next to 1 and 3, both
	// removed but unaware, all with the same AcceptedTerm. Under its
	// stale configuration {1..5}, 4 would win with their acknowledgements.
	c.partition([]NodeID{2, 5}, []NodeID{1, 3, 4})
	c.restart(4)
	c.rounds(8 * testElection)
	for term, id := range c.ck.leaders {
		if id != 5 {
			t.Fatalf("node %d led term %d: removed nodes elected it under a stale configuration\n%s", id, term, c.logText())
		}
	}
	c.heal()
	c.rounds(4 * testElection)
	c.proposeAndCommit(2, 1)
}

// A membership entry carries the members' addresses: the added member's
// from the change, a removed member's dropped, the rest kept.
func TestMembershipEntryCarriesAddresses(t *testing.T) {
	cs := ConfState{Voters: []NodeID{1, 2}, Addrs: map[NodeID]string{1: "h1:1", 2: "h2:2"}}
	next, err := cs.applyChange(MembershipChange{Type: AddLearner, ID: 3, Addr: "h3:3"})
	if err != nil {
		t.Fatal(err)
	}
	next, err = next.applyChange(MembershipChange{Type: RemoveMember, ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[NodeID]string{2: "h2:2", 3: "h3:3"}
	if !maps.Equal(next.Addrs, want) || !maps.Equal(cs.Addrs, map[NodeID]string{1: "h1:1", 2: "h2:2"}) {
		t.Fatalf("addrs %v (before: %v), want %v", next.Addrs, cs.Addrs, want)
	}
	me := MembershipEntry{Change: MembershipChange{Type: RemoveMember, ID: 1}, Voters: next.Voters, Learners: next.Learners, Addrs: next.Addrs}
	got, err := DecodeMembership(encodeMembership(me))
	if err != nil || !maps.Equal(got.Addrs, want) || !slices.Equal(got.Learners, []NodeID{3}) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	// Version 1 entries (no addresses) still decode.
	v1 := []byte{1, byte(AddLearner), 3, 1, 1, 1, 3}
	if got, err := DecodeMembership(v1); err != nil || got.Addrs != nil || !slices.Equal(got.Voters, []NodeID{1}) {
		t.Fatalf("v1: %+v, %v", got, err)
	}
}
