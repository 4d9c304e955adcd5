package terminal

import (
	"context"
	"sync"
	"time"
)

// queue is the full-screen terminal's Output: Apps print into it from any
// goroutine, and the screen takes everything pending as one batch at most
// once a frame. The screen never waits for an App, and an App never waits
// for the screen.
type queue struct {
	mu      sync.Mutex
	lines   []line
	dropped int // lines dropped from the queue since the last batch
	status  string
	changed bool // status changed since the last batch
	quit    bool
	wake    chan struct{} // capacity 1: "something is pending"
	last    time.Time     // when the last batch was taken
}

type line struct {
	kind Kind
	text string
}

// batch is what the screen receives: every line printed since the last
// batch, the status bar if it changed, and whether to quit.
type batch struct {
	lines   []line
	dropped int
	status  *string
	quit    bool
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) Print(k Kind, text string) {
	q.mu.Lock()
	q.lines = append(q.lines, line{k, text})
	if n := len(q.lines); n > 2*Scrollback {
		// The screen is far behind: what would scroll out of the
		// scrollback anyway is dropped now, keeping memory bounded.
		drop := n - Scrollback
		q.lines = append(q.lines[:0], q.lines[drop:]...)
		q.dropped += drop
	}
	q.mu.Unlock()
	q.signal()
}

func (q *queue) SetStatus(s string) {
	q.mu.Lock()
	if s != q.status {
		q.status, q.changed = s, true
	}
	q.mu.Unlock()
	q.signal()
}

func (q *queue) Quit() {
	q.mu.Lock()
	q.quit = true
	q.mu.Unlock()
	q.signal()
}

// take waits until something is pending (or ctx ends) and returns it as
// one batch, no sooner than FrameInterval after the previous batch: under
// a flood the screen gets ~30 batches a second, not one per line.
func (q *queue) take(ctx context.Context) batch {
	select {
	case <-q.wake:
	case <-ctx.Done():
		return batch{quit: true}
	}
	q.mu.Lock()
	wait := FrameInterval - time.Since(q.last)
	q.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return batch{quit: true}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	b := batch{lines: q.lines, dropped: q.dropped, quit: q.quit}
	if q.changed {
		s := q.status
		b.status, q.changed = &s, false
	}
	q.lines, q.dropped, q.last = nil, 0, time.Now()
	// Drain a wake-up that arrived meanwhile: this batch holds its lines.
	select {
	case <-q.wake:
	default:
	}
	return b
}
