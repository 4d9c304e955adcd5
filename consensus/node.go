package consensus

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
)

// Ready is what the caller must persist, send and apply (see the package
// comment for the order), then acknowledge with Advance.
type Ready struct {
	// HardState is non-nil when it changed and must be persisted before
	// any message is sent.
	HardState *HardState
	// MustSync is true when the HardState or the log changed in a way that
	// must be fsynced before sending (anything but a Commit-only change).
	MustSync bool
	// SoftState is non-nil when the role, leader or sequencing state
	// changed (for STATUS and for routing client requests).
	SoftState *SoftState
	// ConfState is non-nil when the committed configuration changed (a
	// membership entry committed, or a log restart installed the
	// leader's). Persist it with the HardState, before the reset if
	// ResetLog is set (MustSync is set). Pass the last one persisted as
	// Config.ConfState at restart. (It is handed out no later than its
	// entry is applied, so retention, which drops only applied entries,
	// never drops a membership entry the persisted ConfState lacks.)
	ConfState *ConfState
	// TruncateFrom > 0: remove every log entry with Index >= TruncateFrom
	// before appending Entries.
	TruncateFrom uint64
	// ResetLog > 0: discard the whole log and restart it empty, so that its
	// next entry is ResetLog (the leader no longer holds what this node
	// lacks: retention). Entries before ResetLog are never delivered on
	// this node; record ResetLog-1 as applied. Done after persisting
	// HardState and before appending Entries; TruncateFrom is then 0.
	ResetLog uint64
	// ResetLogTerm is the term of entry ResetLog-1 (0 if unknown): keep it
	// aside like the term of the entry before retention, so that
	// Storage.Term(ResetLog-1) can answer.
	ResetLogTerm uint64
	// Entries to append to the log (after truncation or reset).
	Entries []Entry
	// Messages may be sent right away, before this Ready's HardState and
	// Entries are durable: they claim nothing about this node's disk (a
	// leader's appends and heartbeats in a term already durable, forwarded
	// proposals, bully liveness probes). A leader counts itself toward
	// commit only for entries it persisted (Advance), so its followers
	// fsync in parallel with it (Raft thesis §10.2.1).
	Messages []Message
	// MessagesAfterPersist may be sent only once this Ready's HardState
	// and Entries are durable: acknowledgements, votes, sync requests and
	// responses — anything that claims something about this node's state
	// (a crash before the fsync would otherwise break the claim).
	MessagesAfterPersist []Message
	// Committed entries to apply, contiguous, in order, each once.
	Committed []Entry
	// Dropped lists proposals submitted at this node that can never commit
	// (a later ReqID of the same origin committed first). Answer their
	// clients with a retryable error.
	Dropped []Proposal

	gen      uint64
	spareCut uint64 // TruncateFrom drops spare records from here on (recover.go; for tests)
}

// SoftState is volatile state worth showing and routing on.
type SoftState struct {
	Lead NodeID
	Role Role
	// Sequencing is true at a leader that finished synchronising a
	// majority and assigns sequence numbers to new proposals (false while
	// it transfers its leadership).
	Sequencing bool
}

// ErrStepLocal is returned by Step for a message addressed to another node.
var ErrStepLocal = errors.New("consensus: message addressed to another node")

type phase uint8

const (
	phaseFollow       phase = iota // following a leader, or listening for one
	phaseElecting                  // sent MsgElection to higher IDs; waiting for MsgAlive
	phaseAwaitCoord                // a higher ID is alive; waiting for its COORDINATOR
	phasePreCandidate              // probing whether a majority would acknowledge us
	phaseCandidate                 // coordinator: collecting acknowledgements
	phaseLeader
)

