package bench

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker"
)

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
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server not up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := Run(context.Background(), Options{
		Addrs: []string{ln.Addr().String()}, Clients: 4, Pipeline: 4, Subscribers: 2,
		Size: 64, Duration: 500 * time.Millisecond,
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
