package consensus

import (
	"math"
	"slices"
)

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
	n.resetElectionTimer()
	n.phase = phaseFollow
	n.logf(LevelDebug, compFailure, "Heartbeat received from leader, term=%d", m.Term)
	n.noteRepair(m)
	// The leader sends min(commit, what it knows we match).
	last := n.log.lastIndex()
	n.log.commitTo(min(m.Commit, last))
	if m.Commit > last && n.catchupLogged != last+1 {
		// The leader believes we hold more than we do (our log regressed).
		n.catchupLogged = last + 1
		n.logf(LevelInfo, compOrdering, "Requesting catch-up from seq_no=%d", n.log.conf.seq(last)+1)
	}
	n.send(Message{To: m.From, Type: MsgHeartbeatResp, Index: last, AcceptedTerm: n.acceptedTerm, Repair: n.repairToken})
	n.maybeRepaired()
}

// resetElectionTimer: the leader was heard. A provisional leader lower than
// this node does not count (formation: this node will take over).
func (n *Node) resetElectionTimer() {
	if !n.formationTakeover() {
		n.electionElapsed = 0
	}
}

// appResp answers the leader; it always carries this log's real last index
// (and repair token), so the leader notices a log that regressed.
func (n *Node) appResp(m Message) {
	m.To, m.Type = n.lead, MsgAppResp
	m.AcceptedTerm, m.LastIndex, m.Repair = n.acceptedTerm, n.log.lastIndex(), n.repairToken
	n.send(m)
}

func (n *Node) handleAppend(m Message) {
	n.resetElectionTimer()
	n.phase = phaseFollow
	n.noteRepair(m)
	if last := n.log.lastIndex(); m.Commit > last && n.catchupTerm != n.term {
		// First contact with this term's leader (a rejoin, a failover)
		// and it has committed what this log lacks: say where catch-up
		// starts, once, as the guide shows it.
		n.catchupTerm, n.catchupLogged = n.term, last+1
		n.logf(LevelInfo, compOrdering, "Requesting catch-up from seq_no=%d", n.log.conf.seq(last)+1)
	}
	prev, prevTerm, ents := m.Index, m.LogTerm, m.Entries
	unsynced := n.acceptedTerm < n.term
	if unsynced {
		k := len(ents)
		for k > 0 && ents[k-1].Index > m.SyncIndex {
			k--
		}
		ents = ents[:k]
	}
	if m.Reset && !n.log.matchesAt(prev, prevTerm) {
		switch {
		case len(ents) > 0 && n.log.matchTerm(ents[0].Index, ents[0].Term):
			// We hold the leader's first entry, hence (log matching)
			// everything before it: no need to restart.
			prev, prevTerm, ents = ents[0].Index, ents[0].Term, ents[1:]
		case prev > m.Commit:
			n.logf(LevelError, compStorage, "Ignored a log restart at seq_no=%d from node_%d: beyond its commit index %d",
				prev+1, m.From, m.Commit)
			return
		default:
			n.resetLog(prev, prevTerm, m.From, m.Conf)
		}
	}
	// (The committed prefix is skipped: it is the same everywhere.)
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
	n.appResp(Message{Index: lastNew})
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
			n.logf(LevelInfo, compOrdering, "Requesting catch-up from seq_no=%d", n.log.conf.seq(last)+1)
		}
	}
	hint, hintTerm := n.log.findConflictByTerm(min(m.Index, last), m.LogTerm)
	n.appResp(Message{Index: m.Index, Reject: true, RejectHint: hint, LogTerm: hintTerm})
}

