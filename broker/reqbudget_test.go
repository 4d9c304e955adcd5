package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// Absurd multibulk counts are refused from the header, with Redis 6's
// text.
func TestHugeMultibulkCountRefused(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.NoSync = true })
	for _, hdr := range []string{"*1048577\r\n", "*2147483647\r\n", "*5000000\r\n$0\r\n\r\n"} {
		c := dial(t, srv.Addr().String())
		c.sendRaw([]byte(hdr))
		if got := c.read(); got != "-ERR Protocol error: invalid multibulk length\r\n" {
			t.Fatalf("%q: got %q", hdr, got)
		}
		c.expectClosed()
	}
	if got := dial(t, srv.Addr().String()).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("server unusable after: %q", got)
	}
}

// Each declared argument costs argOverhead besides its bytes: a request
// of many empty arguments is refused like an oversized one, from its
// header.
func TestManyEmptyArgumentsCountAgainstRequestSize(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		c.NoSync = true
		c.Limits.MaxRequestBytes = 1 << 20
		c.Limits.MaxMessageBytes = 1 << 20
	})
	c := dial(t, srv.Addr().String())
	n := (1<<20)/argOverhead + 1
	c.sendRaw(fmt.Appendf(nil, "*%d\r\n", n)) // no argument sent yet
	if got := c.read(); got != "-ERR Protocol error: request exceeds max_request_size\r\n" {
		t.Fatalf("*%d: got %q", n, got)
	}
	c.expectClosed()

	// Large but allowed: many arguments, and one argument near the limit,
	// behind a pipeline of small commands, all in one write.
	d := dial(t, srv.Addr().String())
	var req strings.Builder
	const pings = 2000
	for range pings {
		req.WriteString("*1\r\n$4\r\nPING\r\n")
	}
	names := 10000
	fmt.Fprintf(&req, "*%d\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n", names+2)
	for i := range names {
		fmt.Fprintf(&req, "$%d\r\nc%d\r\n", len(fmt.Sprint(i))+1, i)
	}
	big := strings.Repeat("x", 1<<20-1024)
	fmt.Fprintf(&req, "*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$%d\r\n%s\r\n", len(big), big)
	d.sendRaw([]byte(req.String()))
	for i := range pings {
		if got := d.read(); got != "+PONG\r\n" {
			t.Fatalf("PING %d: %q", i, got)
		}
	}
	if got := d.read(); !strings.HasPrefix(got, fmt.Sprintf("*%d\r\n$2\r\nc0\r\n:0\r\n", 2*names)) {
		t.Fatalf("PUBSUB NUMSUB of %d channels: %.60q", names, got)
	}
	if got := d.read(); got != ":0\r\n" {
		t.Fatalf("PUBLISH of %d bytes: %q", len(big), got)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return srv.reqBudget.inUse() == 0 },
		"budget still holds %d bytes after every request completed", srv.reqBudget.inUse())
}

// budgetServer runs a node whose request budget fits one 900 KB request
// but not two.
func budgetServer(t *testing.T) *Server {
	return startServer(t, func(c *Config) {
		c.NoSync = true
		c.Limits.MaxRequestBytes = 1 << 20
		c.Limits.MaxMessageBytes = 1 << 20
		c.Limits.MaxPendingRequestBytes = 1280 << 10
	})
}

const bigHeader = "*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$900000\r\n"

var bigBody = strings.Repeat("x", 900000) + "\r\n"

// reservation is what a PUBLISH to channel "a" of n bytes reserves.
func reservation(n int64) int64 { return 3*argOverhead + 7 + 1 + n - freeRequestBytes }

