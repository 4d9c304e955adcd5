package consensus

import (
	"errors"
	"slices"
)

// Leader: synchronisation, then sequencing (Zab's phases 2 and 3).
//
// On election the leader takes the most advanced log among the voters that
// acknowledged it, compared by (AcceptedTerm, LastIndex) — Zab's
// (currentEpoch, lastZxid). Not by the term of the last entry: a voter
// synced to a newer leader may hold older-term entries only, yet its log
// is the one that contains everything that leader committed (Raft's
// Figure 8). Every log with the same AcceptedTerm is a prefix of that
// term's leader's log, so the longest one contains the others.
//
// If that log is not its own, the leader fetches it (MsgSyncReq, batched,
// using log matching to find the divergence point) and discards its own
// divergent tail. That history H is then its log; once it is durable the
// leader persists AcceptedTerm = term. Followers are brought to H with
// ordinary appends (they accept nothing beyond H until synced, discard
// their divergent tails, persist AcceptedTerm and acknowledge). Once a
// majority has synced, H is committed and new proposals are sequenced.
//
// Commit counts only synced members' acknowledgements: an entry is
// committed when a majority of nodes that persisted AcceptedTerm = term
// have it on disk. Any later election majority contains one of them, and
// its (AcceptedTerm, LastIndex) dominates every log missing the entry.

func (n *Node) becomeLeader() {
	n.role = Leader
	n.phase = phaseLeader
	n.transferCampaign = false
	n.setLead(n.id)
	n.electionElapsed = 0
	n.heartbeatElapsed = 0
	n.leaderElapsed = 0
	n.logf(LevelInfo, compNode, "Became LEADER for term %d", n.term)
	if len(n.voters()) == 1 && n.mustReach > 0 {
		n.logf(LevelWarn, compStorage, "Single-member cluster cannot repair its log; entries up to seq_no=%d are lost", n.mustReach)
		n.mustReach, n.repairToken = 0, 0
	}
	n.replicaIDs = n.replicas()
	n.prsVersion = n.log.conf.version
	n.prs = make(map[NodeID]*progress, len(n.replicaIDs))
	n.fwdRecv, n.fwdRefused = map[NodeID]uint64{}, map[NodeID]bool{}
	best, bv := n.id, n.votes[n.id]
	granted := 1
	for _, id := range n.replicaIDs {
		v, ok := n.votes[id]
		n.prs[id] = &progress{next: n.log.lastIndex() + 1, inflight: newInflights(n.cfg.MaxInflight),
			active: ok && v.granted}
		if !n.isVoter(id) {
			continue // (learners do not vote: checkVotes counted none)
		}
		if v.granted && v.lastIndex < n.log.committed &&
			(v.acceptedTerm > bv.acceptedTerm || (v.acceptedTerm == bv.acceptedTerm && v.lastIndex > bv.lastIndex)) {
			// A log that would win yet lacks entries we know committed:
			// the voter lost acknowledged entries without saying so (or is
			// faulty). Taking it would truncate committed history; the
			// rest of the majority, if still one, holds everything.
			n.logf(LevelError, compElection, "node_%d acknowledged with a log ending at seq_no=%d (accepted term %d), below the commit index %d: not trusted",
				id, v.lastIndex, v.acceptedTerm, n.log.committed)
			continue
		}
		if v.granted {
			granted++
		}
		if v.granted && (v.acceptedTerm > bv.acceptedTerm ||
			(v.acceptedTerm == bv.acceptedTerm && v.lastIndex > bv.lastIndex)) {
			best, bv = id, v
		}
	}
	n.votes = nil
	if granted < n.quorum() {
		n.logf(LevelWarn, compElection, "Too few trusted acknowledgements for term %d; stepping down", n.term)
		n.becomeFollower(n.term, 0)
		return
	}
	n.sync = syncFetching
	switch {
	case best == n.id:
		n.finishFetch(n.log.heldEnd())
	case n.log.matchesAt(bv.lastIndex, bv.lastTerm):
		// The best log is a prefix of ours: drop our extra (older) tail.
		n.log.truncateTo(bv.lastIndex + 1)
		n.finishFetch(bv.lastIndex)
	case bv.lastIndex > n.log.lastIndex() && bv.lastTerm != 0 && bv.lastIndex <= n.log.heldEnd() &&
		n.log.held[bv.lastIndex-n.log.lastIndex()-1] == bv.lastTerm:
		// It ends at one of our damaged positions, of the same term.
		n.log.cutHeld(bv.lastIndex)
		n.finishFetch(bv.lastIndex)
	default:
		n.fetchFrom, n.fetchTarget = best, bv.lastIndex
		n.logf(LevelInfo, compStorage, "Fetching history from node_%d up to seq_no=%d (accepted term %d)",
			best, bv.lastIndex, bv.acceptedTerm)
		n.sendFetch(min(n.log.lastIndex(), n.fetchTarget))
	}
	n.bcastHeartbeat()
	// Forwards that arrived while this node was collecting
	// acknowledgements (followers that acknowledged it already forward to
	// it), as if they arrived now.
	early := n.earlyFwd
	n.earlyFwd, n.earlyCount = nil, 0
	for _, m := range early {
		n.handleForward(m)
	}
}

