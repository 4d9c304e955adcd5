package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/redis/go-redis/v9"
)

// Cluster-aware clients given every node's address find the leader
// through CLUSTER SLOTS, publish and subscribe there, and after kill -9
// of the leader find the new one by themselves.

// failoverRun is what one cluster client saw across a leader kill.
// Messages are numbered in publish order (one publisher, one at a time).
type failoverRun struct {
	Acked    []int `json:"acked"`     // numbers whose PUBLISH was acknowledged
	Failed   int   `json:"failed"`    // PUBLISH calls that returned an error
	Received []int `json:"received"`  // numbers the subscriber got, in order
	KilledAt int   `json:"killed_at"` // the first number published after the kill
}

// checkDelivery asserts that once the subscriber is back (it received an
// acknowledged message published after the kill, the anchor), every later
// acknowledged message reaches it, in publish order. Before the anchor the
// subscriber may have been reconnecting: plain SUBSCRIBE has no replay.
func (r failoverRun) checkDelivery(t *testing.T, minAfter int) {
	t.Helper()
	acked := map[int]bool{}
	for _, n := range r.Acked {
		acked[n] = true
	}
	anchorPos := slices.IndexFunc(r.Received, func(n int) bool { return n >= r.KilledAt && acked[n] })
	if anchorPos < 0 {
		t.Fatalf("the subscriber received no acknowledged message published after the kill (killed at #%d; %d acknowledged, %d failed, %d received, last %v)",
			r.KilledAt, len(r.Acked), r.Failed, len(r.Received), testkit.Tail(r.Received))
	}
	anchor := r.Received[anchorPos]
	rest := r.Received[anchorPos+1:]
	after := 0
	for _, n := range r.Acked {
		if n <= anchor {
			continue
		}
		i := slices.Index(rest, n)
		if i < 0 {
			t.Fatalf("acknowledged message #%d (published after the subscriber was back at #%d) was not delivered in order; received after the anchor: %v",
				n, anchor, testkit.Tail(rest))
		}
		rest = rest[i+1:]
		after++
	}
	if after < minAfter {
		t.Fatalf("only %d acknowledged messages after the subscriber was back, want at least %d", after, minAfter)
	}
	t.Logf("killed at #%d; %d publishes acknowledged, %d failed during the failover; subscriber back at #%d, then %d acknowledged messages all delivered in order",
		r.KilledAt, len(r.Acked), r.Failed, anchor, after)
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, ok := strings.Cut(addr, "127.0.0.1:")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	return port
}

