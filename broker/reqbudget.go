package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// requestBudget bounds what the requests still arriving on all of a
// node's connections together may make it hold (max_pending_request_bytes).
// A request's cost is what its headers declare (see limitConn): the node
// holds its bytes as they arrive and until the request is complete, so
// many connections that each declare a large request and then send it
// slowly, or never, would otherwise grow memory up to max_clients times
// max_request_size.
//
// Each connection gets freeBytes without asking, so ordinary requests
// never wait behind large ones; what a request declares beyond that is
// reserved here, and a connection whose request does not fit waits, its
// reads paused, until others complete, then is refused after maxWait.
type requestBudget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	changed chan struct{} // closed and replaced whenever bytes are released
	maxWait time.Duration

	waited  atomic.Int64 // requests that had to wait
	refused atomic.Int64 // requests refused after maxWait
}

// A connection's request may declare this much without reserving: the
// largest inline request, more than nearly every command a client sends.
const freeRequestBytes = 64 << 10

// How long a request waits for the budget before it is refused.
const defaultBudgetWait = 10 * time.Second

func newRequestBudget(limit int64) *requestBudget {
	return &requestBudget{limit: limit, changed: make(chan struct{}), maxWait: defaultBudgetWait}
}

func (b *requestBudget) setLimit(limit int64) {
	b.mu.Lock()
	b.limit = limit
	b.notifyLocked()
	b.mu.Unlock()
}

// grow raises a connection's reservation from held to held+n. If that
// does not fit it waits until it does, giving back held meanwhile: a
// waiter holds nothing, so connections that each wait for another's share
// cannot deadlock. A request alone on the node is admitted whatever its
// size (the request limit, not the budget, bounds it). grow returns false
// when cancel is closed or maxWait passes; the connection then holds
// nothing.
func (b *requestBudget) grow(held, n int64, cancel <-chan struct{}) bool {
	if b == nil || n <= 0 {
		return true
	}
	b.mu.Lock()
	if b.used+n <= b.limit || b.used == held {
		b.used += n
		b.mu.Unlock()
		return true
	}
	b.waited.Add(1)
	b.used -= held
	b.notifyLocked()
	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	for {
		if b.used+held+n <= b.limit || b.used == 0 {
			b.used += held + n
			b.mu.Unlock()
			return true
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			b.refused.Add(1)
			return false
		case <-cancel:
			return false
		}
		b.mu.Lock()
	}
}

// release gives back n reserved bytes.
func (b *requestBudget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *requestBudget) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// inUse reports the bytes reserved now.
func (b *requestBudget) inUse() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
