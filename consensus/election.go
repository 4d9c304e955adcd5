package consensus

// Bully election with majority acknowledgement.
//
// A follower that has not heard from a leader for ElectionTicks logs
// "Leader timeout!" and sends MsgElection to every higher ID. A higher ID
// answers MsgAlive (and, unless it recently heard a live leader, starts
// the same process itself); the lower node then waits ElectionTicks for a
// COORDINATOR and starts over if none arrives. A node that hears no
// MsgAlive within AliveTicks is the highest reachable ID and becomes
// coordinator, in two rounds:
//
//  1. pre-coordinator: MsgCoordinator{Pre} for term+1 asks "would you
//     acknowledge me?" without changing any state (Raft's pre-vote). Nodes
//     that heard from a live leader within ElectionTicks say no, so a
//     partitioned or returning node never inflates terms or deposes a
//     healthy leader.
//  2. coordinator: with a majority of yeses it increments and persists its
//     term, logs "Starting election for term N" and sends MsgCoordinator.
//     Each node acknowledges at most one coordinator per term, persisting
//     HardState.Vote before the acknowledgement leaves (Ready orders it),
//     and the acknowledgement carries its log position (AcceptedTerm,
//     LastIndex, LastTerm). With a majority (itself included) the
//     coordinator becomes leader and synchronises (see leader.go).
//
// A node whose log lost acknowledged entries (MustReach) takes no part:
// it neither answers MsgElection, nor acknowledges, nor campaigns.
//
// Formation ("the highest ID leads", ARCHITECTURE.md): stickiness protects
// a leader's sequenced history, so it only holds once there is one. A
// leader whose log is empty (it has sequenced nothing, nothing was ever
// committed) is provisional: its MsgApp / MsgHeartbeat carry Pre, and
// it — and followers whose leader's last word was Pre — yield to a
// coordinator with a higher ID than that leader's. A higher ID following a
// provisional leader does not let its heartbeats reset its election timer,
// so it campaigns after ElectionTicks (and ignores the provisional
// leader's heartbeats while it does). The election itself is unchanged: a
// majority must acknowledge the new term, so there is still at most one
// leader per term, and the new leader syncs as always. Leaders' IDs only
// grow through such takeovers, so they end after at most one per member;
// and once a leader sequences anything its heartbeats lose Pre and it is
// never preempted again (a node that returns, even the highest ID, joins
// as a follower).

// provisional reports whether this node is a leader that has sequenced
// nothing (see Formation above).
func (n *Node) provisional() bool { return n.role == Leader && n.log.lastIndex() == 0 }

// yieldsTo reports whether the leader this node is loyal to (itself, or
// the one it follows) is provisional and lower than coordinator c, so that
// stickiness does not protect it against c.
func (n *Node) yieldsTo(c NodeID) bool {
	if n.role == Leader {
		return c > n.id && n.provisional()
	}
	return n.lead != 0 && c > n.lead && n.leadPre
}

// formationTakeover reports whether this node should take over from the
// provisional leader it follows: it has a higher ID, and a trusted log.
func (n *Node) formationTakeover() bool {
	return n.role == Follower && n.lead != 0 && n.lead < n.id && n.leadPre && n.mustReach == 0
}

func (n *Node) tickElection() {
	n.electionElapsed++
	if !n.electable() {
		// A learner, a node that has not joined yet or a removed one
		// never campaigns: it only follows.
		n.phase = phaseFollow
		return
	}
	if v := n.voters(); len(v) == 1 && v[0] == n.id {
		n.becomeCandidate() // nobody to wait for
		return
	}
	switch n.phase {
	case phaseFollow:
		if n.electionElapsed >= n.electionTimeout {
			if n.formationTakeover() {
				n.logf(LevelInfo, compElection, "Leader node_%d has sequenced nothing; taking over as a higher ID", n.lead)
			} else {
				n.logf(LevelWarn, compFailure, "Leader timeout!")
			}
			n.startElection()
		}
	case phaseElecting:
		n.phaseElapsed++
		if n.phaseElapsed >= n.cfg.AliveTicks {
			n.becomePreCandidate()
		}
	case phaseAwaitCoord:
		n.phaseElapsed++
		if n.phaseElapsed >= n.cfg.ElectionTicks {
			n.logf(LevelInfo, compElection, "No COORDINATOR from a higher node; restarting election")
			n.startElection()
		}
	case phasePreCandidate, phaseCandidate:
		n.phaseElapsed++
		if n.phaseElapsed >= n.cfg.ElectionTicks {
			n.giveUp("no majority answered")
		}
	}
}

