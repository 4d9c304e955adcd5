package replica

import (
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

// handleReady performs the caller's duties of consensus/api.go, with
// persistence beside the loop: it sends what may leave at once, hands the
// rest of the Ready to the storage goroutine, and keeps ticking and
// stepping the core meanwhile. One Ready is in flight at a time; what the
// core produces meanwhile (more proposals: group commit) goes into the
// next.
func (r *Replica) handleReady() {
	for r.inflight == nil && r.broken == nil && r.core.HasReady() {
		rd := r.core.Ready()
		r.send(rd.Messages)
		if confChanges(&rd) {
			// Links to a member added (or away from one removed) as soon
			// as the change is in the log: that is when it takes effect.
			r.updateStatus()
			r.updateConf()
			r.refreshPeers()
		}
		if rd.HardState == nil && rd.ConfState == nil && rd.TruncateFrom == 0 && rd.ResetLog == 0 && len(rd.Entries) == 0 {
			r.finishReady(&rd)
			continue
		}
		r.inflight = &rd
		r.dispatch(&rd)
		if len(rd.Committed) > 0 && rd.ResetLog == 0 && rd.TruncateFrom == 0 && rd.ConfState == nil {
			// The core hands out only committed entries this node has
			// already made durable (never this Ready's own): apply them
			// while the new entries are written, instead of after. The
			// publishes they answer need not wait for the next batch's
			// fsync (a reply waited for two fsyncs, a follower's for
			// one more). Log changes (truncation, reset, a new
			// configuration) keep the documented order.
			r.updateStatus() // (STATUS never lags a reply)
			r.apply(rd.Committed)
			r.appliedEarly = true
		}
	}
}

// onPersisted finishes the Ready in flight once it is durable.
func (r *Replica) onPersisted(err error) {
	rd := r.inflight
	r.inflight = nil
	if err != nil {
		r.appliedEarly = false
		r.storageFailed(err)
		return
	}
	r.finishReady(rd)
}

// finishReady does what must wait until the Ready is durable: send the
// messages that claim it, apply what is committed, advance the core.
func (r *Replica) finishReady(rd *consensus.Ready) {
	r.send(rd.MessagesAfterPersist)
	if rd.SoftState != nil && rd.SoftState.Lead == 0 {
		r.leaderLost(r.now())
	}
	if rd.SoftState != nil && rd.SoftState.Lead != 0 && rd.SoftState.Lead != r.lastLead {
		r.lastLead = rd.SoftState.Lead
		r.stats.LeaderChanges.Add(1)
	}
	if len(rd.Committed) > 0 || rd.SoftState != nil || rd.HardState != nil {
		// STATUS must never lag a reply a client has already seen (nor a
		// change of role or term); the rest refreshes every tick period.
		r.updateStatus()
	}
	if rd.SoftState != nil {
		r.refreshPeers() // a new leader may not be linked yet (a joiner's)
	}
	if r.appliedEarly {
		r.appliedEarly = false
	} else {
		r.apply(rd.Committed)
	}
	for _, p := range rd.Dropped {
		if w := r.waiting[p.ReqID]; w != nil && p.Origin == r.id {
			delete(r.waiting, p.ReqID)
			r.fail(w, ErrNotSequenced)
		}
	}
	r.core.Advance(*rd)
}

func (r *Replica) send(msgs []consensus.Message) {
	if r.transport != nil && len(msgs) > 0 {
		r.transport.Send(msgs)
	}
}

// persist makes a Ready's hard state and log changes durable, in the order
// consensus/api.go requires. It runs on the storage goroutine.
func (r *Replica) persist(rd *consensus.Ready) error {
	// Acked claims entries this node holds; a restart that finds its log
	// shorter takes the difference for lost acknowledged entries and will
	// not sequence without them. So a rise of Acked covering this Ready's
	// own entries is written only once they are durable (after Append's
	// fsync, still before any acknowledgement leaves): written first, a
	// crash losing the unsynced entries left every node that held them
	// "missing" an entry nobody ever had, and the cluster halted for good
	// (runtime simulation seed 7638).
	h, raised := rd.HardState, (*consensus.HardState)(nil)
	if h != nil && len(rd.Entries) > 0 {
		r.stateMu.Lock()
		old := r.hs
		r.stateMu.Unlock()
		if h.Acked > old.Acked {
			early := *h
			early.Acked, early.AckedTerm, early.AckedTermStart, early.AckedPrev = old.Acked, old.AckedTerm, old.AckedTermStart, old.AckedPrev
			h, raised = &early, rd.HardState
		}
	}
	if h != nil || rd.ConfState != nil {
		if err := r.saveHardState(h, rd.ConfState); err != nil {
			return err
		}
	}
	if rd.TruncateFrom > 0 {
		if err := r.Store().TruncateFrom(rd.TruncateFrom); err != nil {
			return err
		}
	}
	if rd.ResetLog > 0 {
		if err := r.resetLog(rd.ResetLog, rd.ResetLogTerm); err != nil {
			return err
		}
	}
	if len(rd.Entries) > 0 {
		start := time.Now()
		if err := r.Store().Append(rd.Entries); err != nil {
			return err
		}
		r.stats.LogWrites.Add(1)
		r.stats.LogEntriesWritten.Add(int64(len(rd.Entries)))
		took := time.Since(start)
		r.stats.LogWriteNanos.Add(int64(took))
		if o := r.cfg.Observer; o != nil {
			o.LogWritten(len(rd.Entries), took)
		}
	}
	if raised != nil {
		return r.saveHardState(raised, nil)
	}
	return nil
}

// saveHardState persists the core's hard state and committed
// configuration (either may be nil). Term, vote, accepted term, MustReach
// and the configuration must be durable before any message that depends
// on them leaves; a commit-only change is written without fsync and at
// most every 100ms: it only lets a restarted node index its committed
// history sooner, and if it is stale the leader re-sends it.
func (r *Replica) saveHardState(h *consensus.HardState, cs *consensus.ConfState) error {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	hs := r.hs
	if h != nil {
		hs = hs.WithCore(*h)
	}
	// A fall of Acked (the log was truncated) is synced too: were the
	// truncation durable and the lower Acked not, a restart would count
	// the truncated positions as held ones it lost, and a leader would
	// wait for copies of entries nobody has.
	critical := hs.Term != r.hs.Term || hs.Vote != r.hs.Vote || hs.AcceptedTerm != r.hs.AcceptedTerm || hs.MustReach != r.hs.MustReach ||
		hs.Acked < r.hs.Acked
	if cs != nil {
		hs.Conf, critical = cs, true
		if cs.IsMember(r.id) {
			hs.Joining = false
		}
	}
	// A rise of Acked (how far the log reaches) must be written, though
	// not fsynced, before the acknowledgements of this Ready leave: a
	// restart that finds the log shorter then knows it lost an
	// acknowledged tail (consensus.HardState.Acked).
	if !critical && hs.Commit >= r.hs.Commit && r.now().Sub(r.hsSaved) <= 100*time.Millisecond {
		if hs.Acked > r.hs.Acked {
			// Only the mark: one small in-place write (store/ackedmark.go).
			if err := r.disk.SaveAcked(hs.Mark()); err != nil {
				return err
			}
			r.hs = r.hs.WithMark(hs.Mark())
		}
		r.hsLagging = &hs // saved later (flushState), not dropped
		return nil
	}
	if err := r.disk.SaveState(hs, critical && !r.cfg.NoSync); err != nil {
		return err
	}
	r.hs, r.hsSaved, r.hsLagging = hs, r.now(), nil
	return nil
}

// flushState writes a commit index that saveHardState held back (it
// rate-limits commit-only changes), so the state file does not stay
// behind for good: every second while idle, and at shutdown. Only when
// no Ready is being persisted (the storage goroutine writes the file).
func (r *Replica) flushState() {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if hs := r.hsLagging; hs != nil {
		hs.BaseIndex, hs.BaseTerm, hs.ClusterID, hs.Joining, hs.Conf = r.hs.BaseIndex, r.hs.BaseTerm, r.hs.ClusterID, r.hs.Joining, r.hs.Conf
		*hs = hs.WithMark(r.hs.Mark()) // (the mark may have risen since)
		if r.disk.SaveState(*hs, false) == nil {
			r.hs, r.hsSaved, r.hsLagging = *hs, r.now(), nil
		}
	}
}

// saveState replaces the whole state file content.
func (r *Replica) saveState(hs store.DiskState, sync bool) error {
	if err := r.disk.SaveState(hs, sync && !r.cfg.NoSync); err != nil {
		return err
	}
	r.hs = hs
	return nil
}

// resetLog restarts the log empty at next because the leader no longer
// holds the entries this node lacks (retention): the boundary term is
// recorded first, then the log is reset (atomically, by the wal).
func (r *Replica) resetLog(next, prevTerm uint64) error {
	r.log.Logf(logging.Warn, "storage", "Leader no longer holds seq_no<%d (retention): restarting the log at seq_no=%d", next, next)
	r.stateMu.Lock()
	hs := r.hs
	hs.BaseIndex, hs.BaseTerm = next-1, prevTerm
	err := r.saveState(hs, true)
	r.stateMu.Unlock()
	if err != nil {
		return err
	}
	return r.Store().ResetTo(next, prevTerm)
}

// apply indexes committed entries, delivers them in order and answers
// local publishers.
func (r *Replica) apply(es []consensus.Entry) {
	if len(es) == 0 {
		return
	}
	debug := r.log.Enabled(logging.Debug)
	// One allocation for the batch's messages (not one each); the
	// pointer and entry slices are the loop's, reused batch after batch
	// (neither the store's index nor the Applier keeps them).
	slab := make([]store.Message, 0, len(es))
	ms, origin := r.applyMs[:0], r.applyEs[:0]
	for i := range es {
		e := &es[i]
		if e.Type == consensus.EntryMembership {
			r.applyMembership(e)
			continue
		}
		if e.Type != consensus.EntryNormal {
			continue
		}
		slab = append(slab, store.Message{Seq: e.Seq, TimeMs: e.Time})
		m := &slab[len(slab)-1]
		if err := store.DecodeMessage(e.Data, m); err != nil {
			slab = slab[:len(slab)-1]
			r.log.WithSeq(e.Seq).Logf(logging.Error, "ordering", "Skipping undecodable entry seq_no=%d: %v", e.Seq, err)
			continue
		}
		ms = append(ms, m)
		origin = append(origin, e)
	}
	defer func() {
		clear(ms) // (let the messages go)
		clear(origin)
		r.applyMs, r.applyEs = ms[:0], origin[:0]
	}()
	// Index first: a client that has its PUBLISH reply, or a subscriber
	// that has the message, must find it in XRANGE/XREAD right away.
	st := r.Store()
	st.Index(ms)
	st.SetApplied(es[len(es)-1].Index)
	obs := r.cfg.Observer
	var now time.Time // one clock read for the batch's commit latencies
	if obs != nil && len(r.waiting) > 0 {
		now = r.now()
	}
	if debug {
		for _, e := range origin {
			r.log.WithSeq(e.Seq).Logf(logging.Debug, "ordering", "Delivering seq_no=%d", e.Seq)
		}
	}
	// The whole batch is delivered before any of its publishers is
	// answered: a publisher's reply has its place in its output reserved
	// when the command was read, so answering a little later changes no
	// order anyone sees.
	if cap(r.receivers) < len(ms) {
		r.receivers = make([]int, len(ms))
	}
	receivers := r.receivers[:len(ms)]
	clear(receivers)
	if ba, ok := r.app.(BatchApplier); ok {
		ba.DeliverBatch(ms, receivers)
	} else {
		for i, m := range ms {
			receivers[i] = r.app.Deliver(m)
		}
	}
	delivered := 0
	for i := range ms {
		e := origin[i]
		delivered += receivers[i]
		if e.Origin == r.id {
			if p := r.waiting[e.ReqID]; p != nil {
				delete(r.waiting, e.ReqID)
				r.stats.PublishesAcked.Add(1)
				if obs != nil {
					obs.PublishCommitted(now.Sub(p.accepted))
				}
				p.done.PublishDone(Result{Receivers: receivers[i]})
			}
		}
	}
	r.stats.MessagesApplied.Add(int64(len(ms)))
	r.stats.Deliveries.Add(int64(delivered))
}
