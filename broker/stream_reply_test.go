package broker

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// History replies bigger than one chunk are streamed (stream_reply.go).
// These tests check that streaming changes nothing a client sees, and
// that it bounds what the node holds for a reader.

// publishPipelined publishes n messages, sending them all before reading
// the replies (one group commit for many).
func publishPipelined(t *testing.T, c *respConn, n int, msg func(i int) (ch, payload string)) {
	t.Helper()
	var b []byte
	for i := 0; i < n; i++ {
		ch, p := msg(i)
		b = append(b, encodeCommand("PUBLISH", ch, p)...)
	}
	c.sendRaw(b)
	for i := 0; i < n; i++ {
		if got := c.read(); !strings.HasPrefix(got, ":") {
			t.Fatalf("publish %d: %q", i, got)
		}
	}
}

// TestDifferentialBigHistory: replies of several chunks, with COUNT,
// exclusive ranges, reversed, XREAD (RESP2 and RESP3, BLOCK) and a
// pipeline after a big reply, are byte-identical to redis-server's over a
// stream holding the same entries.
func TestDifferentialBigHistory(t *testing.T) {
	srv := startServer(t, bigConfig)
	pub := dial(t, srv.Addr().String())
	pub.do("CLIENT", "SETNAME", "bob")
	const n = 3000 // ~1 MB of reply: four chunks
	payload := strings.Repeat("p", 400)
	publishPipelined(t, pub, n, func(i int) (string, string) {
		if i%3 == 2 {
			return "other", fmt.Sprintf("o%d", i) // gaps in chat's seqs
		}
		return "chat", fmt.Sprintf("%s%d", payload, i)
	})

	// The same entries, IDs and fields in a real Redis stream.
	redisAddr := redisServer(t)
	rc := dial(t, redisAddr)
	var chat []entry
	for _, ch := range []string{"chat", "other"} {
		es := parseEntries(t, pub.do("XRANGE", ch, "-", "+"))
		var b []byte
		for _, e := range es {
			b = append(b, encodeCommand("XADD", ch, strconv.FormatUint(e.seq, 10)+"-0", "payload", e.payload, "sender", e.from, "time", strconv.FormatInt(e.timeMs, 10))...)
		}
		rc.sendRaw(b)
		for range es {
			rc.read()
		}
		if ch == "chat" {
			chat = es
		}
	}
	if len(chat) != 2000 {
		t.Fatalf("chat holds %d entries, want 2000", len(chat))
	}
	id := func(k int) string { return strconv.FormatUint(chat[k].seq, 10) + "-0" }
	steps := []step{
		s(0, "XRANGE chat - +"),
		s(0, "XRANGE chat - + COUNT 1999"),
		s(0, "XRANGE chat - + COUNT 5000"),
		s(0, "XRANGE chat - + COUNT 1"),
		s(0, "XRANGE chat ("+id(10)+" +"),
		s(0, "XRANGE chat "+id(100)+" ("+id(1900)),
		s(0, "XRANGE chat ("+id(100)+" ("+id(1900)+" COUNT 1200"),
		s(0, "XRANGE chat "+strconv.FormatUint(chat[500].seq+1, 10)+" +"),
		s(0, "XREVRANGE chat + -"),
		s(0, "XREVRANGE chat + - COUNT 1500"),
		s(0, "XREVRANGE chat ("+id(1999)+" ("+id(0)),
		s(0, "XREAD STREAMS chat 0"),
		s(0, "XREAD COUNT 1700 STREAMS chat other 0 "+id(3)),
		s(0, "XREAD BLOCK 0 STREAMS chat other "+id(5)+" 0"),
		// A pipeline: the replies after a big one come after it, in order.
		{c: 0, raw: string(encodeCommand("XRANGE", "chat", "-", "+")) + string(encodeCommand("PING")) +
			string(encodeCommand("XREVRANGE", "chat", "+", "-", "COUNT", "1800")) + string(encodeCommand("ECHO", "last")),
			reads: map[int]int{0: 4}},
		sn(0, "HELLO 3", map[int]int{0: 1}),
		s(0, "XREAD STREAMS chat other 0 0"),
		s(0, "XRANGE chat - +"),
	}
	want := runScript(t, redisAddr, steps)
	got := runScript(t, srv.Addr().String(), steps)
	if len(want) != len(got) {
		t.Fatalf("%d replies from redis, %d from ordo", len(want), len(got))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("reply %d (%d vs %d bytes) differs: redis %.200q..., ordo %.200q...", i, len(want[i]), len(got[i]), want[i], got[i])
		}
	}
	if len(got[0]) < 3*replyChunkBytes {
		t.Fatalf("XRANGE reply is %d bytes: not several chunks", len(got[0]))
	}
}

