package replica

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/peer"
	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

// Membership at run time: bootstrap, joining through a seed, the leader's
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

// boot is how this start of the node enters a cluster (see bootstrap).
type boot struct {
	members []consensus.NodeID // static membership (unless conf or join)
	addrs   map[consensus.NodeID]string
	conf    consensus.ConfState // the configuration on disk, if any
	join    bool                // waiting to be added to a cluster
}

func (b *boot) clustered() bool {
	return b.join || len(b.members) > 1 || len(b.conf.Voters)+len(b.conf.Learners) > 1
}

// bootstrap decides how the node starts, from its state file:
//   - a configuration on disk: restore it (the members it lists, with
//     their addresses; --peers no longer matter);
//   - a node that was joining, or an empty one given --seed: join;
//   - otherwise the static membership (--peers), or a new cluster of this
//     node alone.
//
// Every cluster has an id, drawn at random when a node forms a cluster
// alone, derived from the member ids for a static --peers cluster (every
// member must compute the same one without talking), and learned from the
// JOIN_ACK by a joining node.
func (r *Replica) bootstrap(hs *store.DiskState, empty bool) (boot, error) {
	cfg := &r.cfg
	var b boot
	switch {
	case hs.Conf != nil && len(hs.Conf.Voters) > 0:
		b.conf = *hs.Conf
	case hs.Joining || (empty && len(cfg.Seeds) > 0):
		b.join = true
	default:
		b.members = []consensus.NodeID{r.id}
		if len(cfg.Members) > 0 {
			b.members = b.members[:0]
			for _, id := range cfg.Members {
				b.members = append(b.members, consensus.NodeID(id))
			}
		}
		b.addrs = map[consensus.NodeID]string{}
		for id, a := range cfg.MemberAddrs {
			b.addrs[consensus.NodeID(id)] = a
		}
		if cfg.Addr != "" {
			b.addrs[r.id] = cfg.Addr
		}
	}
	save := false
	switch {
	case b.join && !hs.Joining:
		hs.Joining, save = true, true
		r.log.Logf(logging.Info, "membership", "Empty data directory and --seed given: joining an existing cluster")
	case hs.ClusterID != "" || b.join:
	case len(b.conf.Voters) > 0:
		// Joined, but stopped before the JOIN_ACK named the cluster: it
		// asks the members again (they acknowledge a voter at once).
		r.log.Logf(logging.Info, "membership", "Cluster id not yet known: asking the members")
	case len(b.members) > 1:
		hs.ClusterID, save = staticClusterID(b.members), true
	default:
		hs.ClusterID, save = newClusterID(), true
		r.log.Logf(logging.Info, "membership", "Formed cluster %s", hs.ClusterID)
	}
	if len(b.conf.Voters) > 0 && !b.conf.IsMember(r.id) {
		r.log.Logf(logging.Warn, "membership", "This node was removed from the cluster: it takes no part any more. To join again, start it with an empty --data-dir and --seed")
	}
	if hs.ClusterID != "" {
		r.clusterID.Store(&hs.ClusterID)
	}
	if save {
		if err := r.disk.SaveState(*hs, true); err != nil {
			return b, err
		}
	}
	return b, nil
}

func newClusterID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// staticClusterID is the id of a cluster formed from a static member list:
// every member derives the same one.
func staticClusterID(members []consensus.NodeID) string {
	h := sha256.New()
	for _, id := range slices.Sorted(slices.Values(members)) {
		fmt.Fprintf(h, "%d,", id)
	}
	return "s" + hex.EncodeToString(h.Sum(nil))[:15]
}

// SetAddr sets where other members reach this node (Config.Addr), once
// the listener is known; call it before Start.
func (r *Replica) SetAddr(addr string) { r.cfg.Addr = addr }

// ClusterID is the cluster this node belongs to ("" while it joins one).
func (r *Replica) ClusterID() string {
	if p := r.clusterID.Load(); p != nil {
		return *p
	}
	return ""
}

func (r *Replica) joining() bool { return r.ClusterID() == "" }

// adoptCluster records the cluster a JOIN_ACK named.
func (r *Replica) adoptCluster(id string) error {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	hs := r.hs
	hs.ClusterID = id
	if err := r.saveState(hs, true); err != nil {
		return err
	}
	r.clusterID.Store(&id)
	return nil
}

// Control receives a membership request from a peer (peer.Handler).
func (r *Replica) Control(from uint64, c peer.Control, reply func(peer.Control)) {
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
		st := r.core.Status()
		return st.Role != consensus.Leader && st.Leader != 0
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
// if this node does not lead or is the only voter.
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
	st, _ := r.Status()
	r.log.Logf(logging.Info, "election", "Handed leadership to node_%d in %s before shutdown", st.Leader, time.Since(start).Round(time.Millisecond))
}