// Node is the consensus state machine. It is not safe for concurrent use.
type Node struct {
	id     NodeID
	cfg    Config
	rand   Rand
	logger Logger
	comp   [6]string

	// Persistent state (HardState).
	term         uint64
	vote         NodeID
	acceptedTerm uint64
	mustReach    uint64

	log *nodeLog

	role             Role
	lead             NodeID
	phase            phase
	now              int64 // ticks since start
	wallMs           int64 // caller's clock (unix ms), stamped on sequenced entries; see SetTime
	electionElapsed  int   // ticks since the leader was last heard (or since a reset)
	electionTimeout  int
	phaseElapsed     int
	heartbeatElapsed int

	votes map[NodeID]vote // candidate

	// Leader.
	prs           map[NodeID]*progress
	replicaIDs    []NodeID // keys of prs, sorted (replicas())
	prsVersion    uint64   // conf version prs was built for
	sync          syncState
	rec           *recovery // syncRecovering (recover.go)
	syncIndex     uint64    // last index of this term's synchronised history
	fetchFrom     NodeID
	fetchTarget   uint64
	fetchIndex    uint64 // last MsgSyncReq index
	leaderElapsed int
	queued        []Proposal // forwarded during synchronisation
	earlyFwd      []Message  // forwards received as a candidate (see handleForward)
	earlyCount    int
	needBcast     bool
	matchBuf      []uint64
	fwdRecv       map[NodeID]uint64 // per origin: highest ReqID received in accepted forwards
	fwdRefused    map[NodeID]bool   // per origin: a refusal is out, no stream restart seen yet

	// Follower.
	pendingSync      uint64 // term whose history the log holds, awaiting persistence
	pendingSyncIndex uint64
	held             []Message // out-of-order MsgApp held back
	syncReqWait      *Message  // a MsgSyncReq whose answer waits for a background read
	leadPre          bool      // the leader's last MsgApp/MsgHeartbeat said it sequenced nothing (formation)
	processingHeld   bool
	catchupLogged    uint64
	catchupTerm      uint64 // term whose leader's first append was checked for catch-up

	// Repair of a log that lost entries it does not know (MustReach =
	// math.MaxUint64): this incarnation's token, and the target the leader
	// echoed for it (see Message.Repair).
	repairToken uint64
	repairFloor uint64
	repairTerm  uint64
	repairLead  NodeID

	// staleUntil: a voter refused this node's candidacy because its
	// configuration is stale (see staleCoordinator); until then it does
	// not answer MsgElection, so lower IDs do not wait for it.
	staleUntil int64

	// Leadership transfer (transfer.go).
	transferee       NodeID // leader: handing over to it; proposals wait
	transferElapsed  int
	transferCampaign bool // candidate: campaigning on the leader's MsgTimeoutNow

	fwd     forwarder
	fwdLead NodeID // the (leader, term) of the current forwarding stream
	fwdTerm uint64
	dropped []Proposal
	msgs    []Message

	prevHS   HardState
	prevSoft SoftState
}

type vote struct {
	granted      bool
	acceptedTerm uint64
	lastIndex    uint64
	lastTerm     uint64
}

type syncState uint8

const (
	syncNone       syncState = iota
	syncFetching             // fetching the most advanced log from a voter
	syncRecovering           // recovering the history's damaged positions (recover.go)
	syncSyncing              // bringing followers to the history
	syncDone                 // a majority synced; sequencing
)

const (
	compElection = iota
	compFailure
	compOrdering
	compStorage
	compMembership
	compNode
)