func (n *Node) sendFetch(idx uint64) {
	t, ok := n.log.term(idx)
	if !ok {
		idx = n.log.committed // trusted by the voter without its term
		t, _ = n.log.term(idx)
	}
	n.fetchIndex = idx
	n.send(Message{To: n.fetchFrom, Type: MsgSyncReq, Index: idx, LogTerm: t, Commit: n.log.committed})
}

// handleSyncReq serves this node's log to the coordinator it acknowledged.
func (n *Node) handleSyncReq(m Message) {
	if n.vote != m.From || n.role != Follower || n.mustReach > 0 {
		n.send(Message{To: m.From, Type: MsgSyncResp, Reject: true})
		return
	}
	n.electionElapsed = 0
	n.setLead(m.From)
	last := n.log.lastIndex()
	prev := min(m.Index, last)
	if prev > m.Commit && (m.LogTerm == 0 || !n.log.matchTerm(prev, m.LogTerm)) {
		// (Up to the coordinator's commit index our logs are the same:
		// this log is the most advanced of its election. Beyond it, only
		// the terms tell; our own commit index says nothing about the
		// coordinator's log.)
		prev, _ = n.log.findConflictByTerm(prev, m.LogTerm)
	}
	// Below our first index we cannot serve: the coordinator restarts its
	// log there if it does not match.
	first := n.log.firstIndex()
	prev = max(prev, first-1)
	reset := first > 1 && prev == first-1
	pt, _ := n.log.term(prev) // 0 if unknown
	ents, err := n.log.entries(prev+1, last+1, n.cfg.MaxBatchBytes)
	if errors.Is(err, ErrReadPending) {
		// Answer once the read is done (ReadReady); the coordinator also
		// repeats its request every heartbeat.
		n.syncReqWait = &m
		return
	}
	if err != nil {
		n.logf(LevelError, compStorage, "Cannot serve history to node_%d from seq_no=%d: %v", m.From, prev+1, err)
		n.send(Message{To: m.From, Type: MsgSyncResp, Reject: true})
		return
	}
	var cs *ConfState
	if reset {
		c := n.log.conf.confForReset(prev)
		cs = &c
	}
	resp := Message{To: m.From, Type: MsgSyncResp, Index: prev, LogTerm: pt, Entries: ents, LastIndex: n.log.heldEnd(),
		Reset: reset, Commit: n.log.committed, Conf: cs}
	if h := n.log.held; len(h) > 0 && prev+uint64(len(ents)) == last {
		// The log proper ends here; the damaged positions after it are
		// part of what this node acknowledged (recover.go).
		resp.Faulty, resp.Terms = true, slices.Clone(h[:min(len(h), maxRecoverWindow)])
	}
	n.send(resp)
}

