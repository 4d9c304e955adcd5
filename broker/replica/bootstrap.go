package replica

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

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