// NewNode returns a node restored from cfg.HardState and cfg.Storage. It
// starts as a follower that listens for a full election timeout before it
// starts an election (a 1-member cluster elects itself on the first Tick).
func NewNode(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hs := cfg.HardState
	n := &Node{
		id:     cfg.ID,
		cfg:    cfg,
		rand:   cfg.Rand,
		logger: cfg.Logger,
		term:   hs.Term,
		vote:   hs.Vote,

		acceptedTerm: hs.AcceptedTerm,
		mustReach:    max(hs.MustReach, cfg.MustReach),
		prevHS:       hs,
	}
	id := strconv.FormatUint(uint64(cfg.ID), 10)
	for i, c := range [...]string{"election.", "failure.", "ordering.", "storage.", "membership.", "node."} {
		n.comp[i] = c + id
	}
	cs := cfg.ConfState.clone()
	if len(cs.Voters) == 0 && !cfg.Join {
		cs = ConfState{Voters: slices.Compact(slices.Sorted(slices.Values(cfg.Members))), Addrs: maps.Clone(cfg.MemberAddrs)}
	}
	slices.Sort(cs.Voters)
	slices.Sort(cs.Learners)
	n.log = newNodeLog(cfg.Storage, hs.Commit, cfg.Applied, cs)
	n.log.initHeld(cfg.Faulty, hs)
	n.log.committed = min(n.log.committed, n.log.lastIndex())
	n.fwd.init()
	if err := n.rebuildReqs(); err != nil {
		return nil, err
	}
	if n.mustReach == math.MaxUint64 {
		n.repairToken = n.rand.Uint64() | 1
	}
	n.becomeFollower(n.term, 0)
	n.prevSoft = n.softState()
	n.logf(LevelInfo, compNode, "Restored term=%d accepted_term=%d log=[%d,%d] commit=%d applied=%d",
		n.term, n.acceptedTerm, n.log.firstIndex(), n.log.lastIndex(), n.log.committed, n.log.applied)
	switch {
	case n.mustReach == math.MaxUint64:
		n.logf(LevelWarn, compStorage, "Log lost acknowledged entries (how many is unknown): not voting until refilled from the leader")
	case n.mustReach > 0:
		n.logf(LevelWarn, compStorage, "Log lost acknowledged entries (must reach seq_no=%d): not voting until repaired from the leader", n.mustReach)
	}
	if h := len(n.log.held); h > 0 {
		n.logf(LevelWarn, compStorage, "Log has %d damaged positions after seq_no=%d (up to index %d): they count as held, not absent, until repaired from an intact copy",
			h, n.log.conf.seq(n.log.lastIndex()), n.log.heldEnd())
	}
	return n, nil
}

// rebuildReqs scans the log for the highest ReqID per origin (and where
// each term starts).
func (n *Node) rebuildReqs() error {
	n.log.reqs.init()
	lo, hi := n.log.firstIndex(), n.log.lastIndex()+1
	if t, err := n.log.storage.Term(lo - 1); err == nil && lo > 1 {
		n.log.noteTerm(lo-1, t)
	}
	if sm, ok := n.log.storage.(Summarizer); ok {
		if sum, ok := sm.PrefixSummary(); ok && sum.Upto >= lo && sum.Upto < hi {
			if err := n.applySummary(lo, &sum); err != nil {
				return err
			}
			lo = sum.Upto + 1
		}
	}
	for lo < hi {
		ents, err := n.log.entries(lo, hi, n.cfg.MaxBatchBytes)
		if err != nil {
			return err
		}
		for i := range ents {
			n.log.conf.observe(&ents[i])
			n.log.reqs.observe(&ents[i])
			n.log.noteTerm(ents[i].Index, ents[i].Term)
		}
		lo += uint64(len(ents))
	}
	n.log.reqs.compact(n.log.committed)
	n.log.conf.commit(n.log.committed) // (dirty if the persisted ConfState lagged)
	return nil
}

// applySummary takes in what the storage summarised of entries [lo,
// sum.Upto] as if they had been read one by one: term runs and ReqIDs
// from the summary, membership entries read (they are few).
func (n *Node) applySummary(lo uint64, sum *PrefixSummary) error {
	for k, t := range sum.Terms {
		if k+1 < len(sum.Terms) && sum.Terms[k+1].Index <= lo {
			continue // a run that ends before the log's first entry
		}
		if t.Index > sum.Upto {
			break
		}
		n.log.noteTerm(max(t.Index, lo), t.Term)
	}
	for o, r := range sum.MaxReqID {
		n.log.reqs.base[o] = max(n.log.reqs.base[o], r)
		n.log.reqs.max[o] = max(n.log.reqs.max[o], r)
	}
	for _, i := range sum.Membership {
		if i < lo || i > sum.Upto {
			continue
		}
		ents, err := n.log.entries(i, i+1, 0)
		if err != nil {
			return err
		}
		if len(ents) != 1 || ents[0].Type != EntryMembership {
			return errors.New("consensus: storage summary names entry " + u64s(i) + " as a membership entry; it is not")
		}
		n.log.conf.observe(&ents[0])
	}
	return nil
}

func (n *Node) logf(level Level, comp int, format string, args ...any) {
	if n.logger != nil {
		n.logger.Logf(level, n.comp[comp], format, args...)
	}
}

func (n *Node) send(m Message) {
	m.From = n.id
	if m.Term == 0 {
		m.Term = n.term
	}
	n.msgs = append(n.msgs, m)
}