// resetLog discards this node's log and restarts it after index (term 0:
// unknown), because from (the leader, or the log a new leader fetches)
// no longer holds the entries this log would need (retention). Entries up
// to index are committed, so nothing committed is lost; they are simply
// not delivered here.
func (n *Node) resetLog(index, term uint64, from NodeID, cs *ConfState) {
	if old := n.log.lastIndex(); old > index && n.mustReach != math.MaxUint64 {
		if t, ok := n.log.term(index); !ok || term == 0 || t == term {
			// Entries after index may be ones this node acknowledged (we
			// cannot tell whether they diverge): it is not trusted in
			// elections until it holds that much again.
			n.mustReach = max(n.mustReach, old)
		}
	}
	n.logf(LevelWarn, compStorage, "Restarting the log at seq_no=%d: node_%d no longer holds what this log lacks (retention); seq_no<=%d will not be delivered here",
		index+1, from, index)
	// The sender's committed configuration comes along (Message.Conf):
	// the membership entries before index are gone with the log. If it
	// was committed after index, it is in force here a little early,
	// which is safe: it is committed, so every majority a node could
	// count under the one before intersects every majority of it.
	n.log.resetTo(index, term, *cs)
	n.catchupLogged = 0
	// A pending proposal may have committed before index, unseen here:
	// re-forwarding it could sequence it twice, and a later commit of its
	// origin would report it dropped although it was delivered. Stop
	// tracking them; the caller answers those that commit after index and
	// times out the rest.
	n.fwd.untrackAll()
}

func (n *Node) holdBack(m Message) {
	if len(m.Entries) == 0 {
		return
	}
	n.logf(LevelDebug, compOrdering, "Buffered out-of-order message seq_no=%d (expected %d)",
		n.log.conf.seq(m.Entries[0].Index), n.log.conf.seq(n.log.lastIndex())+1)
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
			if len(h.Entries) > 0 && h.Entries[len(h.Entries)-1].Index > n.log.lastIndex() {
				n.logf(LevelDebug, compOrdering, "Delivering seq_no=%d from buffer", n.log.conf.seq(max(h.Entries[0].Index, n.log.lastIndex()+1)))
			}
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
	if !n.log.clean() || n.log.stableIndex() < n.pendingSyncIndex {
		return
	}
	n.acceptedTerm = n.term
	n.pendingSync = 0
	if n.mustReach > 0 && n.mustReach != math.MaxUint64 {
		// A log that synced with a newer term than it had accepted holds
		// that term's history, which has every committed entry: what it
		// lost is either there or was never committed. (Not so for a node
		// that lost its hard state: it may have acknowledged entries of
		// this very term beyond the history; see maybeRepaired.)
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
		n.appResp(Message{Index: n.pendingSyncIndex})
	}
}

// noteRepair records the repair target the leader echoed for this
// incarnation's token.
func (n *Node) noteRepair(m Message) {
	if m.Repair != 0 && m.Repair == n.repairToken {
		n.repairFloor, n.repairTerm, n.repairLead = m.LastIndex, m.Term, m.From
	}
}

// maybeRepaired clears MustReach once the log holds, durably and synced
// with the leader of its AcceptedTerm, everything it may have acknowledged
// to that leader: up to MustReach, the old last index (the entries it lost
// are back, from their source), or, when that is unknown, up to the
// leader's last index when it first heard from this incarnation.
//
// Why the latter is safe (the disk, hard state included, was replaced):
// acknowledgements of the previous incarnation to this leader were for
// entries the leader had sent, so at or below its last index at any later
// time, in particular when it first saw this incarnation's token (a
// random value no earlier message carries; acknowledgements still in
// flight cannot exceed it either). Its acknowledgements to earlier leaders
// concern entries that this term's history holds if they committed. The
// leader's commit index would not do: an acknowledgement in flight can
// still raise it past what the follower was told. What no protocol can
// recover is a forgotten vote or term, so a node whose hard state was lost
// must stay down until every leader and coordinator it may have
// acknowledged has stepped down or lost (2×ElectionTicks, check quorum);
// once repaired it records the current leader as its vote, so it
// acknowledges no rival in the term it rejoined.
func (n *Node) maybeRepaired() {
	if n.mustReach == 0 || n.acceptedTerm != n.term || n.role != Follower || n.lead == 0 || !n.log.clean() {
		return
	}
	target := n.mustReach
	if target == math.MaxUint64 {
		if n.repairTerm != n.term || n.repairLead != n.lead {
			return
		}
		target = n.repairFloor
	}
	if n.log.stableIndex() >= target {
		n.logf(LevelInfo, compStorage, "Log repaired up to seq_no=%d", target)
		n.mustReach = 0
		n.repairToken = 0
		if n.vote == 0 {
			n.vote = n.lead
		}
	}
}
