package scale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// load is continuous publishing from several peers, one message in
// flight per peer, each with a unique payload "<tag>-p<id>-<n>". It runs
// across a leader kill, so the kill hits publishes in flight: through the
// dying leader (the connection breaks: ambiguous) and through followers
// (their forwards are re-sent to the next leader, or answered "may or may
// not be delivered"). That is where lost or duplicated messages would
// come from, and the ledger records every such attempt for Check.
type load struct {
	stop     chan struct{} // closed: finish the current message, then return
	wg       sync.WaitGroup
	pubs     map[int]*loadPub
	killedAt atomic.Int64 // unix ns of the kill (0: not yet)
	// first is the time from the kill to the first acknowledgement of
	// an attempt sent after it (ns; 0: none yet): only a new leader can
	// commit such a message, so this is the failover as clients see it.
	first atomic.Int64
}

type loadPub struct {
	cancel context.CancelFunc // ends the publisher (its node was killed)
	acked  atomic.Int64       // acknowledged messages
	after  atomic.Int64       // acknowledged messages sent after the kill
	err    error              // why it stopped early, read after wg.Wait
}

// startLoad starts a publisher on each listed peer; none runs longer
// than bound.
func (h *harness) startLoad(ctx context.Context, tag string, ids []int, bound time.Duration) *load {
	lo := &load{stop: make(chan struct{}), pubs: map[int]*loadPub{}}
	for _, id := range ids {
		pctx, cancel := context.WithTimeout(ctx, bound)
		lp := &loadPub{cancel: cancel}
		lo.pubs[id] = lp
		lo.wg.Add(1)
		go func() {
			defer lo.wg.Done()
			defer cancel()
			p := h.publisher(id)
			defer p.close()
			for n := 1; ; n++ {
				select {
				case <-lo.stop:
					return
				default:
				}
				sent, err := p.publish(pctx, h.ledger, h.o.Channel, fmt.Sprintf("%s-p%d-%d", tag, id, n))
				if err != nil {
					lp.err = err
					return
				}
				lp.acked.Add(1)
				if k := lo.killedAt.Load(); k != 0 && sent.UnixNano() > k {
					lp.after.Add(1)
					lo.first.CompareAndSwap(0, time.Now().UnixNano()-k)
				}
			}
		}()
	}
	return lo
}

// killed notes that node id was killed at t: its publisher stops, and
// acknowledgements of attempts sent from now on count as post-kill.
func (lo *load) killed(id int, t time.Time) {
	lo.killedAt.Store(t.UnixNano())
	lo.pubs[id].cancel()
}

// waitAcked waits (bounded) until every listed publisher has at least n
// acknowledged messages, counting all of them or only those sent after
// the kill.
func (lo *load) waitAcked(ctx context.Context, ids []int, n int64, afterKill bool, bound time.Duration) error {
	return poll(ctx, bound, func() error {
		for _, id := range ids {
			lp := lo.pubs[id]
			got := lp.acked.Load()
			if afterKill {
				got = lp.after.Load()
			}
			if got < n {
				return fmt.Errorf("peer %d: %d of %d acknowledged", id, got, n)
			}
		}
		return nil
	})
}

// finish stops the publishers and returns the first error of one of the
// listed ones (the killed leader's publisher fails by design).
func (lo *load) finish(ids []int) error {
	close(lo.stop)
	lo.wg.Wait()
	for _, id := range ids {
		if err := lo.pubs[id].err; err != nil {
			return fmt.Errorf("peer %d: %w", id, err)
		}
	}
	return nil
}

// abort ends every publisher now, abandoning the messages in flight
// (they stay unacknowledged in the ledger): for a step that failed.
func (lo *load) abort() {
	close(lo.stop)
	for _, lp := range lo.pubs {
		lp.cancel()
	}
	lo.wg.Wait()
}

// total is the number of acknowledged messages.
func (lo *load) total() int64 {
	var n int64
	for _, lp := range lo.pubs {
		n += lp.acked.Load()
	}
	return n
}
