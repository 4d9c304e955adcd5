package clients

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// inProcessCluster runs n nodes (static membership) in this process and
// returns their addresses and a function that stops node i.
func inProcessCluster(t *testing.T, n int) (addrs []string, stop func(i int)) {
	t.Helper()
	var peers []broker.Peer
	ports := make([]int, n)
	for i := range n {
		ports[i] = testkit.FreePort(t)
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])))
		peers = append(peers, broker.Peer{ID: uint64(i + 1), Addr: addrs[i]})
	}
	srvs := make([]*broker.Server, n)
	done := make([]chan struct{}, n)
	for i := range n {
		srv, err := broker.New(broker.Config{ID: uint64(i + 1), Port: ports[i], DataDir: t.TempDir(), Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		srvs[i], done[i] = srv, make(chan struct{})
		go func() { srv.Serve(ln); close(done[i]) }()
	}
	var once = make([]sync.Once, n)
	stop = func(i int) {
		once[i].Do(func() { srvs[i].Close(); <-done[i] })
	}
	t.Cleanup(func() {
		for i := range n {
			stop(i)
		}
	})
	testkit.EventuallyNoError(t, 15*time.Second, func() error {
		st, err := testkit.Status(addrs[n-1])
		if err == nil && st["role"] != "leader" {
			err = fmt.Errorf("node %d is %s", n, st["role"])
		}
		return err
	}, "the highest id never led")
	return addrs, stop
}

// A Follow through a Failover carries on across a node that dies and a
// Connect to another: every message once, in order; Publish moves past a
// dead node.
func TestFailoverFollowsAcrossNodes(t *testing.T) {
	addrs, stop := inProcessCluster(t, 3)
	var mu sync.Mutex
	var events []Event
	fo := NewFailover(addrs, Options{Name: "client_7"}, func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	defer fo.Close()
	pub := New(addrs[2]) // the leader: it stays up
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(30*time.Second))
	defer cancel()

	seqs := make(chan Message, 1000)
	followed := make(chan error, 1)
	go func() {
		followed <- fo.Follow(ctx, "chat", 0, func(m Message) error { seqs <- m; return nil })
	}()
	var got []uint64
	want := 0
	publish := func(n int) {
		t.Helper()
		for k := 0; k < n; k++ {
			if _, err := pub.Publish(ctx, "chat", fmt.Sprintf("m%d", want+k+1)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		want += n
		for len(got) < want {
			select {
			case m := <-seqs:
				if m.Payload != fmt.Sprintf("m%d", m.Seq) {
					t.Fatalf("seq %d carries %q", m.Seq, m.Payload)
				}
				got = append(got, m.Seq)
			case <-ctx.Done():
				t.Fatalf("followed %d of %d messages", len(got), want)
			}
		}
	}
	publish(20)
	stop(0) // the node Follow uses
	publish(20)
	if fo.Addr() != addrs[1] {
		t.Fatalf("the failover uses %s, want the next address %s", fo.Addr(), addrs[1])
	}
	fo.Connect(addrs[2])
	publish(20)
	for k, s := range got {
		if s != uint64(k+1) {
			t.Fatalf("followed seqs %v: want 1..%d, no gap, no duplicate", got, want)
		}
	}

	// A Failover whose address in use is dead publishes on the next one.
	fo2 := NewFailover(addrs, Options{Name: "client_8"}, nil)
	defer fo2.Close()
	if _, err := fo2.Publish(ctx, "chat", "m61"); err != nil {
		t.Fatalf("publish past a dead node: %v", err)
	}
	if fo2.Addr() != addrs[1] {
		t.Fatalf("fo2 uses %s, want %s", fo2.Addr(), addrs[1])
	}
	cancel()
	if err := <-followed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v, want context.Canceled", err)
	}

	mu.Lock()
	defer mu.Unlock()
	kinds := fmt.Sprint(events)
	if len(events) < 3 || events[0].Kind != Connected || events[0].Addr != addrs[0] ||
		events[1].Kind != Lost || events[1].Addr != addrs[0] || events[1].Next != addrs[1] {
		t.Fatalf("events %s: want connected to node 1, lost node 1 (next node 2), ...", kinds)
	}
	var resumed, moved bool
	for _, e := range events[2:] {
		resumed = resumed || e.Kind == Connected && e.Addr == addrs[1] && e.After == 20
		moved = moved || e.Kind == Connected && e.Addr == addrs[2] && e.After == 40
	}
	if !resumed || !moved {
		t.Fatalf("events %s: want a resume on node 2 after seq 20 and on node 3 after seq 40", kinds)
	}
}

func TestNotDelivered(t *testing.T) {
	c := NewWithOptions("127.0.0.1:1", Options{NoRetry: true})
	defer c.Close()
	_, err := c.Publish(context.Background(), "chat", "x")
	if !NotDelivered(err) {
		t.Fatalf("a refused connection must count as not delivered: %v", err)
	}
	for _, e := range []error{
		errors.New("CLUSTERDOWN no leader: this node cannot reach a majority of the cluster; retry shortly"),
		errors.New("TRYAGAIN publish was not sequenced (leader changed); retry it"),
		errors.New("TRYAGAIN node is shutting down: not sequenced, send it to another member"),
	} {
		if !NotDelivered(e) {
			t.Fatalf("%v: want not delivered", e)
		}
	}
	for _, e := range []error{
		nil,
		errors.New("TRYAGAIN publish not confirmed: ... it may or may not be delivered"),
		errors.New("TRYAGAIN node stopped before the publish was confirmed; it may or may not be delivered"),
		errors.New("EOF"),
		context.DeadlineExceeded,
	} {
		if NotDelivered(e) {
			t.Fatalf("%v: the outcome is unknown, not 'not delivered'", e)
		}
	}
}