func (n *Node) handleSyncResp(m Message) {
	if n.sync != syncFetching || m.From != n.fetchFrom {
		return
	}
	if pr := n.prs[m.From]; pr != nil {
		pr.active, pr.lastContact = true, 0
	}
	if m.Reject || m.LastIndex < n.fetchTarget {
		n.logf(LevelWarn, compStorage, "node_%d can no longer serve the log it acknowledged; stepping down", m.From)
		n.becomeFollower(n.term, 0)
		return
	}
	prev, prevTerm, ents := m.Index, m.LogTerm, m.Entries
	if !n.log.matchesAt(prev, prevTerm) {
		switch {
		case !m.Reset:
			if prev <= n.fetchIndex {
				hint, _ := n.log.findConflictByTerm(prev, prevTerm)
				n.sendFetch(hint)
			}
			return
		case len(ents) > 0 && n.log.matchTerm(ents[0].Index, ents[0].Term):
			prev, prevTerm, ents = ents[0].Index, ents[0].Term, ents[1:] // log matching
		case prev > m.Commit || prev > n.fetchTarget:
			n.logf(LevelError, compStorage, "node_%d restarts its history at seq_no=%d beyond its commit %d or its log; stepping down",
				m.From, prev+1, m.Commit)
			n.becomeFollower(n.term, 0)
			return
		default:
			// The voter's log starts after entries we lack (retention).
			n.resetLog(prev, prevTerm, m.From, m.Conf)
		}
	}
	for len(ents) > 0 && ents[len(ents)-1].Index > n.fetchTarget {
		ents = ents[:len(ents)-1]
	}
	lastNew, ok := n.log.maybeAppend(prev, prevTerm, ents)
	if !ok {
		n.logf(LevelError, compStorage, "History from node_%d conflicts with committed seq_no<=%d; stepping down",
			m.From, n.log.committed)
		n.becomeFollower(n.term, 0)
		return
	}
	n.leaderElapsed = 0 // progress
	if lastNew >= n.fetchTarget {
		n.log.truncateTo(n.fetchTarget + 1)
		n.finishFetch(n.fetchTarget)
	} else if end := m.Index + uint64(len(m.Entries)); m.Faulty && lastNew >= end {
		// The voter's log proper ends at end (or within our committed
		// prefix, which is the same everywhere), and it holds damaged
		// positions up to fetchTarget: they are part of the history, to
		// be recovered. Our own records after lastNew stay as copies.
		n.log.spareFrom(lastNew)
		held := make([]uint64, n.fetchTarget-lastNew)
		if skip := lastNew - end; skip < uint64(len(m.Terms)) {
			copy(held, m.Terms[skip:])
		}
		if held[len(held)-1] == 0 {
			held[len(held)-1] = m.LastTerm
		}
		n.log.held = held // (instead of our own damaged positions)
		n.finishFetch(n.fetchTarget)
	} else if lastNew > n.fetchIndex {
		n.sendFetch(lastNew)
	}
}

// finishFetch: the log is now this term's history H = [1, syncIndex].
func (n *Node) finishFetch(syncIndex uint64) {
	if n.log.committed > syncIndex {
		// becomeLeader and handleSyncResp refuse histories shorter than
		// the commit index, whatever peers send: reaching this is a bug,
		// and sequencing on would overwrite committed entries.
		invariant("synchronised history ends at seq_no=" + u64s(syncIndex) + " below commit " + u64s(n.log.committed) +
			" (term " + u64s(n.term) + ")")
	}
	if syncIndex > n.log.lastIndex() {
		n.startRecovery(syncIndex)
		return
	}
	n.startSync(syncIndex)
}