// A request that does not fit the budget waits, its reads paused, while
// small requests of other clients go on; it proceeds once the request
// holding the budget completes.
func TestPendingRequestWaitsForBudget(t *testing.T) {
	srv := budgetServer(t)
	b := srv.reqBudget
	a := dial(t, srv.Addr().String())
	a.sendRaw([]byte(bigHeader))
	testkit.Eventually(t, 10*time.Second, func() bool { return b.inUse() > 0 }, "the declared bulk reserved nothing")

	w := dial(t, srv.Addr().String())
	w.sendRaw([]byte(bigHeader))
	testkit.Eventually(t, 10*time.Second, func() bool { return b.waited.Load() == 1 }, "the second large request did not wait")
	go w.c.Write([]byte(bigBody)) // may block: its reads are paused

	if got := dial(t, srv.Addr().String()).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("a small request while the budget is full: %q", got)
	}
	a.sendRaw([]byte(bigBody))
	if got := a.read(); got != ":0\r\n" {
		t.Fatalf("the request holding the budget: %q", got)
	}
	if got := w.read(); got != ":0\r\n" {
		t.Fatalf("the waiting request: %q", got)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return b.inUse() == 0 }, "budget still holds %d bytes", b.inUse())
	if b.refused.Load() != 0 {
		t.Fatalf("%d requests refused", b.refused.Load())
	}
}

// A request that waits longer than the budget allows is refused with a
// clear error and its connection closed.
func TestPendingRequestRefusedAfterWait(t *testing.T) {
	srv := budgetServer(t)
	b := srv.reqBudget
	b.mu.Lock()
	b.maxWait = time.Millisecond
	b.mu.Unlock()
	a := dial(t, srv.Addr().String())
	a.sendRaw([]byte(bigHeader))
	testkit.Eventually(t, 10*time.Second, func() bool { return b.inUse() > 0 }, "the declared bulk reserved nothing")
	// Once as a first request (no client yet) and once after one.
	for _, prefix := range []string{"", "*1\r\n$4\r\nPING\r\n"} {
		w := dial(t, srv.Addr().String())
		w.sendRaw([]byte(prefix + bigHeader))
		if prefix != "" {
			if got := w.read(); got != "+PONG\r\n" {
				t.Fatalf("before the refused request: %q", got)
			}
		}
		if got := w.read(); got != "-ERR "+budgetRefused+"\r\n" {
			t.Fatalf("got %q", got)
		}
		w.expectClosed()
	}
	a.sendRaw([]byte(bigBody))
	if got := a.read(); got != ":0\r\n" {
		t.Fatalf("the request holding the budget: %q", got)
	}
	info := dial(t, srv.Addr().String()).do("INFO", "stats")
	for _, want := range []string{"ordo_request_budget_waits:2\r\n", "ordo_request_budget_refusals:2\r\n", "ordo_pending_request_bytes:0\r\n"} {
		if !strings.Contains(info, want) {
			t.Fatalf("INFO stats lacks %q:\n%s", want, info)
		}
	}
}

// A connection that declared a large request and left gives its share
// of the budget back, whether it left while sending or while waiting.
func TestDisconnectReleasesBudget(t *testing.T) {
	srv := budgetServer(t)
	b := srv.reqBudget
	a := dial(t, srv.Addr().String())
	a.sendRaw([]byte("*1\r\n$4\r\nPING\r\n" + bigHeader + bigBody[:100000]))
	if got := a.read(); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return b.inUse() > 0 }, "the declared bulk reserved nothing")
	if b.inUse() != reservation(900000) {
		t.Fatalf("in use %d, want %d", b.inUse(), reservation(900000))
	}
	w := dial(t, srv.Addr().String())
	w.sendRaw([]byte("*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$800000\r\n"))
	testkit.Eventually(t, 10*time.Second, func() bool { return b.waited.Load() == 1 }, "the second large request did not wait")
	a.c.Close()
	// The waiter gets the budget, then leaves too.
	testkit.Eventually(t, 10*time.Second, func() bool { return b.inUse() == reservation(800000) },
		"the waiter did not get the budget (in use %d)", b.inUse())
	w.c.Close()
	testkit.Eventually(t, 10*time.Second, func() bool { return b.inUse() == 0 }, "budget still holds %d bytes after both left", b.inUse())
	if got := dial(t, srv.Addr().String()).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("after: %q", got)
	}
}

