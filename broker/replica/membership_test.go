package replica

import (
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

func openOn(t *testing.T, d *store.MemDisk, cfg Config) *Replica {
	t.Helper()
	cfg.Disk = d
	cfg.HeartbeatInterval, cfg.LeaderTimeout, cfg.PublishTimeout = 100*time.Millisecond, 500*time.Millisecond, time.Second
	r, err := Open(cfg, applierFunc(func(*store.Message) int { return 0 }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })
	return r
}

type applierFunc func(*store.Message) int

func (f applierFunc) Deliver(m *store.Message) int { return f(m) }

// How a start enters a cluster, and where its cluster id comes from.
func TestBootstrapRules(t *testing.T) {
	// Alone, empty: a new cluster with a random id, kept across restarts;
	// its address is in the first configuration (joiners learn it there).
	d := store.NewMemDisk()
	r := openOn(t, d, Config{ID: 1, Addr: "127.0.0.1:7001"})
	if inForce, _ := r.core.Membership(); inForce.Addrs[1] != "127.0.0.1:7001" {
		t.Fatalf("founder's configuration lacks its address: %+v", inForce)
	}
	id := r.ClusterID()
	if len(id) != 16 || r.joining() {
		t.Fatalf("lone node: cluster id %q, joining %v", id, r.joining())
	}
	r.Stop()
	if r = openOn(t, d, Config{ID: 1}); r.ClusterID() != id {
		t.Fatalf("cluster id changed across a restart: %q -> %q", id, r.ClusterID())
	}
	if other := openOn(t, store.NewMemDisk(), Config{ID: 1}); other.ClusterID() == id {
		t.Fatal("two new clusters drew the same id")
	}

	// Static members all derive one id, without talking.
	a := openOn(t, store.NewMemDisk(), Config{ID: 1, Members: []uint64{1, 2, 3}})
	b := openOn(t, store.NewMemDisk(), Config{ID: 3, Members: []uint64{3, 1, 2}})
	if a.ClusterID() == "" || a.ClusterID() != b.ClusterID() {
		t.Fatalf("static members disagree: %q vs %q", a.ClusterID(), b.ClusterID())
	}

	// Empty with a seed: joining, no id until the JOIN_ACK; a restart
	// before it joins again even without --seed.
	d = store.NewMemDisk()
	r = openOn(t, d, Config{ID: 2, Seeds: map[uint64]string{1: "127.0.0.1:1"}})
	if !r.joining() || r.ClusterID() != "" {
		t.Fatalf("joiner: id %q, joining %v", r.ClusterID(), r.joining())
	}
	r.Stop()
	if r = openOn(t, d, Config{ID: 2}); !r.joining() {
		t.Fatal("a joiner restarted without --seed formed a cluster of its own")
	}
	r.Stop()

	// A member whose configuration is on disk but whose JOIN_ACK never
	// came asks again rather than drawing an id of its own.
	hs, _ := d.LoadState()
	hs.Joining = false
	hs.Conf = &consensus.ConfState{Voters: []consensus.NodeID{1, 2}, Addrs: map[consensus.NodeID]string{1: "127.0.0.1:1"}}
	if err := d.SaveState(hs, true); err != nil {
		t.Fatal(err)
	}
	r = openOn(t, d, Config{ID: 2})
	if r.ClusterID() != "" || !r.joining() {
		t.Fatalf("member without an id drew %q", r.ClusterID())
	}
	if got := r.Addr(1); got != "127.0.0.1:1" {
		t.Fatalf("address of member 1 from the stored configuration: %q", got)
	}
}

// The commit index a node saves without fsync, rate-limited, is written
// at shutdown rather than dropped: the state file must not stay behind
// (restart indexing and `ordo log` read it).
func TestCommitIndexSavedAtShutdown(t *testing.T) {
	d := store.NewMemDisk()
	r := openOn(t, d, Config{ID: 1})
	r.Start(nil)
	r.WaitReady(5 * time.Second)
	for i := 0; i < 3; i++ {
		done := make(chan Result, 1)
		r.Publish(store.Message{Channel: []byte("c"), Payload: []byte{byte(i)}}, func(res Result) { done <- res })
		if res := <-done; res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if hs, _ := d.LoadState(); hs.Commit != 3 {
		t.Fatalf("state file commit %d after 3 acknowledged publishes and a clean stop", hs.Commit)
	}
}