// startSync: the log is this term's history [1, syncIndex], with no
// damaged position; bring followers to it.
func (n *Node) startSync(syncIndex uint64) {
	n.sync = syncSyncing
	n.syncIndex = syncIndex
	n.pendingSync, n.pendingSyncIndex = n.term, syncIndex
	n.syncProgress() // (the history may hold another configuration)
	n.logf(LevelInfo, compOrdering, "Synchronising followers to history up to seq_no=%d (term %d)", syncIndex, n.term)
	for _, pr := range n.prs {
		pr.match = 0
		pr.becomeProbe()
		pr.next = syncIndex + 1 // probe from the end of H backwards
		if pr.repairToken != 0 {
			// Nothing was sent in this term yet, and our log, which only
			// grows from now on, may have shrunk while fetching.
			pr.repairFloor = syncIndex
		}
	}
	n.tryAccept()
	n.needBcast = true
}

func (n *Node) tickLeader() {
	n.electionElapsed++
	n.heartbeatElapsed++
	n.leaderElapsed++
	for _, pr := range n.prs {
		pr.lastContact++
	}
	if n.electionElapsed >= n.cfg.ElectionTicks {
		n.electionElapsed = 0
		if !n.quorumActive() {
			// Check quorum: a leader cut off from the majority stops
			// accepting work promptly (PUBLISH fails fast on a minority).
			n.logf(LevelWarn, compFailure, "Lost contact with a majority; stepping down from term %d", n.term)
			n.becomeFollower(n.term, 0)
			return
		}
		for _, pr := range n.prs {
			pr.active = false
		}
		if n.sync == syncFetching && n.leaderElapsed >= 2*n.cfg.ElectionTicks {
			n.logf(LevelWarn, compStorage, "node_%d did not serve its history; stepping down", n.fetchFrom)
			n.becomeFollower(n.term, 0)
			return
		}
	}
	n.tickTransfer()
	if n.heartbeatElapsed >= n.cfg.HeartbeatTicks {
		n.heartbeatElapsed = 0
		n.retryReads() // (in case a ReadReady never comes)
		n.bcastHeartbeat()
		if n.sync == syncFetching {
			n.sendFetch(n.fetchIndex)
		}
		if n.sync == syncRecovering {
			n.queryRecovery()
		}
	}
}

func (n *Node) quorumActive() bool {
	active := 0
	for _, id := range n.voters() {
		if pr := n.prs[id]; id == n.id || (pr != nil && pr.active) {
			active++
		}
	}
	return active >= n.quorum()
}

func (n *Node) bcastHeartbeat() {
	for _, id := range n.replicaIDs {
		n.sendHeartbeat(id)
	}
	n.logf(LevelDebug, compFailure, "Sent heartbeat to %d peers", len(n.replicaIDs))
}

func (n *Node) sendHeartbeat(to NodeID) {
	m := Message{To: to, Type: MsgHeartbeat, SyncIndex: n.syncIndex, Pre: n.provisional()}
	if pr := n.prs[to]; pr != nil {
		m.Commit = min(pr.match, n.log.committed)
		pr.sentCommit = max(pr.sentCommit, m.Commit)
		m.Repair, m.LastIndex = pr.repairToken, pr.repairFloor
	}
	n.send(m)
}

func (n *Node) bcastAppend() {
	if n.sync < syncSyncing {
		return
	}
	for _, id := range n.replicaIDs {
		n.sendAppend(id)
	}
}