// startElection begins a bully round: ask every higher ID whether it is
// alive.
func (n *Node) startElection() {
	n.setLead(0)
	n.role = Follower
	n.phaseElapsed = 0
	if n.mustReach > 0 {
		n.phase = phaseFollow
		n.electionElapsed = 0
		return
	}
	n.phase = phaseElecting
	sent := 0
	for _, id := range n.voters() {
		if id > n.id {
			n.send(Message{To: id, Type: MsgElection})
			sent++
		}
	}
	if sent == 0 {
		n.becomePreCandidate()
		return
	}
	n.logf(LevelDebug, compElection, "Sent ELECTION to %d higher nodes", sent)
}

func (n *Node) handleElection(m Message) {
	if m.From > n.id || n.mustReach > 0 || !n.electable() || n.now < n.staleUntil {
		return // (a non-voter must not hold a lower voter back)
	}
	n.send(Message{To: m.From, Type: MsgAlive})
	if n.role == Leader {
		n.sendHeartbeat(m.From) // tell it who leads
		return
	}
	if n.role == Follower && (!n.inLease() || n.formationTakeover()) && (n.phase == phaseFollow || n.phase == phaseAwaitCoord) {
		n.logf(LevelInfo, compElection, "Received ELECTION from node_%d; taking over", m.From)
		n.startElection()
	}
}

func (n *Node) handleAlive(m Message) {
	if m.From > n.id && n.phase == phaseElecting {
		n.logf(LevelDebug, compElection, "node_%d is alive; waiting for a COORDINATOR", m.From)
		n.phase = phaseAwaitCoord
		n.phaseElapsed = 0
	}
}

func (n *Node) becomePreCandidate() {
	if n.term >= maxTerm {
		// Peers refuse terms beyond maxTerm (see validate.go). Unreachable
		// in practice: 2^62 elections.
		n.logf(LevelError, compElection, "Term %d reached the ceiling; not campaigning", n.term)
		n.becomeFollower(n.term, 0)
		return
	}
	n.role = Candidate
	n.phase = phasePreCandidate
	n.phaseElapsed = 0
	n.setLead(0)
	n.votes = map[NodeID]vote{n.id: {granted: true}}
	for _, id := range n.voters() {
		if id != n.id {
			n.send(n.coordinatorMsg(Message{To: id, Type: MsgCoordinator, Pre: true, Term: n.term + 1}))
		}
	}
	n.checkVotes()
}

// handlePreCoordinator answers a probe without changing any state.
func (n *Node) handlePreCoordinator(m Message) {
	stale := n.inConfig() && n.staleCoordinator(m)
	if m.Term > n.term && n.inConfig() && (!n.inLease() || n.yieldsTo(m.From)) && n.mustReach == 0 && !stale {
		n.send(Message{To: m.From, Type: MsgCoordinatorAck, Pre: true, Term: m.Term})
		return
	}
	n.send(Message{To: m.From, Type: MsgCoordinatorAck, Pre: true, Reject: true, Term: n.term, RejectHint: staleHint(stale)})
}

func (n *Node) handlePreAck(m Message) {
	if n.phase != phasePreCandidate {
		return
	}
	n.noteStale(m)
	switch {
	case m.Reject && m.Term > n.term:
		// Our term is stale; adopt the newer one and probe again.
		n.adoptTerm(m.Term)
		n.becomePreCandidate()
		return
	case m.Reject:
		n.votes[m.From] = vote{}
	case m.Term == n.term+1:
		n.votes[m.From] = vote{granted: true}
	default:
		return
	}
	n.checkVotes()
}