// Connections that each hold part of the budget and need more do not
// deadlock: a waiter gives back what it holds.
func TestBudgetGrowDoesNotDeadlock(t *testing.T) {
	b := newRequestBudget(100)
	if !b.grow(0, 60, nil) || !b.grow(0, 30, nil) {
		t.Fatal("first reservations refused")
	}
	got := make(chan bool)
	go func() { got <- b.grow(60, 30, nil) }() // A: 90 does not fit beside B's 30
	testkit.Eventually(t, 10*time.Second, func() bool { return b.waited.Load() == 1 && b.inUse() == 30 },
		"A did not give back its share while waiting (in use %d)", b.inUse())
	if !b.grow(30, 50, nil) { // B grows to 80 meanwhile
		t.Fatal("B refused")
	}
	b.release(80)
	if !<-got {
		t.Fatal("A refused")
	}
	if b.inUse() != 90 {
		t.Fatalf("in use %d, want 90", b.inUse())
	}
	b.release(90)
	// Alone on the node, a request larger than the budget is admitted.
	if !b.grow(0, 500, nil) {
		t.Fatal("a lone large request refused")
	}
}

// A large bulk is read straight from the socket into an allocation of
// exactly its size: the read buffer never grows, and no copy of the bulk
// is made however the network splits it.
func TestLargeBulkReadIntoItsOwnAllocation(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	in := "*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$" + fmt.Sprint(len(big)) + "\r\n" + big + "\r\n*1\r\n$4\r\nPING\r\n"
	for _, chunk := range []int{7, 4096, len(in)} {
		rd := newReqReader(&chunkConn{in: []byte(in), chunk: chunk}, nil, requestLimits{maxReq: 2 << 20})
		args, err := rd.next()
		if err != nil || len(args) != 3 || string(args[2]) != big {
			t.Fatalf("reads of %d: %d args, %v", chunk, len(args), err)
		}
		if cap(args[2]) != len(big) {
			t.Fatalf("reads of %d: the bulk's allocation holds %d bytes for %d", chunk, cap(args[2]), len(big))
		}
		if args, err = rd.next(); err != nil || len(args) != 1 || string(args[0]) != "PING" {
			t.Fatalf("reads of %d: after the bulk %q, %v", chunk, args, err)
		}
		if len(rd.buf) > readBufSize {
			t.Fatalf("reads of %d: the read buffer grew to %d", chunk, len(rd.buf))
		}
	}
}

// The bytes of a request stay as they were after the next requests are
// read (PUBLISH keeps its payload, MULTI its commands): the reader reuses
// its buffer, never an argument's bytes.
func TestArgumentsSurviveLaterRequests(t *testing.T) {
	var in strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&in, "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$%d\r\n%s\r\n", len(fmt.Sprint(i))+1, "m"+fmt.Sprint(i))
	}
	for _, chunk := range []int{1, 13, 4096, in.Len()} {
		rd := newReqReader(&chunkConn{in: []byte(in.String()), chunk: chunk}, nil, requestLimits{maxReq: 1 << 20})
		var kept [][]byte
		for {
			args, err := rd.next()
			if err != nil {
				break
			}
			kept = append(kept, args[2])
		}
		for i, k := range kept {
			if string(k) != "m"+fmt.Sprint(i) {
				t.Fatalf("reads of %d: payload %d is %q after later requests", chunk, i, k)
			}
		}
		if len(kept) != 2000 {
			t.Fatalf("reads of %d: %d requests", chunk, len(kept))
		}
	}
}

// One request of many arguments does not leave its argument slice to the
// connection: the next small request lets it go.
func TestManyArgumentsNotKept(t *testing.T) {
	in := "*100000\r\n" + strings.Repeat("$0\r\n\r\n", 100000) + "*1\r\n$4\r\nPING\r\n"
	rd := newReqReader(&chunkConn{in: []byte(in), chunk: 1000}, nil, requestLimits{maxReq: 100 << 20})
	if args, err := rd.next(); err != nil || len(args) != 100000 {
		t.Fatalf("%d args, %v", len(args), err)
	}
	if args, err := rd.next(); err != nil || len(args) != 1 {
		t.Fatalf("%q, %v", args, err)
	}
	if cap(rd.args) > keepArgs {
		t.Fatalf("the argument slice keeps room for %d", cap(rd.args))
	}
}