// sendAppend sends a follower what it lacks: in probe one MsgApp at a time
// (possibly empty, to find the match point), in replicate pipelined
// batches of up to MaxBatchBytes while fewer than MaxInflight are
// unacknowledged. An empty MsgApp also carries commit news.
func (n *Node) sendAppend(to NodeID) {
	pr := n.prs[to]
	if pr == nil || (pr.state == probe && pr.paused) || pr.readWait {
		return
	}
	limit := n.log.lastIndex()
	if !pr.synced {
		limit = min(limit, n.syncIndex) // nothing beyond H until it synced
	}
	pr.next = min(pr.next, limit+1)
	sendIfEmpty := pr.state == probe || pr.sentCommit < n.log.committed || pr.forceSend
	pr.forceSend = false
	for {
		if pr.state == replicate && pr.inflight.full() {
			return
		}
		prev := pr.next - 1
		prevTerm, ok := n.log.term(prev)
		reset := false
		if first := n.log.firstIndex(); prev+1 < first || (!ok && prev+1 == first) {
			// The follower lacks entries this log no longer holds
			// (retention): it restarts its log at our first index.
			if first-1 > n.log.committed {
				// Retention may drop only applied (hence committed)
				// entries: the caller broke its contract.
				invariant("the log starts at seq_no=" + u64s(first) + ", after the commit index " + u64s(n.log.committed) +
					" (retention dropped unapplied entries)")
			}
			prev, reset, pr.next = first-1, true, first
			prevTerm, ok = n.log.term(prev) // 0 if unknown
			if !ok && prev <= pr.match && prev > 0 {
				// It holds prev (it acknowledged it): a heartbeat ahead
				// raises its commit index to cover prev, which then
				// matches without its term instead of forcing a restart.
				n.sendHeartbeat(to)
			}
			if !pr.resetLogged && prev > pr.match {
				pr.resetLogged = true
				n.logf(LevelWarn, compStorage, "node_%d is behind the log's first seq_no=%d (retention): restarting its log there", to, first)
			}
		} else if !ok {
			// prev lies within [FirstIndex, LastIndex]: Storage must know
			// its term.
			invariant("Storage has no term for seq_no=" + u64s(prev) + " in its log [" + u64s(first) + ", " +
				u64s(n.log.lastIndex()) + "]")
		}
		var ents []Entry
		if pr.next <= limit {
			var err error
			if ents, err = n.log.entries(pr.next, limit+1, n.cfg.MaxBatchBytes); err != nil {
				if errors.Is(err, ErrReadPending) {
					// A catch-up read off the caller's hot loop: wait for
					// ReadReady (or the next heartbeat), send nothing now.
					n.logf(LevelDebug, compStorage, "Reading seq_no=%d for node_%d in the background", pr.next, to)
					pr.readWait = true
					return
				}
				n.logf(LevelError, compStorage, "Cannot read seq_no=%d for node_%d: %v", pr.next, to, err)
				return
			}
		}
		if len(ents) == 0 && !sendIfEmpty {
			return
		}
		var cs *ConfState
		if reset {
			c := n.log.conf.confForReset(prev)
			cs = &c
		}
		n.send(Message{To: to, Type: MsgApp, Index: prev, LogTerm: prevTerm, Entries: ents, Reset: reset, Conf: cs,
			Commit: n.log.committed, SyncIndex: n.syncIndex, Repair: pr.repairToken, LastIndex: pr.repairFloor,
			Pre: n.provisional()})
		pr.sentCommit = n.log.committed
		if pr.state == probe {
			pr.paused = true
			return
		}
		if len(ents) == 0 {
			return
		}
		last := ents[len(ents)-1].Index
		pr.next = last + 1
		pr.inflight.add(last)
		sendIfEmpty = false
	}
}