func (n *Node) becomeCandidate() {
	n.adoptTerm(n.term + 1)
	n.vote = n.id
	n.role = Candidate
	n.phase = phaseCandidate
	n.phaseElapsed = 0
	n.setLead(0)
	n.logf(LevelInfo, compElection, "Starting election for term %d", n.term)
	n.logf(LevelInfo, compElection, "Becoming coordinator for term %d", n.term)
	n.votes = map[NodeID]vote{n.id: {granted: true, acceptedTerm: n.acceptedTerm,
		lastIndex: n.log.heldEnd(), lastTerm: n.log.heldEndTerm()}}
	for _, id := range n.voters() {
		if id != n.id {
			n.send(n.coordinatorMsg(Message{To: id, Type: MsgCoordinator, Transfer: n.transferCampaign}))
		}
	}
	n.checkVotes()
}

// handleCoordinator decides whether to acknowledge a coordinator of the
// current term (a higher term was adopted before, unless in lease).
func (n *Node) handleCoordinator(m Message) {
	n.logf(LevelInfo, compElection, "Received COORDINATOR from node_%d", m.From)
	switch {
	case n.role != Follower:
		n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d: this node is itself %s in term %d",
			m.From, map[Role]string{Candidate: "a coordinator", Leader: "the leader"}[n.role], n.term)
	case n.vote != 0 && n.vote != m.From:
		n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d: already acknowledged node_%d in term %d",
			m.From, n.vote, n.term)
	case n.inLease() && n.lead != m.From && !m.Transfer:
		// (A transfer-initiated election was asked for by the leader
		// itself: stickiness does not apply to it, as in etcd.)
		n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d: leader node_%d is alive", m.From, n.lead)
	case n.mustReach > 0:
		n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d: log lost entries up to seq_no=%d",
			m.From, n.mustReach)
	case !n.inConfig():
		// A node that knows it is not a member (removed, or not joined
		// yet) never counts toward a majority. (A learner acknowledges:
		// it may have been promoted in a configuration it has not
		// received yet; a coordinator counts it only if its own
		// configuration makes it a voter.)
		n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d: not a member", m.From)
	case n.staleCoordinator(m):
		n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d: its configuration is stale", m.From)
		n.send(Message{To: m.From, Type: MsgCoordinatorAck, Reject: true, RejectHint: staleHint(true)})
		return
	default:
		// Vote is persisted before the acknowledgement is sent.
		n.vote = m.From
		n.electionElapsed = 0
		n.phase = phaseFollow
		n.setLead(m.From)
		n.send(Message{To: m.From, Type: MsgCoordinatorAck, AcceptedTerm: n.acceptedTerm,
			LastIndex: n.log.heldEnd(), LastTerm: n.log.heldEndTerm()}) // (damaged positions count as held)
		return
	}
	n.send(Message{To: m.From, Type: MsgCoordinatorAck, Reject: true})
}

func (n *Node) handleCoordinatorAck(m Message) {
	if n.phase != phaseCandidate {
		return
	}
	n.noteStale(m)
	if m.Reject {
		n.votes[m.From] = vote{}
	} else {
		n.votes[m.From] = vote{granted: true, acceptedTerm: m.AcceptedTerm, lastIndex: m.LastIndex, lastTerm: m.LastTerm}
	}
	n.checkVotes()
}

func (n *Node) checkVotes() {
	granted, rejected := 0, 0
	for id, v := range n.votes {
		if !n.isVoter(id) {
			continue // a learner's or a stranger's answer counts for nothing
		}
		if v.granted {
			granted++
		} else {
			rejected++
		}
	}
	switch {
	case granted >= n.quorum():
		if n.phase == phasePreCandidate {
			n.becomeCandidate()
		} else {
			n.becomeLeader()
		}
	case len(n.voters())-rejected < n.quorum():
		n.giveUp("a majority refused")
	}
}