func (n *Node) hardState() HardState {
	runs := n.log.ackedRuns()
	if n.cfg.TestOnlyBreakDurability {
		// Acked guards against media faults; in the deliberately broken
		// mode it would hide part of what the simulations must expose
		// (acknowledgements that outrun the disk), so it is not kept.
		return HardState{Term: n.term, Vote: n.vote, AcceptedTerm: n.acceptedTerm, Commit: n.log.committed, MustReach: n.mustReach}
	}
	return HardState{Term: n.term, Vote: n.vote, AcceptedTerm: n.acceptedTerm,
		Commit: n.log.committed, MustReach: n.mustReach,
		Acked: n.log.heldEnd(), AckedTerm: runs[0].Term, AckedTermStart: runs[0].Start,
		AckedPrev: [3]TermRun{runs[1], runs[2], runs[3]}}
}

func (n *Node) softState() SoftState {
	return SoftState{Lead: n.lead, Role: n.role, Sequencing: n.sequencing()}
}

// inLease reports whether this node recently heard from a live leader (or
// is one): it then refuses to acknowledge rival coordinators and to start
// elections.
func (n *Node) inLease() bool {
	if n.role == Leader {
		return true
	}
	return n.lead != 0 && n.electionElapsed < n.cfg.ElectionTicks
}

// SetTime gives the core the caller's wall clock (unix milliseconds). The
// leader stamps it on the entries it sequences (Entry.Time), so every node
// reports the sequencer's time for a message, and a leader refuses
// forwarded ReqIDs more than 24h (in ns) ahead of it (see api.go). It is
// data, not a timer: the core never reads a clock itself.
func (n *Node) SetTime(unixMs int64) { n.wallMs = unixMs }

// Tick advances logical time by one tick.
func (n *Node) Tick() {
	n.now++
	if n.log.applyWait && n.now%int64(n.cfg.HeartbeatTicks) == 0 {
		n.log.applyWait = false // fallback if a ReadReady never comes
	}
	if n.role == Leader {
		n.tickLeader()
	} else {
		n.tickElection()
	}
	n.tickForward()
}