// clientRunning returns the server's client whose last command is name.
func clientRunning(srv *Server, name string) *client {
	for _, c := range srv.allClients() {
		if cmd := c.lastCmd.Load(); cmd != nil && cmd.name == name {
			return c
		}
	}
	return nil
}

// bigHistory fills channel chat with 40 messages of 1 MB (a 40 MB reply,
// far more than loopback socket buffers hold), a few at a time.
func bigHistory(t *testing.T, srv *Server) int {
	t.Helper()
	pub := dial(t, srv.Addr().String())
	const n = 40
	big := strings.Repeat("x", 1<<20-100)
	for i := 0; i < n; i += 4 {
		publishPipelined(t, pub, 4, func(int) (string, string) { return "chat", big })
	}
	return n
}

// bigConfig is for servers that take bigHistory: no fsync, and a publish
// timeout that holds under -race on a loaded machine.
func bigConfig(c *Config) {
	c.NoSync = true
	c.PublishTimeout = testkit.Scale(60 * time.Second)
}

// TestSlowReaderIsPacedNotBuffered: a client that sends XRANGE over 40 MB
// and reads nothing makes the node hold a few chunks for it, not the
// reply; once it reads, it gets the whole reply. A normal output limit
// and a client budget far below the reply are never tripped.
func TestSlowReaderIsPacedNotBuffered(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		bigConfig(c)
		c.Limits.NormalHardBytes = 8 << 20
		c.Limits.MaxClientBuffers = 8 << 20
	})
	n := bigHistory(t, srv)
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(encodeCommand("XRANGE", "chat", "-", "+"))
	nc.Write(encodeCommand("PING"))
	var c *client
	testkit.Eventually(t, 20*time.Second, func() bool {
		c = clientRunning(srv, "xrange")
		return c != nil && c.handingOver.Load()
	}, "the XRANGE never waited for its reader")
	// Stalled: the socket buffers are full and the node waits.
	c.out.mu.Lock()
	peak := c.out.peak
	c.out.mu.Unlock()
	const bound = 2*replyChunkBytes + 2<<20 // two chunks, plus an entry of 1 MB overshooting each
	if peak > bound {
		t.Fatalf("the node buffered %d bytes for a reader that reads nothing (bound %d)", peak, bound)
	}
	if total := srv.clientBuffers.Load(); total > bound {
		t.Fatalf("all clients' buffers hold %d bytes (bound %d)", total, bound)
	}

	// Now read it all: the whole reply, then PING's.
	nc.SetReadDeadline(time.Now().Add(testkit.Scale(60 * time.Second)))
	r := bufio.NewReaderSize(nc, 1<<16)
	reply, err := readReply(r)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	if !strings.HasPrefix(string(reply), "*"+strconv.Itoa(n)+"\r\n") || len(reply) < n<<20-n*100 {
		t.Fatalf("reply: %d bytes starting %.40q", len(reply), reply)
	}
	if pong, err := readReply(r); err != nil || string(pong) != "+PONG\r\n" {
		t.Fatalf("after the XRANGE: %q, %v", pong, err)
	}
	c.out.mu.Lock()
	peak = c.out.peak
	c.out.mu.Unlock()
	if peak > bound {
		t.Fatalf("the node buffered up to %d bytes for the reply (bound %d)", peak, bound)
	}
	if d := srv.stats.outputLimitDisconnects.Load(); d != 0 {
		t.Fatalf("%d clients disconnected for output limits", d)
	}
}

