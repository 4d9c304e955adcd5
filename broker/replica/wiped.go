package replica

import (
	"math"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/peer"
)

// A wiped disk. A static member (--peers) that starts with an empty data
// directory is either part of a new cluster being formed or a member whose
// disk was wiped or replaced. From its own disk it cannot tell; started
// without --rejoin-empty, it used to take part at once as if new, and
// could then help a stale member lead and renumber what only the others
// held. So before it takes part it asks the members (ControlProbe) whether
// the cluster has a history, i.e. whether any of them holds log entries:
//   - one does: this node is a member that lost its data. It proceeds
//     exactly as with --rejoin-empty (no vote until the leader refilled
//     it, after waiting out the votes its old incarnation may have cast).
//   - a majority of the members, itself included, hold nothing: a new
//     cluster; it proceeds normally. (Nothing sequenced: nothing to lose.)
//
// Until one of the two, it waits and asks again. Limitation: a member
// that never received anything and a wiped member together look like a
// majority of a new cluster if the members holding the history are down.

const probeEvery = 100 * time.Millisecond

// answerProbe tells a probing member whether this node's log holds
// anything.
func (r *Replica) answerProbe(reply func(peer.Control)) {
	if reply == nil {
		return
	}
	st := r.Store()
	reply(peer.Control{Type: peer.ControlProbeAck, ID: r.cfg.ID, Cluster: r.ClusterID(),
		History: st != nil && (st.LastIndex() > 0 || st.FirstIndex() > 1)})
}

// probeHistory asks the members until it knows whether this empty node is
// new or lost its data, and in the latter case reopens the log as with
// RejoinEmpty. It runs before the loop; false if the replica was stopped.
func (r *Replica) probeHistory() bool {
	members := map[uint64]bool{}
	for _, id := range r.cfg.Members {
		if id != r.cfg.ID {
			members[id] = true
		}
	}
	empty := map[uint64]bool{}     // members that answered "no history"
	need := (len(members) + 1) / 2 // answers beyond this node's own that make a majority
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	r.log.Logf(logging.Info, "storage", "Empty data directory: asking the members whether this cluster already has a history")
	for {
		for id := range members {
			if !empty[id] {
				r.transport.SendControl(id, peer.Control{Type: peer.ControlProbe, ID: r.cfg.ID, Cluster: r.ClusterID()})
			}
		}
		select {
		case <-r.stopc:
			r.endBeforeRun()
			return false
		case m := <-r.ctl:
			c := m.c
			if c.Type != peer.ControlProbeAck || !members[m.from] || (c.Cluster != "" && c.Cluster != r.ClusterID()) {
				continue // (other requests are retried by their senders)
			}
			if c.History {
				r.log.Logf(logging.Warn, "storage", "This disk is empty but node_%d holds the history of cluster %s: taking this node for a member that lost its data (or a late first start), rejoining as with --rejoin-empty", m.from, r.ClusterID())
				return r.reopenLost()
			}
			empty[m.from] = true
			if len(empty) >= need {
				r.log.Logf(logging.Info, "storage", "A majority of the members hold nothing yet: forming a new cluster")
				return true
			}
		case <-tick.C:
		}
	}
}

// reopenLost rebuilds the core as after a start with RejoinEmpty, and
// persists MustReach first so a crash now cannot forget it.
func (r *Replica) reopenLost() bool {
	r.lostDisk = true
	old := r.Store()
	old.Close()
	if err := r.open(); err != nil {
		r.log.Logf(logging.Error, "storage", "Reopening the log to rejoin failed: %v", err)
		r.endBeforeRun()
		return false
	}
	r.stateMu.Lock()
	hs := r.hs
	hs.MustReach = math.MaxUint64
	err := r.saveState(hs, true)
	r.stateMu.Unlock()
	if err != nil {
		r.log.Logf(logging.Error, "storage", "Saving the state to rejoin failed: %v", err)
		r.endBeforeRun()
		return false
	}
	return true
}

// endBeforeRun ends what run would have ended (the storage goroutine, and
// Stop's wait) when the replica stops before its loop started.
func (r *Replica) endBeforeRun() {
	close(r.jobs)
	close(r.donec)
}
