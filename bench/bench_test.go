package bench

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A short run against a real one-node ordo: every acknowledged publish is
// delivered to every subscriber, in order, and the per-interval samples
// account for every message.
func TestRunAgainstOrdo(t *testing.T) {
	srv, err := broker.New(broker.Config{ID: 1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	// A one-node broker elects itself; until then PUBLISH fails.
	testkit.Eventually(t, 10*time.Second, func() bool {
		st, err := testkit.Status(ln.Addr().String())
		return err == nil && st["role"] == "leader"
	}, "one-node broker did not become leader")
	var seen []Sample
	res, err := Run(context.Background(), Options{
		Addrs: []string{ln.Addr().String()}, Clients: 4, Pipeline: 4, Subscribers: 2,
		Size: 64, Duration: 500 * time.Millisecond, Drain: testkit.Scale(10 * time.Second),
		Interval: 100 * time.Millisecond, OnSample: func(s Sample) { seen = append(seen, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published == 0 || res.Errors != 0 {
		t.Fatalf("published %d, errors %d (%s)", res.Published, res.Errors, res.FirstError)
	}
	if res.Delivered != res.Expected || res.OrderViolated != 0 {
		t.Fatalf("delivered %d of %d, %d order violations", res.Delivered, res.Expected, res.OrderViolated)
	}
	// The samples cut the run without losing or repeating a message, and
	// the callback saw each of them.
	if len(res.Samples) < 2 || len(seen) != len(res.Samples) {
		t.Fatalf("%d samples, %d seen by OnSample", len(res.Samples), len(seen))
	}
	var pub, del int64
	for i, s := range res.Samples {
		pub += s.Published
		del += s.Delivered
		if s.Span <= 0 || (i > 0 && s.At <= res.Samples[i-1].At) {
			t.Fatalf("sample %d: at %v span %v", i, s.At, s.Span)
		}
	}
	if pub != res.Published || del != res.Delivered {
		t.Fatalf("samples add up to %d published, %d delivered; run: %d, %d", pub, del, res.Published, res.Delivered)
	}
	if res.PublishRate <= 0 || res.PublishMBps <= 0 || res.DeliveryRate <= 0 {
		t.Fatalf("rates: %+v", res)
	}
	if !(res.AckP50 > 0 && res.AckP50 <= res.AckP90 && res.AckP90 <= res.AckP99 && res.AckP99 <= res.AckP999 && res.AckP999 <= res.AckMax) {
		t.Fatalf("ack percentiles out of order: %v %v %v %v %v", res.AckP50, res.AckP90, res.AckP99, res.AckP999, res.AckMax)
	}
	if !(res.DeliveryP50 > 0 && res.DeliveryP50 <= res.DeliveryP999 && res.DeliveryP999 <= res.DeliveryMax) {
		t.Fatalf("delivery percentiles: %v %v %v", res.DeliveryP50, res.DeliveryP999, res.DeliveryMax)
	}
}
