package replica

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/peer"
	"github.com/ordo-broker/ordo/consensus"
)

// Membership at run time: joining through a seed, the leader's
// side of a join (learner, catch-up, promotion, JOIN_ACK), removals,
// leaving and leadership hand-off. The rules themselves (one change at a
// time, learners, what counts toward a majority) are the core's; this
// file routes requests to the leader, paces the changes and keeps the
// peer links equal to the membership.
//
// A join, as the guide shows it:
//
//	joiner → any member:  JOIN {id, addr, cluster}   (repeated every second until acknowledged)
//	member → leader:      the same JOIN, forwarded
//	leader:               AddLearner(id, addr); the log streams to the learner
//	leader:               PromoteLearner(id) once it is within promoteLag entries
//	leader → joiner:      JOIN_ACK {cluster, leader} once the promotion is committed
//
// A slow joiner stays a learner, so it never counts toward (or costs) a
// majority. Joining never deposes the leader: the newcomer's log is not
// ahead, and the leader's log is not empty, so neither the bully rule nor
// formation hands it leadership.

// promoteLag is how close (in entries) a learner must be to the leader's
// log before it is promoted to voter.
const promoteLag = 256

// joinRetry is how often a joining node repeats its JOIN.
const joinRetry = time.Second

type ctlMsg struct {
	from  uint64
	c     peer.Control
	reply func(peer.Control) // answers on the sender's link (nil if none)
}

type joinReq struct {
	addr string
	seen time.Time // the joiner repeats its JOIN every joinRetry
}

// joinExpiry: a join whose JOIN stopped coming (the joiner gave up or
// died) is dropped, so a node removed meanwhile is not added back.
const joinExpiry = 10 * joinRetry

// Control receives a membership request from a peer (peer.Handler).
func (r *Replica) Control(from uint64, c peer.Control, reply func(peer.Control)) {
	if c.Type == peer.ControlProbe {
		r.answerProbe(reply) // (at once: the loop may not run yet)
		return
	}
	select {
	case r.ctl <- ctlMsg{from, c, reply}:
	default: // the loop is far behind; the sender retries
	}
}

// Dialled records where a node that dialled this one says it is reached
// (peer.Handler). It is used only for a node no configuration gives an
// address for: a joining node's leader, before the log has told it the
// members.
func (r *Replica) Dialled(from uint64, addr string) {
	r.statusMu.Lock()
	if r.learned == nil {
		r.learned = map[uint64]string{}
	}
	r.learned[from] = addr
	r.statusMu.Unlock()
}

// Addr returns a member's address as this node knows it ("" if unknown).
func (r *Replica) Addr(id uint64) string {
	if id == r.cfg.ID && r.cfg.Addr != "" {
		return r.cfg.Addr
	}
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.addrLocked(id)
}

func (r *Replica) addrLocked(id uint64) string {
	nid := consensus.NodeID(id)
	for _, cs := range r.conf {
		if a := cs.Addrs[nid]; a != "" {
			return a
		}
	}
	if a := r.cfg.MemberAddrs[id]; a != "" {
		return a
	}
	if a := r.cfg.Seeds[id]; a != "" {
		return a
	}
	return r.learned[id]
}

// refreshPeers gives the transport links to every member of the
// configuration in force and of the committed one, and to the seeds
// (through which a node joins; for a member they are one more address
// to contact — a seed of another cluster is refused, and both nodes log
// why).
func (r *Replica) refreshPeers() {
	if r.transport == nil {
		return
	}
	want := map[uint64]string{}
	for id, a := range r.cfg.Seeds {
		if id != r.cfg.ID {
			want[id] = a
		}
	}
	r.statusMu.Lock()
	if lead := uint64(r.status.Leader); lead != 0 && lead != r.cfg.ID {
		// Answers go to the leader even before the configuration names it.
		if a := r.addrLocked(lead); a != "" {
			want[lead] = a
		}
	}
	for _, cs := range r.conf {
		for _, l := range [][]consensus.NodeID{cs.Voters, cs.Learners} {
			for _, id := range l {
				if a := r.addrLocked(uint64(id)); a != "" && uint64(id) != r.cfg.ID {
					want[uint64(id)] = a
				}
			}
		}
	}
	r.statusMu.Unlock()
	if !maps.Equal(want, r.peers) {
		r.peers = want
		r.transport.SetPeers(want)
	}
}