func (n *Node) handleAppResp(m Message) {
	pr := n.prs[m.From]
	if pr == nil {
		return
	}
	pr.active, pr.lastContact = true, 0
	if m.Repair != pr.repairToken {
		// A new incarnation that lost entries it cannot name: everything
		// it can have acknowledged to this leader is at or below our last
		// index now; it is whole again once it holds that much.
		if m.Repair != 0 {
			n.logf(LevelWarn, compStorage, "node_%d lost its log: refilling it up to seq_no=%d before it is trusted again",
				m.From, n.log.lastIndex())
			pr.forceSend, n.needBcast = true, true
		}
		pr.repairToken, pr.repairFloor = m.Repair, n.log.lastIndex()
	}
	if m.AcceptedTerm == n.term && !pr.synced {
		pr.synced = true
		n.logf(LevelDebug, compOrdering, "node_%d synchronised with term %d", m.From, n.term)
		n.maybeCommit()
	}
	if n.sync < syncSyncing {
		return
	}
	last := m.LastIndex // the follower's last index
	if m.Type == MsgHeartbeatResp {
		last = m.Index
	}
	if last < pr.match {
		// Its log regressed below what it acknowledged (its disk lost a
		// tail; it restarted with MustReach set): find its real end again
		// and re-send from there. (A reordered, stale answer can land here
		// too; it only costs a probe.)
		n.logf(LevelWarn, compStorage, "node_%d's log ends at seq_no=%d, below the seq_no=%d it acknowledged: re-sending from there",
			m.From, last, pr.match)
		pr.match = last
		pr.becomeProbe()
		pr.forceSend, n.needBcast = true, true
	}
	if m.Type == MsgHeartbeatResp {
		if pr.state == probe {
			pr.paused = false
		} else if pr.inflight.full() {
			pr.inflight.freeFirst() // an acknowledgement may have been lost
		}
		if pr.state == probe || !pr.synced || pr.match < n.log.lastIndex() || pr.sentCommit < n.log.committed {
			// Possibly a lost MsgApp: an (even empty) append makes the
			// follower reveal a gap.
			pr.forceSend = true
			n.needBcast = true
		}
		return
	}
	if m.Reject {
		hint := m.RejectHint
		if m.LogTerm > 0 {
			hint, _ = n.log.findConflictByTerm(m.RejectHint, m.LogTerm)
		}
		if pr.maybeDecrTo(m.Index, hint) {
			if pr.state == replicate {
				pr.becomeProbe()
			}
			n.needBcast = true
		}
		return
	}
	if m.Index > n.log.lastIndex() {
		return // not something this leader sent
	}
	if pr.maybeUpdate(m.Index) || (pr.state == probe && pr.match == m.Index) {
		if pr.state == probe {
			pr.becomeReplicate()
		} else {
			pr.inflight.freeLE(m.Index)
		}
		n.maybeCommit()
		n.needBcast = true
	}
	if m.From == n.transferee {
		n.maybeSendTimeoutNow()
	}
}

// maybeCommit advances the commit index to the highest index persisted by
// a majority of synced members, and completes synchronisation once a
// majority has synced.
func (n *Node) maybeCommit() {
	if n.role != Leader || n.sync < syncSyncing {
		return
	}
	matches := n.matchBuf[:0]
	synced := 0
	for _, id := range n.voters() { // (learners and removed nodes never count)
		switch pr := n.prs[id]; {
		case id == n.id && n.acceptedTerm == n.term:
			matches = append(matches, n.log.stableIndex())
			synced++
		case pr != nil && pr.synced:
			matches = append(matches, pr.match)
			synced++
		default:
			matches = append(matches, 0)
		}
	}
	slices.Sort(matches)
	n.matchBuf = matches
	mci := matches[len(matches)-n.quorum()]
	if n.sync == syncSyncing {
		if synced < n.quorum() || mci < n.syncIndex {
			return
		}
		n.becomeSequencer()
	}
	if n.log.commitTo(mci) {
		n.needBcast = true
		n.syncProgress()
		n.maybeRemoved()
	}
}

// becomeSequencer: a majority holds this term's history; commit it and
// sequence new proposals.
func (n *Node) becomeSequencer() {
	n.sync = syncDone
	n.logf(LevelInfo, compOrdering, "Synchronised a majority for term %d: history up to seq_no=%d committed, sequencing from seq_no=%d",
		n.term, n.syncIndex, n.syncIndex+1)
	n.resumeSequencing()
}

