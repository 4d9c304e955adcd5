package consensus

import (
	"fmt"
	"math/rand"
	"slices"
)

// Membership in the simulation: joins of spare nodes (AddLearner, then
// Promote, sometimes before the learner caught up), removals (of
// followers and of the leader itself), re-joins of removed nodes,
// leadership transfers, a leader that crashes in the middle of a change,
// and learners added while cut off (that never catch up until healed) —
// all under the same random faults as the rest of the schedule.
//
// The checker (memCheck) asserts after every step:
//   - at most one uncommitted membership entry in any log (beyond the
//     highest commit index any node ever had);
//   - every commit advance of a leader is backed by acknowledgements
//     (MsgAppResp of a synced follower, or the leader's own disk) from a
//     majority of the voters of the configuration in force at that
//     leader; a removed node or a learner never counts;
//   - every leader was elected by acknowledgements from a majority of
//     the voters of its configuration;
//   - applied entries carry Seq = the number of messages (EntryNormal)
//     up to them, so membership entries consume no sequence number.
// (At most one leader per term across configurations is the checker's
// existing rule: it holds whatever configuration each node uses.)

type memCheck struct {
	maxCommit  uint64
	acks       map[[2]uint64]uint64          // (node, term) -> highest acknowledgement sent
	synced     map[[2]uint64]bool            // (node, term) -> said it synced with the term
	coordAcks  map[[2]uint64]map[NodeID]bool // (coordinator, term) -> who acknowledged
	leaderSeen map[[2]uint64]bool            // (leader, term) checked
	leadCommit map[NodeID][3]uint64          // leader -> (term, commit, syncing) last seen
}

func (k *checker) mem() *memCheck {
	if k.m == nil {
		k.m = &memCheck{acks: map[[2]uint64]uint64{}, synced: map[[2]uint64]bool{}, coordAcks: map[[2]uint64]map[NodeID]bool{},
			leaderSeen: map[[2]uint64]bool{}, leadCommit: map[NodeID][3]uint64{}}
	}
	return k.m
}

// sent records the acknowledgements a node sends (acks count only if
// sent: the leader can only have received sent ones).
func (k *checker) sent(m Message) {
	mc := k.mem()
	switch {
	case (m.Type == MsgAppResp || m.Type == MsgHeartbeatResp) && m.AcceptedTerm == m.Term && m.Term > 0:
		// Synced with this term (as the leader's progress.synced).
		mc.synced[[2]uint64{uint64(m.From), m.Term}] = true
		if m.Type == MsgAppResp && !m.Reject {
			key := [2]uint64{uint64(m.From), m.Term}
			mc.acks[key] = max(mc.acks[key], m.Index)
		}
	case m.Type == MsgAppResp && !m.Reject:
		// An acknowledgement of the synchronised history before the
		// follower persisted AcceptedTerm; it counts once it has.
		key := [2]uint64{uint64(m.From), m.Term}
		mc.acks[key] = max(mc.acks[key], m.Index)
	case m.Type == MsgCoordinatorAck && !m.Reject && !m.Pre:
		key := [2]uint64{uint64(m.To), m.Term}
		if mc.coordAcks[key] == nil {
			mc.coordAcks[key] = map[NodeID]bool{}
		}
		mc.coordAcks[key][m.From] = true
	}
}

