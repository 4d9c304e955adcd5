package broker

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ordo-broker/ordo/broker/store"
)

// benchClient is a subscriber with no connection: deliveries pile up in
// its output buffer, which the benchmark empties.
func benchClient() *client {
	srv := &Server{}
	srv.limits.Store(&Limits{})
	c := &client{srv: srv}
	c.out.wake = make(chan struct{}, 1)
	return c
}

// BenchmarkDeliverPatterns: the cost of one publish with n pattern
// subscriptions user:<id>:* (one idle client holds them all), publishing
// to user:<id>:events for ids in [0, 10n): one publish in ten matches one
// pattern, the others none. Before the pattern index this grew linearly
// with n (every pattern was tried); now it should stay nearly flat.
//
//	go test -run XXX -bench DeliverPatterns ./broker
func BenchmarkDeliverPatterns(b *testing.B) {
	for _, n := range []int{0, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("patterns=%d", n), func(b *testing.B) {
			r := newRegistry()
			c := benchClient()
			names := make([][]byte, n)
			for i := range names {
				names[i] = fmt.Appendf(nil, "user:%d:*", i)
			}
			r.subscribe(c, kindPattern, names)
			rng := rand.New(rand.NewPCG(1, 2))
			msgs := make([]*store.Message, 1024)
			payload := make([]byte, 100)
			for i := range msgs {
				ch := fmt.Appendf(nil, "user:%d:events", rng.IntN(10*max(n, 1)))
				msgs[i] = &store.Message{Channel: ch, Payload: payload}
			}
			delivered := 0
			for i := 0; b.Loop(); i++ {
				delivered += r.Deliver(msgs[i%len(msgs)])
				if i%len(msgs) == 0 {
					c.out.mu.Lock()
					c.out.buf = c.out.buf[:0]
					c.out.mu.Unlock()
				}
			}
			b.ReportMetric(float64(delivered)/float64(b.N), "deliveries/op")
		})
	}
}
