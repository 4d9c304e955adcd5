package clients_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients"
)

// startExampleNode runs a one-node ordo broker in this process for the
// examples and returns its address; yours runs elsewhere (`ordo node`).
func startExampleNode() (addr string, stop func()) {
	dir, err := os.MkdirTemp("", "ordo-example-")
	if err != nil {
		panic(err)
	}
	srv, err := broker.New(broker.Config{ID: 1, DataDir: dir})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return ln.Addr().String(), func() { srv.Close(); <-done; os.RemoveAll(dir) }
}

// Publishing: PUBLISH returns once the message is committed (durable on
// a majority of the cluster). Name is recorded as the sender.
func ExampleClient_Publish() {
	addr, stop := startExampleNode()
	defer stop()

	c := clients.NewWithOptions(addr, clients.Options{Name: "client_101"})
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Publish(ctx, "chat", "Hello from client 101"); err != nil {
		fmt.Println("publish:", err)
		return
	}
	st, _ := c.Status(ctx)
	fmt.Println("role:", st["role"], "last_seq:", st["last_seq"])
	// Output: role: leader last_seq: 1
}

// Subscribing with resume: Follow delivers the history and then new
// messages; a consumer that stops keeps the last seq it handled and
// resumes after it, missing nothing and seeing nothing twice.
func ExampleClient_Follow() {
	addr, stop := startExampleNode()
	defer stop()

	c := clients.NewWithOptions(addr, clients.Options{Name: "client_101"})
	defer c.Close()
	ctx := context.Background()
	for _, m := range []string{"one", "two", "three"} {
		c.Publish(ctx, "chat", m)
	}

	// Read two messages, then stop (as if the consumer went away).
	var last uint64
	errEnough := errors.New("enough for now")
	c.Follow(ctx, "chat", 0, func(m clients.Message) error {
		fmt.Printf("[seq=%d] %s: %s\n", m.Seq, m.Sender, m.Payload)
		last = m.Seq
		if m.Seq == 2 {
			return errEnough
		}
		return nil
	})

	// Later: resume after the last seq handled.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.Follow(fctx, "chat", last, func(m clients.Message) error {
		fmt.Printf("resumed: [seq=%d] %s: %s\n", m.Seq, m.Sender, m.Payload)
		cancel() // one is all this example waits for
		return nil
	})
	// Output:
	// [seq=1] client_101: one
	// [seq=2] client_101: two
	// resumed: [seq=3] client_101: three
}

// Failover across addresses: a Failover uses one node at a time and
// moves to the next address when its node cannot be reached. Here the
// first address has no node behind it, as if that node had died.
func ExampleFailover() {
	addr, stop := startExampleNode()
	defer stop()
	dead := "127.0.0.1:1" // nothing listens there

	fo := clients.NewFailover([]string{dead, addr}, clients.Options{Name: "client_102"}, func(e clients.Event) {
		switch {
		case e.Kind == clients.Lost && e.Addr == dead:
			fmt.Println("the first node is unreachable: moving to the next")
		case e.Kind == clients.Connected:
			fmt.Println("following from the node at the second address, after seq", e.After)
		}
	})
	defer fo.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A publish that certainly did not reach a node is retried on the
	// next one; one that may have been delivered is not (it could
	// appear twice) and returns its error.
	if _, err := fo.Publish(ctx, "chat", "Hello despite a dead node"); err != nil {
		fmt.Println("publish:", err)
		return
	}
	fo.Follow(ctx, "chat", 0, func(m clients.Message) error {
		fmt.Printf("[seq=%d] %s: %s\n", m.Seq, m.Sender, m.Payload)
		cancel()
		return nil
	})
	// Output:
	// the first node is unreachable: moving to the next
	// following from the node at the second address, after seq 0
	// [seq=1] client_102: Hello despite a dead node
}
