package consensus

import "slices"

// Follower: accepting the leader's history and entries.
//
// A follower that has not yet synced with its term's leader (AcceptedTerm <
// Term) accepts entries only up to the leader's SyncIndex (the end of the
// leader's synchronised history H). When its log matches H up to
// SyncIndex it discards anything beyond (an uncommitted divergent tail) and,
// once that log is durable, persists AcceptedTerm = Term and acknowledges
// — two steps, so that AcceptedTerm never describes a log that is not on
// disk, whatever order the caller persists HardState and entries in.
// Entries of the new term are accepted only after that.

func (n *Node) handleHeartbeat(m Message) {
	n.electionElapsed = 0
	n.phase = phaseFollow
	n.logf(LevelDebug, compFailure, "Heartbeat received from leader, term=%d", m.Term)
	// The leader sends min(commit, what it knows we match).
	n.log.commitTo(min(m.Commit, n.log.lastIndex()))
	n.send(Message{To: m.From, Type: MsgHeartbeatResp, Index: n.log.lastIndex(), AcceptedTerm: n.acceptedTerm})
}

func (n *Node) handleAppend(m Message) {
	n.electionElapsed = 0
	n.phase = phaseFollow
	unsynced := n.acceptedTerm < n.term
	prev, prevTerm, ents := m.Index, m.LogTerm, m.Entries
	if unsynced {
		k := len(ents)
		for k > 0 && ents[k-1].Index > m.SyncIndex {
			k--
		}
		ents = ents[:k]
	}
	if c := n.log.committed; prev < c {
		// The committed prefix is the same everywhere: skip it.
		if skip := c - prev; skip >= uint64(len(ents)) {
			ents = nil
		} else {
			ents = ents[skip:]
		}
		t, ok := n.log.term(c)
		if !ok {
			n.send(Message{To: m.From, Type: MsgAppResp, Index: c, AcceptedTerm: n.acceptedTerm})
			return
		}
		prev, prevTerm = c, t
	}
	lastNew, ok := n.log.maybeAppend(prev, prevTerm, ents)
	if !ok {
		n.rejectAppend(m)
		return
	}
	if unsynced && lastNew >= m.SyncIndex {
		n.log.truncateTo(lastNew + 1) // the divergent tail beyond H
		n.pendingSync, n.pendingSyncIndex = n.term, lastNew
		n.tryAccept()
	}
	n.log.commitTo(min(m.Commit, lastNew))
	n.send(Message{To: m.From, Type: MsgAppResp, Index: lastNew, AcceptedTerm: n.acceptedTerm})
	n.catchupLogged = 0
	n.processHeld()
}

func (n *Node) rejectAppend(m Message) {
	last := n.log.lastIndex()
	if m.Index > last {
		// Entries ahead of our log: hold them back until the gap fills,
		// and ask for the missing range.
		n.holdBack(m)
		if n.catchupLogged != last+1 {
			n.catchupLogged = last + 1
			n.logf(LevelInfo, compStorage, "Requesting catch-up from seq_no=%d", last+1)
		}
	}
	hint, hintTerm := n.log.findConflictByTerm(min(m.Index, last), m.LogTerm)
	n.send(Message{To: m.From, Type: MsgAppResp, Index: m.Index, Reject: true, RejectHint: hint, LogTerm: hintTerm,
		AcceptedTerm: n.acceptedTerm})
}

func (n *Node) holdBack(m Message) {
	if len(m.Entries) == 0 {
		return
	}
	n.logf(LevelDebug, compOrdering, "Buffered out-of-order message seq_no=%d (expected %d)",
		m.Entries[0].Index, n.log.lastIndex()+1)
	i, _ := slices.BinarySearchFunc(n.held, m.Index, func(h Message, idx uint64) int { return cmpU64(h.Index, idx) })
	if len(n.held) >= n.cfg.MaxInflight {
		if i == len(n.held) {
			return // keep the earliest ones
		}
		n.held = n.held[:len(n.held)-1]
	}
	n.held = slices.Insert(n.held, i, m)
}

// processHeld replays held-back appends the log has now reached.
func (n *Node) processHeld() {
	if n.processingHeld {
		return
	}
	n.processingHeld = true
	defer func() { n.processingHeld = false }()
	for len(n.held) > 0 {
		h := n.held[0]
		if h.Index > n.log.lastIndex() {
			return
		}
		n.held = n.held[1:]
		if h.Term == n.term && h.From == n.lead && n.role == Follower {
			n.handleAppend(h)
		}
	}
}

// tryAccept persists AcceptedTerm = Term once this term's history is
// durable (leader and followers alike).
func (n *Node) tryAccept() {
	if n.pendingSync == 0 || n.pendingSync != n.term || n.acceptedTerm >= n.term {
		return
	}
	// The history must be durable, and any truncation of an older tail
	// too. (A follower accepts nothing beyond it until then; a leader may
	// already have appended new entries after it.)
	if n.log.u.truncate != 0 || n.log.stableIndex() < n.pendingSyncIndex {
		return
	}
	n.acceptedTerm = n.term
	n.pendingSync = 0
	if n.mustReach > 0 {
		n.logf(LevelInfo, compStorage, "Log repaired: synchronised with term %d", n.term)
		n.mustReach = 0
	}
	if n.role == Leader {
		n.maybeCommit()
		return
	}
	n.logf(LevelInfo, compOrdering, "Synchronised with leader node_%d: history up to seq_no=%d, term %d",
		n.lead, n.pendingSyncIndex, n.term)
	if n.lead != 0 {
		n.send(Message{To: n.lead, Type: MsgAppResp, Index: n.pendingSyncIndex, AcceptedTerm: n.acceptedTerm})
	}
}

// maybeRepaired clears MustReach once the log has caught up to it from the
// leader of its AcceptedTerm (entries it lost are back, from the source).
func (n *Node) maybeRepaired() {
	if n.mustReach == 0 || n.acceptedTerm != n.term || n.role != Follower || n.lead == 0 {
		return
	}
	if n.log.stableIndex() >= n.mustReach {
		n.logf(LevelInfo, compStorage, "Log repaired up to seq_no=%d", n.mustReach)
		n.mustReach = 0
	}
}