func (k *checker) memAfterStep() {
	mc := k.mem()
	for _, sn := range k.c.nodes {
		if nd := sn.node; nd != nil {
			mc.maxCommit = max(mc.maxCommit, nd.log.committed)
		}
	}
	for _, sn := range k.c.nodes {
		nd := sn.node
		if nd == nil {
			continue
		}
		idx := nd.log.conf.idx
		i, _ := slices.BinarySearch(idx, mc.maxCommit+1)
		if len(idx)-i > 1 {
			k.c.fail("node %d: %d uncommitted membership entries in its log (%v, max commit %d)", sn.id, len(idx)-i, idx[i:], mc.maxCommit)
			return
		}
		if nd.role != Leader {
			continue
		}
		voters := nd.voters()
		quorum := len(voters)/2 + 1
		if key := [2]uint64{uint64(sn.id), nd.term}; !mc.leaderSeen[key] {
			mc.leaderSeen[key] = true
			n := 0
			for _, v := range voters {
				if v == sn.id || mc.coordAcks[key][v] {
					n++
				}
			}
			// (The configuration may have changed with the history it
			// synced; elections count under the one before: check both.)
			if n < quorum && !k.electedUnderPrevious(nd, key) {
				k.c.fail("node %d leads term %d with acknowledgements of %d of voters %v", sn.id, nd.term, n, voters)
				return
			}
		}
		// Check only advances made while leading this term.
		ci := nd.log.committed
		last, seen := mc.leadCommit[sn.id]
		syncing := uint64(0)
		if nd.sync >= syncSyncing {
			syncing = 1
		}
		mc.leadCommit[sn.id] = [3]uint64{nd.term, ci, syncing}
		if !seen || last[0] != nd.term || ci <= last[1] || last[2] == 0 {
			// (While fetching, a log restart raises the commit index to
			// entries committed before: not this leader's commit.)
			continue
		}
		n := 0
		for _, v := range voters {
			switch {
			case v == sn.id:
				d := sn.disk.log
				if t, err := d.Term(ci); (err == nil && nd.acceptedTerm == nd.term && t == mustTerm(nd, ci)) || ci < d.FirstIndex() {
					n++
				}
			case mc.synced[[2]uint64{uint64(v), nd.term}] && mc.acks[[2]uint64{uint64(v), nd.term}] >= ci:
				n++
			}
		}
		if n < quorum {
			k.c.fail("leader %d (term %d) committed %d with acknowledgements of %d of voters %v", sn.id, nd.term, ci, n, voters)
			return
		}
	}
}

func mustTerm(nd *Node, i uint64) uint64 {
	t, _ := nd.log.term(i)
	return t
}

// electedUnderPrevious: the leader counted its election before its log
// became the synchronised history, whose configuration can be one change
// apart; accept a majority of any configuration in its log's tracker.
func (k *checker) electedUnderPrevious(nd *Node, key [2]uint64) bool {
	confs := []ConfState{nd.log.conf.base}
	for _, t := range nd.log.conf.tail {
		confs = append(confs, t.cs)
	}
	for _, cs := range confs {
		n := 0
		for _, v := range cs.Voters {
			if v == nd.id || k.mem().coordAcks[key][v] {
				n++
			}
		}
		if n >= len(cs.Voters)/2+1 {
			return true
		}
	}
	return false
}

// seqCheck: Seq of an applied entry counts the messages up to it.
func (k *checker) seqCheck(sn *simNode, e Entry) {
	var msgs uint64
	if i := int(e.Index); i <= len(k.history) {
		msgs = k.normals[i-1]
	}
	if e.Seq != msgs {
		k.c.fail("node %d applied index %d (type %d) with Seq %d, want %d", sn.id, e.Index, e.Type, e.Seq, msgs)
	}
}

// randomMembership is one membership action of the schedule.
func (c *cluster) randomMembership(rng *rand.Rand) {
	l := c.leader()
	if l == 0 {
		return
	}
	ln := c.n(l).node
	switch rng.Intn(6) {
	case 0: // transfer
		to := NodeID(0)
		if rng.Intn(2) == 0 {
			to = c.pick(rng)
		}
		err := ln.TransferLeadership(to)
		c.tracef("leader %d transfers to %d: %v", l, to, err)
	case 1: // the leader crashes in the middle of a change
		if cc, ok := c.pickChange(rng, ln); ok {
			_, err := ln.ProposeMembership(cc)
			c.tracef("leader %d proposes %v, then crashes: %v", l, cc, err)
			c.process(l)
			for k := rng.Intn(4); k > 0 && len(c.net) > 0; k-- {
				c.deliver(rng.Intn(len(c.net)))
			}
			c.crash(l)
		}
	default:
		if cc, ok := c.pickChange(rng, ln); ok {
			if cc.Type == AddLearner && rng.Intn(4) == 0 {
				// A learner cut off from the start: it cannot catch up
				// until healed (and may be promoted meanwhile).
				c.tracef("isolate %d before it joins", cc.ID)
				c.isolate(cc.ID)
			}
			_, err := ln.ProposeMembership(cc)
			c.tracef("leader %d proposes %v: %v", l, cc, err)
		}
	}
	c.ck.afterStep()
}

