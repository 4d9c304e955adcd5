package consensus

import "slices"

// Status is a snapshot for STATUS / INFO.
type Status struct {
	ID           NodeID
	Role         Role
	Term         uint64
	Leader       NodeID
	Sequencing   bool
	AcceptedTerm uint64
	FirstIndex   uint64
	LastIndex    uint64
	Commit       uint64
	Applied      uint64
	MustReach    uint64
	Pending      int // proposals waiting to be seen committed
	Members      []MemberStatus
	// Voter: this node votes in the configuration in force (false for a
	// learner, a node that has not joined yet, and a removed node).
	Voter bool
	// ConfIndex is the index of the configuration in force (its
	// membership entry; 0 for the initial one); ConfPending is true while
	// a membership entry is not committed yet (as far as this node knows).
	ConfIndex   uint64
	ConfPending bool
	// Transferee is the node the leader is handing its leadership to (0:
	// none).
	Transferee NodeID
	// LastSeq and CommitSeq are the message sequence numbers (Entry.Seq)
	// of LastIndex and Commit.
	LastSeq, CommitSeq uint64
	// Faulty is the number of damaged positions this node holds beyond
	// LastIndex (waiting for a leader to repair them); HeldIndex is
	// where they end (LastIndex if none).
	Faulty    int
	HeldIndex uint64
	// Lost (leader only) lists the log indexes that no member holds
	// intact and that may have been committed: the leader sequences
	// nothing until an operator acts (see recover.go).
	Lost []uint64
}

// MemberStatus is the leader's view of a member (for non-leaders only ID
// and Self are filled in).
type MemberStatus struct {
	ID          NodeID
	Self        bool
	Learner     bool   // a non-voting learner (else a voter)
	Match       uint64 // highest index known persisted on the member
	Lag         uint64 // leader's last index - Match
	LastContact int    // ticks since last heard from
	Active      bool   // heard from within ElectionTicks
	Synced      bool   // synchronised with this leader's term
	State       string // "probe" or "replicate"
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() Status {
	st := Status{
		ID: n.id, Role: n.role, Term: n.term, Leader: n.lead,
		Sequencing: n.sequencing(), AcceptedTerm: n.acceptedTerm,
		FirstIndex: n.log.firstIndex(), LastIndex: n.log.lastIndex(), Commit: n.log.committed,
		Applied: n.log.applied, MustReach: n.mustReach, Pending: n.fwd.count,
		Voter: n.isVoter(n.id), ConfIndex: n.conf().Index, ConfPending: n.log.conf.pending(),
		Transferee: n.transferee,
		LastSeq:    n.log.conf.seq(n.log.lastIndex()), CommitSeq: n.log.conf.seq(n.log.committed),
		Faulty: len(n.log.held), HeldIndex: n.log.heldEnd(),
	}
	if n.rec != nil {
		st.Lost = slices.Clone(n.rec.lost)
	}
	last := n.log.lastIndex()
	for _, id := range n.members() {
		ms := MemberStatus{ID: id, Self: id == n.id, Learner: !n.isVoter(id)}
		if n.role == Leader {
			if ms.Self {
				ms.Match, ms.Active, ms.Synced = n.log.stableIndex(), true, n.acceptedTerm == n.term
				ms.State = replicate.String()
			} else if pr := n.prs[id]; pr != nil {
				ms.Match, ms.LastContact, ms.Synced = pr.match, pr.lastContact, pr.synced
				ms.Active = pr.lastContact < n.cfg.ElectionTicks
				ms.State = pr.state.String()
			}
			if ms.Match < last {
				ms.Lag = last - ms.Match
			}
		}
		st.Members = append(st.Members, ms)
	}
	return st
}
