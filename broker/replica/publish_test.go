package replica

import (
	"testing"

	"github.com/ordo-broker/ordo/broker/store"
)

// A publish is answered as soon as it is committed and durable here, not
// after the next batch's write: committed entries are applied while the
// following Ready is being persisted. (Before, every reply waited for one
// more fsync than its own.)
func TestCommittedAppliedWhileNextBatchPersists(t *testing.T) {
	s := newSim(t, 1, 1, false)
	nd := s.nodes[0]
	finish := func() { // complete the Ready in flight
		rd := nd.inflight
		nd.inflight = nil
		nd.r.onPersisted(nd.r.persist(rd))
		nd.r.handleReady()
	}
	for i := 0; nd.r.core.Status().Leader == 0 || nd.inflight != nil; i++ {
		if i > 10000 {
			t.Fatal("the lone node never became a settled leader")
		}
		if nd.inflight != nil {
			finish()
			continue
		}
		s.now = s.now.Add(tick)
		nd.r.onTick(s.now)
		nd.r.handleReady()
	}
	acked := map[string]error{}
	pub := func(p string) {
		nd.r.propose([]*pubReq{{
			Msg:  store.Message{Channel: []byte("c"), Payload: []byte(p)},
			done: funcWaiter(func(r Result) { acked[p] = r.Err }),
		}})
	}
	pub("a")
	nd.r.handleReady() // Ready 1: a's entry, written by the storage goroutine
	if nd.inflight == nil || len(nd.inflight.Entries) != 1 {
		t.Fatalf("a's entry is not being persisted: %+v", nd.inflight)
	}
	pub("b") // waits for Ready 2
	finish() // Ready 1 durable: a commits; Ready 2 (b's entry) is handed out
	if nd.inflight == nil || len(nd.inflight.Entries) != 1 {
		t.Fatalf("b's entry is not being persisted: %+v", nd.inflight)
	}
	if err, ok := acked["a"]; !ok || err != nil {
		t.Fatalf("a not acknowledged while b's entry is written (ok=%v err=%v)", ok, err)
	}
	if _, ok := acked["b"]; ok {
		t.Fatal("b acknowledged before its entry was durable")
	}
	for i := 0; i < 10 && nd.inflight != nil; i++ {
		finish()
	}
	if err, ok := acked["b"]; !ok || err != nil {
		t.Fatalf("b not acknowledged (ok=%v err=%v)", ok, err)
	}
	if s.failure != "" {
		t.Fatal(s.failure)
	}
}