// TestHistoryReplyStopsWhenClientLeaves: a reader that disconnects in the
// middle of a streamed reply ends its production: the command goroutine
// returns (the client is dropped) and retention is no longer held back.
func TestHistoryReplyStopsWhenClientLeaves(t *testing.T) {
	srv := startServer(t, bigConfig)
	bigHistory(t, srv)
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(encodeCommand("XRANGE", "chat", "-", "+"))
	var c *client
	testkit.Eventually(t, 20*time.Second, func() bool {
		c = clientRunning(srv, "xrange")
		return c != nil && c.handingOver.Load()
	}, "the XRANGE never waited for its reader")
	if p := srv.replica.Store().Pins(); p != 1 {
		t.Fatalf("%d reads pin the log during the reply, want 1", p)
	}
	nc.Close()
	testkit.Eventually(t, 20*time.Second, func() bool {
		return clientRunning(srv, "xrange") == nil && srv.replica.Store().Pins() == 0
	}, "the reply went on after its client left")
	if total := srv.clientBuffers.Load(); total != 0 {
		t.Fatalf("a departed client still counts %d bytes of output", total)
	}
}

// floodEchoes sends ECHOs of 256 KB without reading their replies until
// the server closes the connection (or after 400: 100 MB).
func floodEchoes(nc net.Conn) {
	req := encodeCommand("ECHO", strings.Repeat("e", 256<<10))
	for i := 0; i < 400; i++ {
		if _, err := nc.Write(req); err != nil {
			return
		}
	}
}

// TestNormalOutputLimit: with client-output-buffer-limit normal set, a
// client that does not read its replies is disconnected at the hard limit,
// as in Redis; an unrelated client is not.
func TestNormalOutputLimit(t *testing.T) {
	srv := startServer(t, nil)
	admin := dial(t, srv.Addr().String())
	if got := admin.do("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	if got := admin.do("CONFIG", "GET", "client-output-buffer-limit"); !strings.Contains(got, "normal 1048576 0 0 slave") {
		t.Fatalf("CONFIG GET: %q", got)
	}
	expectFlooderDisconnected(t, srv, admin)
}

// TestClientBufferBudget: past max_client_buffers, the client holding the
// most unsent output is disconnected; the others stay.
func TestClientBufferBudget(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.Limits.MaxClientBuffers = 4 << 20 })
	admin := dial(t, srv.Addr().String())
	if got := admin.do("CONFIG", "GET", "maxmemory-clients"); got != "*2\r\n$17\r\nmaxmemory-clients\r\n$7\r\n4194304\r\n" {
		t.Fatalf("CONFIG GET: %q", got)
	}
	expectFlooderDisconnected(t, srv, admin)
	testkit.Eventually(t, 10*time.Second, func() bool { return srv.clientBuffers.Load() < 1<<20 },
		"the departed client's output still counts: %d bytes", srv.clientBuffers.Load())
}

// expectFlooderDisconnected connects a client that sends ECHOes and reads
// nothing, and waits until the node cuts it off for its unsent output,
// while admin's connection keeps working.
func expectFlooderDisconnected(t *testing.T, srv *Server, admin *respConn) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go floodEchoes(nc)
	testkit.Eventually(t, 30*time.Second, func() bool {
		return srv.stats.outputLimitDisconnects.Load() == 1
	}, "the client that reads nothing was never disconnected")
	if got := admin.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("the other client: %q", got)
	}
}
