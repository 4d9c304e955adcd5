package bench

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A short run against a real one-node ordo: every acknowledged publish is
// delivered to every subscriber, in order.
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
	res, err := Run(context.Background(), Options{
		Addrs: []string{ln.Addr().String()}, Clients: 4, Pipeline: 4, Subscribers: 2,
		Size: 64, Duration: 500 * time.Millisecond, Drain: testkit.Scale(10 * time.Second),
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
	var b bytes.Buffer
	res.Format(&b)
	if !strings.Contains(b.String(), "msg/s") {
		t.Fatalf("format: %s", b.String())
	}
}