// go-redis's ClusterClient reloads its slot map on a MOVED or ASK
// redirect, which ordo never sends, and otherwise every
// ClusterStateReloadInterval (default 60s): set to a second, it follows a
// failover within about a second of the election.
func TestGoRedisClusterClientFailover(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	leader := c.WaitLeader()
	var addrs []string
	for _, i := range c.All() {
		addrs = append(addrs, c.Addr(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(90*time.Second))
	defer cancel()

	// A UniversalClient given several addresses is a ClusterClient.
	uc := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	if _, ok := uc.(*redis.ClusterClient); !ok {
		t.Fatalf("NewUniversalClient with %d addresses made a %T", len(addrs), uc)
	}
	if err := uc.Publish(ctx, "gr", "-1").Err(); err != nil {
		t.Fatalf("PUBLISH through a UniversalClient: %v", err)
	}
	// Shard channels are routed by slot, to the leader.
	ss := uc.SSubscribe(ctx, "{s}gr")
	if _, err := ss.Receive(ctx); err != nil {
		t.Fatalf("SSUBSCRIBE through a UniversalClient: %v", err)
	}
	if n, err := uc.SPublish(ctx, "{s}gr", "shard").Result(); err != nil || n != 1 {
		t.Fatalf("SPUBLISH through a UniversalClient: %d, %v (want 1 receiver: the subscription is on the same node)", n, err)
	}
	if m, err := ss.ReceiveMessage(ctx); err != nil || m.Payload != "shard" {
		t.Fatalf("SSUBSCRIBE delivery: %+v, %v", m, err)
	}
	ss.Close()
	uc.Close()

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: time.Second})
	defer cc.Close()
	master := func() string {
		m, err := cc.MasterForKey(ctx, "gr")
		if err != nil {
			return err.Error()
		}
		return m.Options().Addr
	}
	if got := master(); got != c.Addr(leader) {
		t.Fatalf("the cluster client's master is %s, the leader (node %d) is %s", got, leader, c.Addr(leader))
	}

	sub := cc.Subscribe(ctx, "gr")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("SUBSCRIBE through the cluster client: %v", err)
	}
	var mu sync.Mutex
	var run failoverRun
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(run.Received) }
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for m := range sub.Channel() {
			n, err := strconv.Atoi(m.Payload)
			mu.Lock()
			if err == nil {
				run.Received = append(run.Received, n)
			}
			mu.Unlock()
		}
	}()

	// redis-cli in cluster mode publishes through any node.
	for _, i := range c.All() {
		out, err := exec.CommandContext(ctx, "redis-cli", "-c", "-p", portOf(t, c.Addr(i)), "publish", "gr", "-1").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1" && strings.TrimSpace(string(out)) != "0" {
			t.Fatalf("redis-cli -c publish on node %d: %v %q", i, err, out)
		}
	}

	var next atomic.Int64 // the number the publisher sends next
	var stop atomic.Bool
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for n := 0; !stop.Load() && ctx.Err() == nil; n++ {
			next.Store(int64(n))
			err := cc.Publish(ctx, "gr", strconv.Itoa(n)).Err()
			mu.Lock()
			if err == nil {
				run.Acked = append(run.Acked, n)
			} else {
				run.Failed++
			}
			mu.Unlock()
		}
	}()
	defer func() { stop.Store(true); <-pubDone }()
	testkit.Eventually(t, 20*time.Second, func() bool { return received() >= 50 }, "the subscriber got fewer than 50 messages before the kill")

	c.Proc(leader).Kill() // returns once the process is gone
	mu.Lock()
	run.KilledAt = int(next.Load()) + 1
	mu.Unlock()
	newLeader := c.WaitLeader(testkit.Except(c.All(), leader)...)
	testkit.Eventually(t, 30*time.Second, func() bool { return master() == c.Addr(newLeader) },
		"the cluster client did not rediscover the new leader (node %d, %s); its master: %s", newLeader, c.Addr(newLeader), master())
	// Wait for what checkDelivery counts: 300 acknowledged messages delivered after the
	// subscriber's first one published after the kill (the subscriber may
	// reconnect later than the publisher, so counting acknowledgements
	// from the failover could fall a few short of that).
	deliveredAfterKill := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range run.Received {
			if _, ok := slices.BinarySearch(run.Acked, m); ok && m >= run.KilledAt {
				n++ // (Acked is in publish order, so sorted)
			}
		}
		return n
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return deliveredAfterKill() >= 301 }, "fewer than 300 acknowledged messages delivered after the subscriber was back")
	stop.Store(true)
	<-pubDone
	mu.Lock()
	last := run.Acked[len(run.Acked)-1]
	mu.Unlock()
	testkit.Eventually(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(run.Received, last)
	}, "the last acknowledged message #%d never reached the subscriber", last)
	mu.Lock()
	defer mu.Unlock()
	run.checkDelivery(t, 300)
}

// redis-py's RedisCluster, driven by testdata/rediscluster_failover.py:
// it reports when its subscriber is receiving, the test kills the leader
// and says so, and the script prints what it saw as JSON.
func TestRedisPyClusterFailover(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, for which python3-redis is installed
	if _, err := exec.LookPath(python); err != nil {
		t.Fatalf("%s not installed (run make deps): %v", python, err)
	}
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	leader := c.WaitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(120*time.Second))
	defer cancel()
	args := []string{"testdata/rediscluster_failover.py", strconv.Itoa(int(testkit.Scale(60 * time.Second).Seconds()))}
	for _, i := range c.All() {
		args = append(args, portOf(t, c.Addr(i)))
	}
	cmd := exec.CommandContext(ctx, python, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	expect := func(prefix string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || !strings.HasPrefix(l, prefix) {
				cmd.Process.Kill()
				t.Fatalf("redis-py script: want %q, got %q (ended: %v); stderr:\n%s", prefix, l, !ok, stderr.String())
			}
			return strings.TrimPrefix(l, prefix)
		case <-ctx.Done():
			cmd.Process.Kill()
			t.Fatalf("redis-py script: no %q line; stderr:\n%s", prefix, stderr.String())
		}
		return ""
	}
	if got := expect("primary "); got != portOf(t, c.Addr(leader)) {
		t.Fatalf("RedisCluster's primary is port %s, the leader (node %d) is %s", got, leader, c.Addr(leader))
	}
	expect("receiving")
	c.Proc(leader).Kill()
	fmt.Fprintln(stdin, "killed")
	newLeader := c.WaitLeader(testkit.Except(c.All(), leader)...)
	if got := expect("primary "); got != portOf(t, c.Addr(newLeader)) {
		t.Fatalf("after the kill RedisCluster's primary is port %s, the new leader (node %d) is %s", got, newLeader, c.Addr(newLeader))
	}
	var run failoverRun
	if err := json.Unmarshal([]byte(expect("result ")), &run); err != nil {
		t.Fatalf("redis-py result: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("redis-py script: %v; stderr:\n%s", err, stderr.String())
	}
	run.checkDelivery(t, 200)
}
