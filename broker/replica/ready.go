package replica

import (
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

// processReady performs the caller's duties of consensus/api.go in order:
// persist hard state, persist entries, send, apply, advance.
func (r *Replica) processReady() {
	for r.core.HasReady() {
		rd := r.core.Ready()
		late := rd.Messages
		if r.transport != nil && rd.HardState == nil && len(rd.Entries) > 0 {
			// A leader's appends may leave before its own fsync (Raft
			// thesis §10.2.1): the core counts the leader in a majority
			// only for entries it has persisted (Advance), so followers
			// fsync in parallel with it. Everything else (acks, votes)
			// waits until this node's state is durable.
			var early []consensus.Message
			early, late = splitEarly(rd.Messages)
			r.transport.Send(early)
		}
		if rd.HardState != nil {
			if err := r.saveHardState(*rd.HardState); err != nil {
				r.storageFailed(err)
				return
			}
		}
		if rd.TruncateFrom > 0 {
			if err := r.Store().TruncateFrom(rd.TruncateFrom); err != nil {
				r.storageFailed(err)
				return
			}
		}
		if rd.ResetLog > 0 {
			if err := r.resetLog(rd.ResetLog, rd.ResetLogTerm); err != nil {
				r.storageFailed(err)
				return
			}
		}
		if len(rd.Entries) > 0 {
			start := time.Now()
			if err := r.Store().Append(rd.Entries); err != nil {
				r.storageFailed(err)
				return
			}
			r.stats.LogWrites.Add(1)
			r.stats.LogEntriesWritten.Add(int64(len(rd.Entries)))
			r.stats.LogWriteNanos.Add(int64(time.Since(start)))
		}
		if r.transport != nil && len(late) > 0 {
			r.transport.Send(late)
		}
		if rd.SoftState != nil && rd.SoftState.Lead == 0 {
			r.leaderLost(time.Now())
		}
		if len(rd.Committed) > 0 {
			// STATUS must never lag a reply a client has already seen.
			r.updateStatus()
		}
		r.apply(rd.Committed)
		for _, p := range rd.Dropped {
			if w := r.waiting[p.ReqID]; w != nil && p.Origin == r.id {
				delete(r.waiting, p.ReqID)
				r.fail(w, ErrNotSequenced)
			}
		}
		r.core.Advance(rd)
	}
	r.updateStatus()
}

// saveHardState persists the core's hard state. Term, vote, accepted term
// and MustReach must be durable before any message that depends on them
// leaves; a commit-only change is written without fsync and at most every
// 100ms: it only lets a restarted node index its committed history sooner,
// and if it is stale the leader re-sends it.
func (r *Replica) saveHardState(h consensus.HardState) error {
	hs := store.FromCore(h)
	hs.BaseIndex, hs.BaseTerm = r.hs.BaseIndex, r.hs.BaseTerm
	critical := hs.Term != r.hs.Term || hs.Vote != r.hs.Vote || hs.AcceptedTerm != r.hs.AcceptedTerm || hs.MustReach != r.hs.MustReach
	if !critical && hs.Commit >= r.hs.Commit && time.Since(r.hsSaved) <= 100*time.Millisecond {
		return nil
	}
	if err := store.SaveState(r.cfg.DataDir, hs, critical && !r.cfg.NoSync); err != nil {
		return err
	}
	r.hs, r.hsSaved = hs, time.Now()
	return nil
}

// resetLog restarts the log empty at next because the leader no longer
// holds the entries this node lacks (retention): the boundary term is
// recorded first, then the log is reset (atomically, by the wal).
func (r *Replica) resetLog(next, prevTerm uint64) error {
	r.log.Logf(logging.Warn, "storage", "Leader no longer holds seq_no<%d (retention): restarting the log at seq_no=%d", next, next)
	hs := r.hs
	hs.BaseIndex, hs.BaseTerm = next-1, prevTerm
	if err := store.SaveState(r.cfg.DataDir, hs, !r.cfg.NoSync); err != nil {
		return err
	}
	r.hs = hs
	return r.Store().ResetTo(next, prevTerm)
}

// splitEarly separates leader-to-follower appends and heartbeats, which
// claim nothing about this node's disk, from the rest.
func splitEarly(msgs []consensus.Message) (early, late []consensus.Message) {
	for _, m := range msgs {
		if m.Type == consensus.MsgApp || m.Type == consensus.MsgHeartbeat {
			early = append(early, m)
		} else {
			late = append(late, m)
		}
	}
	return early, late
}

// apply indexes committed entries, delivers them in order and answers
// local publishers.
func (r *Replica) apply(es []consensus.Entry) {
	if len(es) == 0 {
		return
	}
	debug := r.log.Enabled(logging.Debug)
	ms := make([]*store.Message, 0, len(es))
	origin := make([]*consensus.Entry, 0, len(es))
	for i := range es {
		e := &es[i]
		if e.Type != consensus.EntryNormal {
			continue
		}
		m, err := store.EntryMessage(e)
		if err != nil {
			r.log.Logf(logging.Error, "ordering", "Skipping undecodable entry seq_no=%d: %v", e.Index, err)
			continue
		}
		ms = append(ms, m)
		origin = append(origin, e)
	}
	// Index first: a client that has its PUBLISH reply, or a subscriber
	// that has the message, must find it in XRANGE/XREAD right away.
	st := r.Store()
	st.Index(ms)
	st.SetApplied(es[len(es)-1].Index)
	for i, m := range ms {
		e := origin[i]
		if debug {
			r.log.Logf(logging.Debug, "ordering", "Delivering seq_no=%d", e.Index)
		}
		receivers := r.app.Deliver(m)
		if e.Origin == r.id {
			if p := r.waiting[e.ReqID]; p != nil {
				delete(r.waiting, e.ReqID)
				r.stats.PublishesAcked.Add(1)
				p.done(Result{Receivers: receivers})
			}
		}
	}
	r.stats.MessagesApplied.Add(int64(len(ms)))
}