// appendProposals sequences proposals, skipping those whose (Origin,
// ReqID) is already in the log.
func (n *Node) appendProposals(ps []Proposal) {
	last := n.log.lastIndex()
	for i := range ps {
		p := &ps[i]
		if n.log.reqs.duplicate(p) {
			continue
		}
		last++
		n.log.append(Entry{Index: last, Term: n.term, Type: p.Type, Origin: p.Origin, ReqID: p.ReqID, Time: n.wallMs, Data: p.Data})
		n.needBcast = true
	}
}

// handleForward takes a follower's forwarded proposals (see forwarder for
// the stream rules), or, at a follower, the leader's refusal of some.
func (n *Node) handleForward(m Message) {
	if m.Reject {
		if m.From == n.lead && n.role != Leader {
			for _, p := range m.Proposals {
				if n.fwd.refused(p.Origin, p.ReqID, n.now) {
					n.logf(LevelDebug, compOrdering, "node_%d missed forwarded proposals before %d/%d; forwarding again", m.From, p.Origin, p.ReqID)
				}
			}
		}
		return
	}
	if n.role == Candidate && n.earlyCount+len(m.Proposals) <= n.cfg.MaxPending {
		// A follower that acknowledged this coordinator forwards to it
		// before it leads: keep the batch for becomeLeader rather than
		// make the follower wait an election timeout to re-forward
		// (a leadership hand-off would otherwise stall publishes).
		n.earlyFwd = append(n.earlyFwd, m)
		n.earlyCount += len(m.Proposals)
		return
	}
	if n.role != Leader {
		n.logf(LevelDebug, compOrdering, "Dropped %d forwarded proposals from node_%d: not the leader", len(m.Proposals), m.From)
		return
	}
	ps := m.Proposals
	if len(ps) == 0 {
		return
	}
	o, tracked := ps[0].Origin, ps[0].ReqID != 0
	for _, p := range ps[1:] {
		if p.Origin != o || (p.ReqID != 0) != tracked {
			tracked = false // not a stream batch: no order to keep
			break
		}
	}
	full := !n.sequencing() && len(n.queued)+len(ps) > n.cfg.MaxPending
	if tracked {
		prev := m.Index
		// The log vouches for the stream's earlier batches only once it is
		// this term's history: while synchronising, a divergent tail that
		// holds them may still be truncated (found by a sweep, seed
		// 609689: a batch replayed at election was let through on such a
		// tail, and a later proposal superseded an earlier one).
		inLog := n.sequencing() && prev <= n.log.reqs.max[o]
		if full || (prev != 0 && prev > n.fwdRecv[o] && !inLog) {
			// An earlier batch of the stream is missing (or cannot be
			// queued): appending these would let them overtake it.
			if !n.fwdRefused[o] {
				n.fwdRefused[o] = true
				n.send(Message{To: m.From, Type: MsgForward, Reject: true,
					Proposals: []Proposal{{Origin: o, ReqID: ps[0].ReqID, Type: ps[0].Type}}})
			}
			return
		}
		if prev == 0 {
			n.fwdRefused[o] = false // the stream restarted
		}
		for _, p := range ps {
			n.fwdRecv[o] = max(n.fwdRecv[o], p.ReqID)
		}
	}
	switch {
	case n.sequencing():
		n.appendProposals(ps)
	case !full:
		n.queued = append(n.queued, ps...)
	}
}

// ReadReady tells the core that a background read it was refused with
// ErrReadPending has completed (the caller's reader calls it through the
// caller's loop): every read that was refused is retried now — catch-up
// appends to waiting followers, a pending answer to a coordinator's sync
// request, committed entries to apply. Calling it spuriously is harmless.
func (n *Node) ReadReady() {
	n.retryReads()
	n.log.applyWait = false
	if m := n.syncReqWait; m != nil {
		n.syncReqWait = nil
		if m.Term == n.term {
			n.handleSyncReq(*m)
		}
	}
}

// retryReads lets every follower waiting for a background read be sent to
// again.
func (n *Node) retryReads() {
	for _, pr := range n.prs {
		if pr.readWait {
			pr.readWait = false
			n.needBcast = true
		}
	}
}
