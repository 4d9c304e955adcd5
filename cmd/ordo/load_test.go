package main

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// loader publishes from one connection per node until stopped, recording
// what was acknowledged. Its goroutines reconnect on errors: nodes die
// and come back under it.
type loader struct {
	mu    sync.Mutex
	acked map[string]bool
	stop  atomic.Bool
	wg    sync.WaitGroup
	fails atomic.Int64
}

func startLoad(t *testing.T, c *testkit.Cluster, channel string, nodes ...int) *loader {
	l := &loader{acked: map[string]bool{}}
	for _, i := range nodes {
		l.wg.Add(1)
		go func(i int) {
			defer l.wg.Done()
			var r *resp.Conn
			defer func() {
				if r != nil {
					r.Close()
				}
			}()
			for k := 0; !l.stop.Load() && k < 1000000; k++ {
				if r == nil {
					var err error
					if r, err = resp.Dial(c.Addr(i), testkit.Scale(5*time.Second)); err != nil {
						time.Sleep(20 * time.Millisecond) // the node is down: retry, bounded by stop
						continue
					}
				}
				msg := fmt.Sprintf("n%d-%d", i, k)
				v, err := r.Do("PUBLISH", channel, msg)
				if err != nil {
					r.Close()
					r = nil
					continue
				}
				if v.Err() != nil {
					l.fails.Add(1)
					time.Sleep(5 * time.Millisecond) // no leader yet: back off
					continue
				}
				l.mu.Lock()
				l.acked[msg] = true
				l.mu.Unlock()
			}
		}(i)
	}
	return l
}

func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *loader) finish() map[string]bool {
	l.stop.Store(true)
	l.wg.Wait()
	return l.acked
}

func (l *loader) waitCount(t *testing.T, n int) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, func() bool { return l.count() >= n },
		"fewer than %d publishes acknowledged (%d errors)", n, l.fails.Load())
}

// liveSub records what a subscriber connected to one node receives.
type liveSub struct {
	mu   sync.Mutex
	msgs []string
	err  error
	done chan struct{}
}

func subscribe(t *testing.T, addr, channel string) *liveSub {
	t.Helper()
	r := testkit.Dial(t, addr)
	if v := r.Do("SUBSCRIBE", channel); len(v.Array()) != 3 {
		t.Fatalf("subscribe: %+v", v)
	}
	// Deliveries may pause for a whole failover: don't time out reads.
	r.RESP.Timeout = 0
	s := &liveSub{done: make(chan struct{})}
	t.Cleanup(func() { r.Close(); <-s.done })
	go func() {
		defer close(s.done)
		for {
			v, err := r.RESP.Receive()
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			if es := v.Array(); len(es) == 3 {
				s.msgs = append(s.msgs, es[2].String())
			} else {
				s.err = fmt.Errorf("unexpected delivery %+v", v)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// waitFor waits until the subscriber has received exactly the history, in
// order: subscribers miss nothing across failovers and partitions. It
// fails at once when what arrived diverges from the history.
func (s *liveSub) waitFor(t *testing.T, node int, history []string) {
	t.Helper()
	testkit.EventuallyNoError(t, 20*time.Second, func() error {
		s.mu.Lock()
		got, err := slices.Clone(s.msgs), s.err
		s.mu.Unlock()
		for i := range got {
			if i >= len(history) || got[i] != history[i] {
				t.Fatalf("subscriber on node %d: message %d is %q, history has %d entries (got %d)", node, i, got[i], len(history), len(got))
			}
		}
		if err != nil {
			t.Fatalf("subscriber on node %d: %v after %d messages", node, err, len(got))
		}
		if len(got) < len(history) {
			return fmt.Errorf("%d of %d messages", len(got), len(history))
		}
		return nil
	}, "subscriber on node %d", node)
}

func checkAllAcked(t *testing.T, acked map[string]bool, h testkit.History) {
	t.Helper()
	have := map[string]bool{}
	for i, p := range h.Payloads {
		have[p] = true
		if i > 0 && h.Seqs[i] <= h.Seqs[i-1] {
			t.Fatalf("history out of order at %d", i)
		}
	}
	lost := 0
	for m := range acked {
		if !have[m] {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged publish %q lost", m)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged publishes lost", lost, len(acked))
	}
}

// publishN publishes payloads fmt.Sprintf(format, k) for k < n through
// one connection and fails on any error reply.
func publishN(t *testing.T, addr, channel, format string, n int) {
	t.Helper()
	r := testkit.Dial(t, addr)
	for k := 0; k < n; k++ {
		if v := r.Do("PUBLISH", channel, fmt.Sprintf(format, k)); v.Err() != nil {
			t.Fatalf("publish %d on %s: %v", k, addr, v.Err())
		}
	}
}