// Step feeds a message from a peer into the node. It returns ErrStepLocal
// for a message addressed to another node, and ErrBadMessage (changing no
// state) for a message no correct peer sends: an unknown type, a term
// above 2^62 or an index that could wrap, entries that do not follow the
// message's Index or whose terms are out of order, forwarded proposals
// of another origin than the sender, or ReqIDs implausibly far ahead of
// the clock (see "Exactly-once publishing" in the package comment).
// Everything else (old terms, unknown senders, duplicates) is absorbed.
// Step never panics on a message, whatever its fields.
func (n *Node) Step(m Message) error {
	if m.To != 0 && m.To != n.id {
		return ErrStepLocal
	}
	if err := n.checkMessage(&m); err != nil {
		n.logf(LevelWarn, compNode, "Ignored malformed %v from node_%d: %v", m.Type, m.From, err)
		return err
	}
	if m.From == n.id || !n.acceptsFrom(m) {
		n.logf(LevelDebug, compMembership, "Ignored %v from non-member node_%d", m.Type, m.From)
		if m.Type == MsgCoordinator && m.From != n.id {
			// Say so: a removed node that does not know it (its log
			// lags behind its removal) then stops answering lower IDs'
			// MsgElection for a while (noteStale) instead of holding
			// them back, waiting for a COORDINATOR that cannot win.
			// (Found by a sweep: such a node, and a lagging voter that
			// deferred to it, kept a cluster leaderless for good.)
			rej := Message{To: m.From, Type: MsgCoordinatorAck, Pre: m.Pre, Reject: true, RejectHint: rejectStale}
			if m.Pre {
				rej.Term = n.term
			}
			n.send(rej)
		}
		return nil
	}
	// Bully liveness signals and forwarded proposals carry no authority:
	// they neither change terms nor are refused for an old one.
	switch m.Type {
	case MsgElection:
		n.handleElection(m)
		return nil
	case MsgAlive:
		n.handleAlive(m)
		return nil
	case MsgForward:
		n.handleForward(m)
		return nil
	case MsgCoordinator, MsgCoordinatorAck:
		if m.Pre { // probes carry a prospective term
			if m.Type == MsgCoordinator {
				n.handlePreCoordinator(m)
			} else {
				n.handlePreAck(m)
			}
			return nil
		}
	}
	switch {
	case m.Term > n.term:
		if m.Type == MsgCoordinator && n.inLease() && !n.yieldsTo(m.From) && !m.Transfer && m.From != n.lead {
			// Stickiness: do not let a rival depose a live leader, and do
			// not even adopt its term.
			n.logf(LevelInfo, compElection, "Refused COORDINATOR from node_%d for term %d: leader node_%d is alive",
				m.From, m.Term, n.lead)
			n.send(Message{To: m.From, Type: MsgCoordinatorAck, Reject: true})
			return nil
		}
		lead := NodeID(0)
		if m.Type == MsgApp || m.Type == MsgHeartbeat {
			lead = m.From
		}
		n.becomeFollower(m.Term, lead)
	case m.Term < n.term:
		// Tell stale leaders and coordinators the current term.
		switch m.Type {
		case MsgApp, MsgHeartbeat, MsgSyncReq, MsgRecover:
			n.send(Message{To: m.From, Type: MsgHeartbeatResp, Index: n.log.lastIndex(), AcceptedTerm: n.acceptedTerm})
		case MsgCoordinator:
			n.send(Message{To: m.From, Type: MsgCoordinatorAck, Reject: true})
		}
		return nil
	}

	switch m.Type {
	case MsgCoordinator:
		n.handleCoordinator(m)
	case MsgCoordinatorAck:
		n.handleCoordinatorAck(m)
	case MsgSyncReq:
		n.handleSyncReq(m)
	case MsgSyncResp:
		if n.role == Leader {
			n.handleSyncResp(m)
		}
	case MsgApp, MsgHeartbeat:
		if n.role == Leader {
			n.logf(LevelError, compElection, "Two leaders in term %d: node_%d and self; ignoring", n.term, m.From)
			return nil
		}
		if m.Pre && m.From < n.id && n.phase != phaseFollow && n.mustReach == 0 {
			// Formation: campaigning to take over from a provisional,
			// lower leader; its heartbeats must not cancel the campaign.
			return nil
		}
		if n.role == Candidate || n.lead != m.From {
			n.becomeFollower(n.term, m.From)
		}
		n.leadPre = m.Pre
		if m.Type == MsgApp {
			n.handleAppend(m)
		} else {
			n.handleHeartbeat(m)
		}
	case MsgAppResp, MsgHeartbeatResp:
		if n.role == Leader {
			n.handleAppResp(m)
		}
	case MsgTimeoutNow:
		n.handleTimeoutNow(m)
	case MsgRecover:
		n.handleRecover(m)
	case MsgRecoverResp:
		if n.role == Leader {
			n.handleRecoverResp(m)
		}
	}
	return nil
}

// Propose submits client work. At the leader the proposals are sequenced
// (once it finished synchronising); at a follower they are forwarded to
// the leader and re-forwarded after failovers until seen committed (or
// dropped, or cancelled). It returns ErrNoLeader when no leader is known,
// ErrBacklog when MaxPending proposals are already pending.
//
// Origin must be this node's ID or zero (meaning this node): a leader
// accepts forwarded proposals only of the origin that forwards them, so
// one node cannot speak for another; otherwise Propose returns
// ErrForeignOrigin. ReqIDs must increase per Origin, also
// across restarts (e.g. seed them from the wall clock at startup); ReqID 0
// opts out of deduplication and of re-forwarding.
func (n *Node) Propose(ps ...Proposal) error {
	if len(ps) == 0 {
		return nil
	}
	if n.lead == 0 {
		return ErrNoLeader
	}
	for i := range ps {
		if ps[i].Origin != 0 && ps[i].Origin != n.id {
			return ErrForeignOrigin
		}
	}
	if n.fwd.count+len(ps) > n.cfg.MaxPending {
		return ErrBacklog
	}
	for i := range ps {
		if ps[i].Type != EntryNormal {
			return ErrBadChange // membership goes through ProposeMembership
		}
	}
	ps = slices.Clone(ps)
	for i := range ps {
		ps[i].Origin = n.id
	}
	n.fwd.track(ps, n.now)
	switch {
	case n.sequencing():
		n.appendProposals(ps)
	case n.role == Leader:
		// Tracked; appended once synchronised (see becomeSequencer).
		for _, p := range ps {
			if p.ReqID == 0 {
				n.queued = append(n.queued, p)
			}
		}
	default:
		n.fwd.outbox = append(n.fwd.outbox, ps...)
	}
	return nil
}