// giveUp abandons a candidacy and backs off for a randomised timeout, so
// that rival coordinators do not collide forever.
func (n *Node) giveUp(why string) {
	if n.phase == phaseCandidate {
		n.logf(LevelInfo, compElection, "Election for term %d failed: %s", n.term, why)
	} else {
		n.logf(LevelDebug, compElection, "Pre-election for term %d failed: %s", n.term+1, why)
		// (A higher ID that cannot win for good — its configuration is
		// stale, or it was removed and does not know it — is told so by
		// the voters it asks, and stops holding lower IDs back for a
		// while: see noteStale. A failed pre-election alone says nothing
		// of the kind: the others may just be in a live leader's lease.)
	}
	n.becomeFollower(n.term, 0)
	n.electionTimeout = n.cfg.ElectionTicks + n.rand.Intn(n.cfg.ElectionTicks)
}

func (n *Node) adoptTerm(t uint64) {
	if t > n.term {
		n.term = t
		n.vote = 0
		n.held = nil
		n.pendingSync = 0
	}
}

// Elections across configurations. The bully election lets any member
// coordinate and fetch the most advanced log afterwards, so, unlike Raft,
// voters do not refuse a coordinator with an older log — and a coordinator
// counts acknowledgements under the configuration of its own log. A node
// holding an old, uncommitted membership change (from a leader that died
// before committing it) could then count under a configuration that
// differs by two changes from the one a later leader committed, and the
// two majorities need not intersect: two leaders in one term. Raft's
// up-to-date vote restriction is what rules this out there; here the
// equivalent, applied only where it matters, is: a voter refuses a
// coordinator whose configuration (entry term and index) differs from its
// own unless the coordinator's (AcceptedTerm, configuration position) is
// at least its own, lexicographically. Why it suffices: when configuration
// C(k+1) committed (in some term t), a majority M of C(k+1) held it with
// AcceptedTerm >= t, and neither ever decreases (a committed entry is
// never truncated; a log restart installs the sender's committed
// configuration, which is at least as new). A coordinator whose
// configuration is C(k) or older needs a majority of it, which intersects
// M (each change moves one voter, and by induction over k for older
// ones); that member refuses unless the coordinator's AcceptedTerm
// exceeds t — but then the coordinator synced with a leader newer than t,
// whose history holds C(k+1), a contradiction. So a winner's configuration
// is the latest committed one or a successor of it, and two such differ by
// at most one change (one uncommitted change at a time): majorities
// intersect, one acknowledgement per term, one leader per term. With an
// unchanged configuration there is no restriction, so the bully order is
// as before while membership is stable. Nodes that know they are not
// members (removed; see inConfig) acknowledge nobody.

// coordinatorMsg adds this node's history and configuration position to a
// MsgCoordinator (AcceptedTerm; LastTerm, LastIndex: its configuration
// entry).
func (n *Node) coordinatorMsg(m Message) Message {
	m.AcceptedTerm = n.acceptedTerm
	m.LastTerm, m.LastIndex = n.log.conf.position()
	return m
}

// staleCoordinator reports whether coordinator m must be refused (see
// above).
func (n *Node) staleCoordinator(m Message) bool {
	t, i := n.log.conf.position()
	if m.LastTerm == t && m.LastIndex == i {
		return false
	}
	// (AcceptedTerm, configuration position), lexicographically.
	switch {
	case m.AcceptedTerm != n.acceptedTerm:
		return m.AcceptedTerm < n.acceptedTerm
	case m.LastTerm != t:
		return m.LastTerm < t
	}
	return m.LastIndex < i
}

// rejectStale marks (RejectHint) a refusal of a coordinator whose
// configuration is stale.
const rejectStale = 1

func staleHint(stale bool) uint64 {
	if stale {
		return rejectStale
	}
	return 0
}

// noteStale: a voter found this node's configuration stale; let lower IDs
// campaign instead for a while (it catches up from their leader).
func (n *Node) noteStale(m Message) {
	if m.Reject && m.RejectHint == rejectStale {
		n.staleUntil = n.now + 2*int64(n.cfg.ElectionTicks)
	}
}
