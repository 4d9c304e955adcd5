package replica

import (
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
)

// storageFailed stops the node's participation after a failed write or
// fsync: nothing unpersisted is acknowledged, publishes fail with a clear
// error, and the log is reopened (as after a crash) once it works again.
func (r *Replica) storageFailed(err error) {
	r.log.Logf(logging.Error, "storage", "Log write failed: %v; refusing publishes until the log can be reopened", err)
	r.broken = err
	r.failAll(&StorageError{err})
	r.updateStatus()
}

// recover reopens the log after a storage failure, as after a crash.
func (r *Replica) recover() {
	old := r.Store()
	old.Close()
	if err := r.open(); err != nil {
		r.log.Logf(logging.Warn, "storage", "Log still unusable: %v", err)
		r.storeP.Store(old)
		return
	}
	r.broken = nil
	r.updateStatus()
	r.log.Logf(logging.Info, "storage", "Log reopened after failure; resuming")
}

// retain drops the oldest log segments beyond the retention limits, but
// never an entry that is not yet committed and on every active member.
func (r *Replica) retain(now time.Time) {
	status := r.core.Status()
	keep := status.Commit + 1
	for _, m := range status.Members {
		if !m.Self && m.Active && m.Match+1 < keep {
			keep = m.Match + 1
		}
	}
	st := r.Store()
	// Keep entries younger than twice the publish timeout: a leader that
	// restarts learns which publishes it already holds from its log, so a
	// retry of one it no longer held would be sequenced twice.
	if young := st.FirstSince(now.Add(-2 * r.cfg.PublishTimeout).UnixMilli()); young < keep {
		keep = young
	}
	before := st.FirstIndex()
	first, err := st.Retain(now, keep)
	if err != nil {
		r.log.Logf(logging.Warn, "storage", "Retention failed: %v", err)
		return
	}
	if first > before {
		r.log.Logf(logging.Info, "storage", "Retention dropped seq_no %d..%d", st.SeqOf(before), st.SeqOf(first-1))
		r.stateMu.Lock()
		hs := r.hs
		hs.BaseIndex, hs.BaseTerm = st.Base()
		r.saveState(hs, false)
		r.stateMu.Unlock()
	}
}