// confChanges reports whether a Ready may change the configuration in
// force or the committed one.
func confChanges(rd *consensus.Ready) bool {
	if rd.ConfState != nil || rd.TruncateFrom > 0 || rd.ResetLog > 0 {
		return true
	}
	for i := range rd.Entries {
		if rd.Entries[i].Type == consensus.EntryMembership {
			return true
		}
	}
	return false
}

// applyMembership logs a committed membership change.
func (r *Replica) applyMembership(e *consensus.Entry) {
	me, err := consensus.DecodeMembership(e.Data)
	if err != nil {
		return // (the core refuses undecodable ones)
	}
	c := me.Change
	switch c.Type {
	case consensus.AddLearner:
		r.log.Logf(logging.Info, "membership", "node_%d (%s) added as a learner", c.ID, me.Addrs[c.ID])
	case consensus.PromoteLearner:
		r.log.Logf(logging.Info, "membership", "node_%d promoted to voter; voters now %v", c.ID, me.Voters)
	case consensus.RemoveMember:
		r.log.Logf(logging.Info, "membership", "node_%d removed; voters now %v", c.ID, me.Voters)
	}
}

// onControl handles a membership request on the loop.
func (r *Replica) onControl(m ctlMsg) {
	c := m.c
	switch c.Type {
	case peer.ControlJoin:
		r.onJoin(m, c)
	case peer.ControlJoinAck:
		r.onJoinAck(c)
	case peer.ControlRemove:
		if r.core.Status().Role != consensus.Leader {
			r.toLeader(c)
			return
		}
		r.removals[c.ID] = true
		delete(r.joins, c.ID)
		if m.reply != nil {
			r.removeAcks[c.ID] = append(r.removeAcks[c.ID], m.reply)
		}
	case peer.ControlRemoveAck:
		r.removed[c.ID] = true
	}
}

// toLeader passes a request on to the leader (dropped if none is known:
// the requester retries).
func (r *Replica) toLeader(c peer.Control) {
	if lead := uint64(r.core.Status().Leader); lead != 0 && lead != r.cfg.ID {
		r.transport.SendControl(lead, c)
	}
}

// onJoin checks a JOIN where it first arrives (any member knows the
// configuration, so a refusal is answered on the joiner's own link: it is
// reachable no other way), then passes it to the leader.
func (r *Replica) onJoin(m ctlMsg, c peer.Control) {
	if c.ID == 0 || c.ID == r.cfg.ID || len(c.Addr) > consensus.MaxAddrLen {
		return
	}
	inForce, _ := r.core.Membership()
	if a := inForce.Addrs[consensus.NodeID(c.ID)]; inForce.IsMember(consensus.NodeID(c.ID)) && a != "" && a != c.Addr {
		r.refuseJoin(m, fmt.Sprintf("node id %d is already a member, at %s; remove it first (CLUSTER REMOVE %d) or pick another --id", c.ID, a, c.ID))
		return
	}
	if r.core.Status().Role != consensus.Leader {
		r.toLeader(c)
		return
	}
	if r.joins[c.ID] == nil {
		r.log.Logf(logging.Info, "membership", "JOIN from node_%d at %s", c.ID, c.Addr)
		r.joins[c.ID] = &joinReq{addr: c.Addr}
	}
	r.joins[c.ID].seen = r.now()
}

func (r *Replica) refuseJoin(m ctlMsg, why string) {
	r.log.Logf(logging.Warn, "membership", "Refused JOIN of node_%d: %s", m.c.ID, why)
	if m.reply != nil {
		m.reply(peer.Control{Type: peer.ControlJoinAck, ID: m.c.ID, Error: why})
	}
}

func (r *Replica) onJoinAck(c peer.Control) {
	if c.ID != r.cfg.ID {
		return
	}
	if c.Error != "" {
		r.log.Logf(logging.Error, "membership", "Join refused: %s", c.Error)
		return
	}
	if !r.joining() || c.Cluster == "" {
		return
	}
	if err := r.adoptCluster(c.Cluster); err != nil {
		r.log.Logf(logging.Error, "membership", "Cannot record the cluster id: %v", err)
		return
	}
	r.log.Logf(logging.Info, "membership", "Joined cluster %s as follower of node_%d", c.Cluster, c.Leader)
	r.refreshPeers()
}