// Cancel stops tracking a pending proposal (the caller gave up on it, e.g.
// after a client timeout): it is no longer re-forwarded. It may still
// commit if a copy already reached a leader.
func (n *Node) Cancel(origin NodeID, reqID uint64) bool {
	if origin == 0 {
		origin = n.id
	}
	return n.fwd.cancel(origin, reqID)
}

// HasReady reports whether Ready has anything to do.
func (n *Node) HasReady() bool {
	return len(n.msgs) > 0 || n.needBcast || (len(n.fwd.outbox) > 0 && n.lead != 0) || len(n.dropped) > 0 ||
		n.hardState() != n.prevHS || n.softState() != n.prevSoft || n.log.conf.dirty ||
		!n.log.durable() || len(n.log.u.entries) > 0 || n.log.hasNextCommitted()
}

// Ready returns what to persist, send and apply. Call Advance after
// handling it and before the next Ready.
func (n *Node) Ready() Ready {
	n.flush()
	var rd Ready
	if hs := n.hardState(); hs != n.prevHS {
		rd.HardState = &hs
		p := n.prevHS
		rd.MustSync = hs.Term != p.Term || hs.Vote != p.Vote || hs.AcceptedTerm != p.AcceptedTerm ||
			hs.MustReach != p.MustReach // (not Commit or Acked: see HardState)
	}
	if ss := n.softState(); ss != n.prevSoft {
		rd.SoftState = &ss
	}
	if n.log.conf.dirty {
		cs := n.log.conf.committedState()
		rd.ConfState = &cs
		rd.MustSync = true
		n.log.conf.dirty = false
	}
	rd.TruncateFrom, rd.Entries, rd.gen = n.log.handOut()
	rd.spareCut = n.log.u.spareCut
	if r := n.log.u.reset; r > 0 {
		rd.ResetLog, rd.ResetLogTerm, rd.TruncateFrom = r, n.log.u.resetTerm, 0
	}
	if rd.ResetLog > 0 || rd.TruncateFrom > 0 || len(rd.Entries) > 0 {
		rd.MustSync = true
	}
	if n.log.hasNextCommitted() {
		ents, err := n.log.nextCommitted(n.cfg.MaxCommittedBytes)
		if errors.Is(err, ErrReadPending) {
			n.log.applyWait = true // until ReadReady or the next heartbeat interval
		} else if err != nil {
			n.logf(LevelError, compStorage, "Cannot read committed entries after seq_no=%d: %v", n.log.applying, err)
		} else if len(ents) > 0 {
			rd.Committed = ents
			n.log.applying = ents[len(ents)-1].Index
			for i := range ents {
				n.dropped = n.fwd.committed(ents[i].Origin, ents[i].ReqID, n.dropped)
			}
		}
	}
	rd.Dropped, n.dropped = n.dropped, nil
	rd.Messages, rd.MessagesAfterPersist = n.splitMessages()
	return rd
}

// splitMessages applies the durability rule (etcd raft's msgsAfterAppend):
// only messages that claim nothing about this node's disk may leave before
// this Ready is persisted.
func (n *Node) splitMessages() (early, late []Message) {
	msgs := n.msgs
	n.msgs = nil
	if n.cfg.TestOnlyBreakDurability {
		return msgs, nil // deliberately unsafe: see Config.TestOnlyBreakDurability
	}
	for _, m := range msgs {
		if n.claimsNothing(m) {
			early = append(early, m)
		} else {
			late = append(late, m)
		}
	}
	return early, late
}