// pickChange chooses a valid change: add a non-member, promote a learner
// (usually once caught up), or remove a member (possibly the leader).
func (c *cluster) pickChange(rng *rand.Rand, ln *Node) (MembershipChange, bool) {
	cs := ln.conf()
	var outside []NodeID
	for _, id := range c.ids {
		if !cs.IsMember(id) {
			outside = append(outside, id)
		}
	}
	switch r := rng.Intn(3); {
	case r == 0 && len(outside) > 0:
		id := outside[rng.Intn(len(outside))]
		return MembershipChange{Type: AddLearner, ID: id, Addr: fmt.Sprintf("10.0.0.%d:6379", id)}, true
	case r <= 1 && len(cs.Learners) > 0:
		id := cs.Learners[rng.Intn(len(cs.Learners))]
		if pr := ln.prs[id]; rng.Intn(3) != 0 && (pr == nil || pr.match < ln.log.lastIndex()) {
			return MembershipChange{}, false // (the runtime promotes caught-up learners)
		}
		return MembershipChange{Type: PromoteLearner, ID: id}, true
	default:
		// Keep at least three voters: the simulation damages one disk at
		// a time (randomDiskLoss) and counts on a trusted majority to
		// repair it, which two voters cannot give.
		members := ln.members()
		id := members[rng.Intn(len(members))]
		if cs.IsVoter(id) && len(cs.Voters) <= 3 {
			return MembershipChange{}, false
		}
		return MembershipChange{Type: RemoveMember, ID: id}, true
	}
}

// memberOfFinal reports whether id must converge in the liveness check:
// a member of the leader's configuration.
func (c *cluster) memberOfFinal(id NodeID) bool {
	l := c.leader()
	return l == 0 || c.n(l).node.conf().IsMember(id)
}

// dumpNodes describes every node (for liveness failures).
func (c *cluster) dumpNodes() string {
	var b []byte
	for _, sn := range c.nodes {
		nd := sn.node
		if nd == nil {
			b = fmt.Appendf(b, "node %d: down\n", sn.id)
			continue
		}
		pt, pi := nd.log.conf.position()
		b = fmt.Appendf(b, "node %d: %v phase %d term %d lead %d vote %d accepted %d log [%d,%d] commit %d mustReach %d voters %v learners %v conf (t%d,i%d) pending %v stale %v\n",
			sn.id, nd.role, nd.phase, nd.term, nd.lead, nd.vote, nd.acceptedTerm, nd.log.firstIndex(), nd.log.lastIndex(),
			nd.log.committed, nd.mustReach, nd.voters(), nd.conf().Learners, pt, pi, nd.log.conf.pending(), nd.now < nd.staleUntil)
		b = fmt.Appendf(b, "    held %v spare %d damaged %v disk faulty %v disk [%d,%d] acked %d\n", nd.log.held, nd.log.spare, nd.log.damaged,
			sn.disk.faulty, sn.disk.log.FirstIndex(), sn.disk.log.LastIndex(), sn.disk.hs.Acked)
		if r := nd.rec; r != nil {
			b = fmt.Appendf(b, "    recovering [%d,%d] done %v lost %v answers %v got", r.from, r.end, r.done, r.lost, r.answers)
			for _, e := range r.got {
				b = fmt.Appendf(b, " %d", e.Index)
			}
			b = append(b, '\n')
		}
	}
	return string(b)
}
