package replica

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/peer"
	"github.com/ordo-broker/ordo/consensus"
)

// The membership operations an operator runs (CLUSTER MEMBERS, LEAVE,
// REMOVE, STEPDOWN; SIGTERM's hand-off): each waits, bounded, for its
// effect.

// Member is one member as this node sees it.
type Member struct {
	ID     uint64
	Addr   string
	Self   bool
	Leader bool
	Voter  bool // else a learner
	// From the leader's view (Known false elsewhere): whether it answered
	// within a leader timeout, and how far behind the leader's log it is.
	Known  bool
	Active bool
	Match  uint64
	Lag    uint64
}

// Members lists the members of the configuration in force.
func (r *Replica) Members() []Member {
	st, _ := r.Status()
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	cs := r.conf[0]
	var out []Member
	for _, id := range slices.Sorted(slices.Values(append(slices.Clone(cs.Voters), cs.Learners...))) {
		m := Member{ID: uint64(id), Addr: r.addrLocked(uint64(id)), Self: id == r.id, Leader: id == st.Leader, Voter: cs.IsVoter(id)}
		if m.Self && r.cfg.Addr != "" {
			m.Addr = r.cfg.Addr
		}
		for _, ms := range st.Members {
			if ms.ID == id && st.Role == consensus.Leader {
				m.Known, m.Active, m.Match, m.Lag = true, ms.Active, ms.Match, ms.Lag
			}
		}
		out = append(out, m)
	}
	return out
}

// SoleVoter reports whether this node is the only voter of its
// configuration (a cluster of one: it elects itself at once).
func (r *Replica) SoleVoter() bool {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	v := r.conf[0].Voters
	return len(v) == 1 && uint64(v[0]) == r.cfg.ID
}

// Errors of the membership operations.
var (
	ErrMembershipTimeout = errors.New("the membership change did not commit in time (is a majority of voters up?); it may still complete")
	ErrLastVoter         = errors.New("this node is the only voter: there is no one to hand the cluster to")
	ErrNotMember         = errors.New("no such member")
)

// do runs f on the replica's loop and waits for it.
func (r *Replica) do(f func()) error {
	done := make(chan struct{})
	select {
	case r.calls <- func() { f(); close(done) }:
	case <-r.stopc:
		return ErrShuttingDown
	}
	select {
	case <-done:
		return nil
	case <-r.stopc:
		return ErrShuttingDown
	}
}

// waitFor polls cond on the loop until it holds or limit passes.
func (r *Replica) waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		ok := false
		if err := r.do(func() { ok = cond() }); err != nil {
			return false
		}
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TransferLeadership hands leadership to `to` (0: the most up-to-date
// voter) and waits until another node leads. It is a no-op on a
// follower.
func (r *Replica) TransferLeadership(to uint64, limit time.Duration) error {
	var err error
	if e := r.do(func() {
		if r.core.Status().Role != consensus.Leader {
			return
		}
		err = r.core.TransferLeadership(consensus.NodeID(to))
	}); e != nil {
		return e
	}
	if errors.Is(err, consensus.ErrUnknownMember) && to == 0 {
		return ErrLastVoter
	}
	if err != nil {
		return err
	}
	if !r.waitFor(limit, func() bool {
		// (A leader that stepped down may still name itself until it
		// hears from its successor.)
		st := r.core.Status()
		return st.Role != consensus.Leader && st.Leader != 0 && st.Leader != r.id
	}) {
		return errors.New("leadership transfer did not complete in time")
	}
	return nil
}

// Remove asks the leader to remove member id and waits (at most limit)
// until the removal is committed as this node knows it.
func (r *Replica) Remove(id uint64, limit time.Duration) error {
	var known bool
	r.do(func() {
		inForce, committed := r.core.Membership()
		known = inForce.IsMember(consensus.NodeID(id)) || committed.IsMember(consensus.NodeID(id))
	})
	if !known {
		return ErrNotMember
	}
	r.do(func() { delete(r.removed, id) })
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		gone := false
		if err := r.do(func() {
			inForce, committed := r.core.Membership()
			// A node removing itself learns of the commit from the leader's
			// acknowledgement: it no longer receives the commit index.
			if gone = r.removed[id] || !committed.IsMember(consensus.NodeID(id)) && !inForce.IsMember(consensus.NodeID(id)); gone {
				return
			}
			req := peer.Control{Type: peer.ControlRemove, ID: id}
			if r.core.Status().Role == consensus.Leader {
				r.removals[id] = true
				delete(r.joins, id)
			} else {
				r.toLeader(req)
			}
		}); err != nil {
			return err
		}
		if gone {
			return nil
		}
		time.Sleep(min(r.cfg.LeaderTimeout/2, 200*time.Millisecond))
	}
	return ErrMembershipTimeout
}

// Leave removes this node from the cluster gracefully: a leader first
// hands its leadership over, then the new leader removes it. It returns
// once the removal is committed (this node then takes no part any more),
// or with an error after limit.
func (r *Replica) Leave(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var voters int
	r.do(func() {
		inForce, _ := r.core.Membership()
		voters = len(inForce.Voters)
		if !inForce.IsVoter(r.id) {
			voters = 0
		}
	})
	if voters == 1 {
		return ErrLastVoter
	}
	if st, _ := r.Status(); st.Role == consensus.Leader {
		if err := r.TransferLeadership(0, time.Until(deadline)); err != nil {
			return fmt.Errorf("handing leadership over: %w", err)
		}
	}
	r.log.Logf(logging.Info, "membership", "Leaving the cluster")
	return r.Remove(r.cfg.ID, time.Until(deadline))
}

// HandOff transfers leadership before this node stops, so the cluster
// does not wait a leader timeout (a rolling restart). It returns at once
// if this node does not lead or is the only voter, and gives up after
// limit: a transfer takes milliseconds, and one that does not complete
// (its target stopped too, as when a whole cluster is shut down) must not
// hold the shutdown for election timeouts.
func (r *Replica) HandOff(limit time.Duration) {
	if st, _ := r.Status(); st.Role != consensus.Leader {
		return
	}
	start := time.Now()
	if err := r.TransferLeadership(0, limit); err != nil {
		if !errors.Is(err, ErrLastVoter) {
			r.log.Logf(logging.Warn, "election", "Leadership hand-off before shutdown failed: %v", err)
		}
		return
	}
	var leader consensus.NodeID
	r.do(func() { leader = r.core.Status().Leader }) // the cached Status may predate the hand-off
	r.log.Logf(logging.Info, "election", "Handed leadership to node_%d in %s before shutdown", leader, time.Since(start).Round(time.Millisecond))
}

// AcceptLoss is the operator's decision for a leader halted on lost
// entries (STATUS lost_log_indexes): those log indexes stay gone under
// their sequence numbers and sequencing resumes (consensus.AcceptLoss).
// lost must be exactly the reported list.
func (r *Replica) AcceptLoss(lost []uint64) error {
	var err error
	if e := r.do(func() { err = r.core.AcceptLoss(lost) }); e != nil {
		return e
	}
	return err
}