// driveMembership runs every tick: a joining node repeats its JOIN; the
// leader moves joins and removals forward, one change at a time.
func (r *Replica) driveMembership(now time.Time) {
	if r.broken != nil || r.transport == nil {
		return
	}
	if r.joining() && !now.Before(r.nextJoin) {
		r.sendJoin()
		r.nextJoin = now.Add(joinRetry)
	}
	if len(r.joins) == 0 && len(r.removals) == 0 && len(r.removeAcks) == 0 {
		return
	}
	st := r.core.Status()
	if st.Role != consensus.Leader {
		// Leadership moved: hand what is pending to the new leader.
		for id := range r.removals {
			r.toLeader(peer.Control{Type: peer.ControlRemove, ID: id})
		}
		clear(r.removals)
		clear(r.joins) // (joiners repeat their JOIN)
		clear(r.removeAcks)
		return
	}
	inForce, committed := r.core.Membership()
	for id, replies := range r.removeAcks {
		if !inForce.IsMember(consensus.NodeID(id)) && !committed.IsMember(consensus.NodeID(id)) {
			for _, reply := range replies {
				reply(peer.Control{Type: peer.ControlRemoveAck, ID: id})
			}
			delete(r.removeAcks, id)
		}
	}
	if !st.Sequencing || st.ConfPending {
		return
	}
	for id := range r.removals {
		delete(r.removals, id)
		if err := r.proposeChange(consensus.MembershipChange{Type: consensus.RemoveMember, ID: consensus.NodeID(id)}); err != nil {
			if errors.Is(err, consensus.ErrChangePending) || errors.Is(err, consensus.ErrTransferring) {
				r.removals[id] = true
			}
			return // one change at a time
		}
		return
	}
	for _, id := range slices.Sorted(maps.Keys(r.joins)) {
		j, nid := r.joins[id], consensus.NodeID(id)
		switch {
		case now.Sub(j.seen) > joinExpiry:
			delete(r.joins, id)
		case !inForce.IsMember(nid):
			r.proposeChange(consensus.MembershipChange{Type: consensus.AddLearner, ID: nid, Addr: j.addr})
			return
		case inForce.IsLearner(nid):
			if caughtUp(st, nid) {
				r.proposeChange(consensus.MembershipChange{Type: consensus.PromoteLearner, ID: nid})
				return
			}
		case committed.IsVoter(nid):
			ack := peer.Control{Type: peer.ControlJoinAck, ID: id, Cluster: r.ClusterID(), Leader: r.cfg.ID}
			if r.transport.SendControl(id, ack) {
				r.log.Logf(logging.Info, "membership", "Sent JOIN_ACK to node_%d", id)
			}
			delete(r.joins, id)
		}
	}
}

func caughtUp(st consensus.Status, id consensus.NodeID) bool {
	for _, m := range st.Members {
		if m.ID == id {
			return m.Active && m.Match > 0 && m.State == "replicate" && m.Lag <= promoteLag
		}
	}
	return false
}

func (r *Replica) proposeChange(cc consensus.MembershipChange) error {
	_, err := r.core.ProposeMembership(cc)
	if err != nil && !errors.Is(err, consensus.ErrChangePending) {
		r.log.Logf(logging.Warn, "membership", "Cannot %v node_%d: %v", cc.Type, cc.ID, err)
	}
	return err
}

// sendJoin sends JOIN to the next seed or known member, in turn.
func (r *Replica) sendJoin() {
	targets := slices.Sorted(maps.Keys(r.peers))
	if len(targets) == 0 {
		if r.joinTries++; r.joinTries%30 == 1 {
			r.log.Logf(logging.Error, "membership", "Cannot join: no seed to contact (start with --seed ID:HOST:PORT naming a running member)")
		}
		return
	}
	to := targets[r.joinTries%len(targets)]
	r.joinTries++
	if !r.joinedVia[to] || r.joinTries%30 == 0 {
		r.joinedVia[to] = true
		r.log.Logf(logging.Info, "membership", "Attempting to join via node_%d at %s", to, r.peers[to])
	}
	r.transport.SendControl(to, peer.Control{Type: peer.ControlJoin, ID: r.cfg.ID, Addr: r.cfg.Addr})
}