// claimsNothing reports whether m may leave before this node's pending
// HardState and entries are durable.
func (n *Node) claimsNothing(m Message) bool {
	switch m.Type {
	case MsgApp, MsgHeartbeat:
		// A leader's appends claim only that it leads m.Term, which must
		// itself be durable (with the self-vote that came with it): a
		// leader that forgot its term could acknowledge a rival in it.
		// The entries they carry count toward commit only once a majority
		// (the leader itself only after Advance) persisted them.
		return m.Term <= n.prevHS.Term
	case MsgForward, MsgElection, MsgAlive:
		// Client data (deduplicated by the leader) and bully liveness:
		// no authority, no claim about a log or a vote.
		return true
	}
	return false
}

// flush turns deferred work into messages: one batch of appends per
// follower and one MsgForward per batch of proposals, however many
// Propose/Step calls came since the last Ready.
func (n *Node) flush() {
	if len(n.fwd.outbox) > 0 {
		out := n.fwd.outbox
		n.fwd.outbox = nil
		switch {
		case n.sequencing():
			n.appendProposals(out)
		case n.role == Leader:
			n.queued = append(n.queued, out...)
		case n.lead != 0:
			for len(out) > 0 {
				var batch []Proposal
				var prev uint64
				batch, out, prev = n.fwd.nextBatch(out, n.cfg.MaxBatchBytes)
				n.send(Message{To: n.lead, Type: MsgForward, Index: prev, Proposals: batch})
			}
		default:
			n.fwd.outbox = out // no leader to send to yet
		}
	}
	if n.needBcast {
		n.needBcast = false
		if n.role == Leader {
			n.bcastAppend()
		}
	}
}

// Advance acknowledges that rd was handled: its HardState and Entries are
// durable, its Messages and MessagesAfterPersist sent and its Committed
// entries applied.
func (n *Node) Advance(rd Ready) {
	if rd.HardState != nil {
		n.prevHS = *rd.HardState
	}
	if rd.SoftState != nil {
		n.prevSoft = *rd.SoftState
	}
	n.log.stableTo(rd.gen)
	if k := len(rd.Committed); k > 0 {
		n.log.applied = max(n.log.applied, rd.Committed[k-1].Index)
	}
	// Reactions to newly durable state.
	n.tryAccept()
	n.maybeRepaired()
	if n.role == Leader {
		n.maybeRecovered()
		n.maybeCommit()
	}
}

// becomeFollower moves to term (if higher, forgetting the vote) as a
// follower of lead (0 = unknown).
func (n *Node) becomeFollower(term uint64, lead NodeID) {
	n.adoptTerm(term)
	wasLeader := n.role == Leader
	n.role = Follower
	n.phase = phaseFollow
	n.votes = nil
	n.prs = nil
	n.sync = syncNone
	n.rec = nil
	n.queued = nil
	n.earlyFwd, n.earlyCount = nil, 0
	n.transferee, n.transferCampaign = 0, false
	n.needBcast = false
	n.electionElapsed = 0
	n.phaseElapsed = 0
	n.electionTimeout = n.cfg.ElectionTicks
	if wasLeader {
		// Proposals tracked here go to whoever leads next.
		n.lead = 0
	}
	n.setLead(lead)
}

// setLead records the leader (or coordinator) this node follows. Every new
// (leader, term) gets every pending proposal re-forwarded, as a new stream.
func (n *Node) setLead(lead NodeID) {
	if lead != n.lead {
		n.lead = lead
		n.leadPre = false
		n.held = nil
		if lead != 0 && lead != n.id {
			n.logf(LevelInfo, compNode, "New coordinator: node_%d, term=%d", lead, n.term)
		}
	}
	if lead == 0 || lead == n.id || (lead == n.fwdLead && n.term == n.fwdTerm) {
		return
	}
	n.fwdLead, n.fwdTerm = lead, n.term
	n.fwd.restartAll(n.now)
}

// tickForward restarts the stream of an origin with a proposal that has
// not committed within an election timeout (a MsgForward, or the leader's
// refusal, may have been lost).
func (n *Node) tickForward() {
	if n.fwd.count == 0 || n.lead == 0 || n.role == Leader || n.now%int64(n.cfg.HeartbeatTicks) != 0 {
		return
	}
	for _, o := range n.fwd.stale(n.now - int64(n.cfg.ElectionTicks)) {
		n.fwd.restart(o, n.now)
	}
}
