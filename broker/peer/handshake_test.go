package peer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/ordo-broker/ordo/consensus"
	"github.com/tidwall/redcon"
)

// collector is a Handler that records what reached it.
type collector struct {
	mu      sync.Mutex
	msgs    []consensus.Message
	ctls    []Control
	ctlFrom []uint64
	got     chan struct{}
	cluster string
}

func (c *collector) Control(from uint64, ctl Control, _ func(Control)) {
	c.mu.Lock()
	c.ctls, c.ctlFrom = append(c.ctls, ctl), append(c.ctlFrom, from)
	c.mu.Unlock()
	c.got <- struct{}{}
}

func (c *collector) ClusterID() string { return c.cluster }

func (c *collector) Dialled(uint64, string) {}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1024)} }

func (c *collector) Receive(m consensus.Message, _ <-chan struct{}) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	c.got <- struct{}{}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// responder runs a transport for node `self` of members 1..3 behind a
// listener that parses each connection's first command as the front end
// does, and hands peer handshakes to Accept. It returns the address and a
// channel that yields once per finished Accept.
func responder(t *testing.T, self uint64, secret string, h Handler) (string, <-chan struct{}) {
	t.Helper()
	return responderLogging(t, self, secret, h, io.Discard)
}

// responderLogging is responder writing its log to w.
func responderLogging(t *testing.T, self uint64, secret string, h Handler, w io.Writer) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// No peers: it dials none, and accepts whoever knows the secret.
	tr := New(Config{ID: self, Secret: []byte(secret), HeartbeatInterval: 10 * time.Millisecond, LeaderTimeout: 50 * time.Millisecond, Log: logging.Node{L: slog.New(slog.NewTextHandler(w, nil)), ID: self}}, h)
	done := make(chan struct{}, 16)
	t.Cleanup(func() { ln.Close(); tr.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { done <- struct{}{} }()
				cmd, err := redcon.NewReader(conn).ReadCommand()
				if err != nil || !IsHandshake(cmd.Args[0]) {
					conn.Close()
					return
				}
				tr.Accept(conn, cmd.Args)
			}()
		}
	}()
	return ln.Addr().String(), done
}

func msgFrame(m consensus.Message) []byte { return appendFrame(nil, &frame{m: m}) }

func heartbeat(from, to consensus.NodeID) consensus.Message {
	return consensus.Message{Type: consensus.MsgHeartbeat, From: from, To: to, Term: 1}
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed asserts the responder closes the connection, and returns
// everything it wrote.
func waitClosed(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	// A reset counts as closed: the responder closes with our unread frame
	// in its buffer.
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed by the responder: %v (read %q)", err, b)
	}
	return string(b)
}

func TestHandshakeWithTheSecretDelivers(t *testing.T) {
	h := newCollector()
	addr, _ := responder(t, 3, "s3cret", h)
	c := dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s3cret"), 1, 3, "", ""); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.Write(msgFrame(heartbeat(1, 3)))
	select {
	case <-h.got:
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered after a good handshake")
	}
	if m := h.msgs[0]; m.From != 1 || m.Type != consensus.MsgHeartbeat {
		t.Fatalf("delivered %+v", m)
	}
}

func TestHandshakeWrongSecretIsRefusedBothWays(t *testing.T) {
	h := newCollector()
	addr, done := responder(t, 3, "right", h)
	// The dialer notices the responder does not know its secret.
	c := dialRaw(t, addr)
	if err := dialHandshake(c, []byte("wrong"), 1, 3, "", ""); err == nil || !strings.Contains(err.Error(), "cluster secret") {
		t.Fatalf("dialer with the wrong secret: %v", err)
	}
	c.Close()
	<-done
	// An attacker that ignores the challenge's proof and answers with a
	// MAC made with another secret is refused and can send nothing.
	c = dialRaw(t, addr)
	hello := redcon.AppendArray(nil, 7)
	for _, a := range []string{"ORDO.PEER", "3", "1", "3", strings.Repeat("ab", nonceLen), "-", "-"} {
		hello = redcon.AppendBulkString(hello, a)
	}
	c.Write(hello)
	line, _ := bufio.NewReader(c).ReadString('\n')
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "+CHALLENGE" {
		t.Fatalf("challenge: %q", line)
	}
	c.Write([]byte(mac([]byte("wrong"), "dialer", 1, 3, strings.Repeat("ab", nonceLen), f[1], "-", f[3], "-") + "\r\n"))
	c.Write(msgFrame(heartbeat(1, 3)))
	if got := waitClosed(t, c); !strings.Contains(got, "-ERR peer handshake refused: wrong cluster secret") {
		t.Fatalf("refusal: %q", got)
	}
	<-done
	if h.count() != 0 {
		t.Fatalf("%d messages delivered without the secret", h.count())
	}
}

// A recorded good handshake, replayed byte for byte, fails: the responder's
// nonce is new on every connection.
func TestReplayedHandshakeIsRefused(t *testing.T) {
	h := newCollector()
	addr, done := responder(t, 3, "s3cret", h)
	// Record what a real dialer sends.
	var sent bytes.Buffer
	c := dialRaw(t, addr)
	if err := dialHandshake(recorder{c, &sent}, []byte("s3cret"), 1, 3, "", ""); err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-done
	// Replay it on a new connection as an attacker would: the hello, then
	// (after the new challenge) the recorded proof, then a message.
	// The hello is a 7-element RESP array; the proof is the last line.
	lines := strings.SplitAfter(sent.String(), "\r\n")
	hello := strings.Join(lines[:len(lines)-2], "")
	proof := lines[len(lines)-2]
	c = dialRaw(t, addr)
	c.Write([]byte(hello))
	rd := bufio.NewReader(c)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "+CHALLENGE ") {
		t.Fatalf("challenge: %q", line)
	}
	c.Write([]byte(proof))
	c.Write(msgFrame(heartbeat(1, 3)))
	rest, _ := io.ReadAll(rd)
	if !strings.Contains(string(rest), "-ERR peer handshake refused: wrong cluster secret") {
		t.Fatalf("replay not refused: %q", rest)
	}
	<-done
	if h.count() != 0 {
		t.Fatalf("replayed handshake delivered %d messages", h.count())
	}
}

type recorder struct {
	net.Conn
	w *bytes.Buffer
}

func (r recorder) Write(p []byte) (int, error) {
	r.w.Write(p)
	return r.Conn.Write(p)
}

// Today's predecessor sent ORDO.PEER <hash of the member ids> <id>: anyone
// could compute it. It gets a refusal and nothing else.
func TestOldHashTokenHandshakeIsRefused(t *testing.T) {
	h := newCollector()
	addr, done := responder(t, 3, "", h)
	c := dialRaw(t, addr)
	hello := redcon.AppendArray(nil, 3)
	hello = redcon.AppendBulkString(hello, "ORDO.PEER")
	hello = redcon.AppendBulkString(hello, "0123456789abcdef")
	hello = redcon.AppendBulkString(hello, "1")
	c.Write(hello)
	c.Write(redcon.AppendBulk(append([]byte(nil), "*2\r\n$8\r\nORDO.MSG\r\n"...), heartbeat(1, 3).Marshal()))
	if got := waitClosed(t, c); !strings.HasPrefix(got, "-ERR peer handshake refused: unsupported handshake") {
		t.Fatalf("old handshake: %q", got)
	}
	<-done
	if h.count() != 0 {
		t.Fatal("old handshake delivered a message")
	}
}

func TestHandshakeToWrongNodeIsRefused(t *testing.T) {
	addr, _ := responder(t, 3, "s", newCollector())
	c := dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s"), 1, 2, "", ""); err == nil || !strings.Contains(err.Error(), "not node_2") {
		t.Fatalf("wrong target: %v", err)
	}
}

// Nodes of two clusters refuse each other, and both say why: the dialer
// in its error, the responder in its log. A node that has not joined a
// cluster yet (no id) is accepted by any, and accepts any.
func TestHandshakeAcrossClustersIsRefusedBothWays(t *testing.T) {
	h := newCollector()
	h.cluster = "aaaa"
	logs := &testkit.Buffer{}
	addr, done := responderLogging(t, 3, "s", h, logs)
	c := dialRaw(t, addr)
	err := dialHandshake(c, []byte("s"), 1, 3, "bbbb", "")
	if !errors.Is(err, errOtherCluster) || !strings.Contains(err.Error(), "aaaa") {
		t.Fatalf("dialer of another cluster: %v", err)
	}
	<-done
	if got := logs.String(); !strings.Contains(got, "another cluster (bbbb)") {
		t.Fatalf("responder did not log the refusal: %q", got)
	}
	c = dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s"), 1, 3, "", ""); err != nil {
		t.Fatalf("joining node refused: %v", err)
	}
	h2 := newCollector() // joining: no cluster yet
	addr2, _ := responder(t, 3, "s", h2)
	c = dialRaw(t, addr2)
	if err := dialHandshake(c, []byte("s"), 1, 3, "bbbb", ""); err != nil {
		t.Fatalf("a member dialling a joining node refused: %v", err)
	}
}

// Control frames (JOIN and friends) reach the handler with the
// authenticated sender.
func TestControlFrameDelivered(t *testing.T) {
	h := newCollector()
	addr, _ := responder(t, 3, "s", h)
	c := dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s"), 7, 3, "", ""); err != nil {
		t.Fatal(err)
	}
	c.Write(appendFrame(nil, &frame{ctl: &Control{Type: ControlJoin, ID: 7, Addr: "127.0.0.1:7007"}}))
	select {
	case <-h.got:
	case <-time.After(5 * time.Second):
		t.Fatal("control frame not delivered")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ctls) != 1 || h.ctlFrom[0] != 7 || h.ctls[0].Addr != "127.0.0.1:7007" {
		t.Fatalf("delivered %+v from %v", h.ctls, h.ctlFrom)
	}
}

// An authenticated peer may only speak for itself: a message claiming
// another sender closes the link and is not delivered.
func TestPeerCannotSpeakForAnother(t *testing.T) {
	h := newCollector()
	addr, done := responder(t, 3, "s", h)
	c := dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s"), 1, 3, "", ""); err != nil {
		t.Fatal(err)
	}
	c.Write(msgFrame(heartbeat(2, 3)))
	waitClosed(t, c)
	<-done
	if h.count() != 0 {
		t.Fatalf("a message from node_2 was accepted on node_1's link")
	}
}

func TestMalformedFrameClosesLink(t *testing.T) {
	h := newCollector()
	addr, done := responder(t, 3, "s", h)
	c := dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s"), 1, 3, "", ""); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0xff, 0xff, 0xff, 0xff, 'x'}) // a 4 GiB frame
	waitClosed(t, c)
	<-done
	c = dialRaw(t, addr)
	if err := dialHandshake(c, []byte("s"), 1, 3, "", ""); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0, 0, 0, 3, 1, 2, 3}) // not a message
	waitClosed(t, c)
	<-done
	if h.count() != 0 {
		t.Fatal("garbage delivered")
	}
}

func TestRefusalLogIsRateLimited(t *testing.T) {
	var r refusalLog
	now := time.Now()
	if ok, _ := r.allow(now); !ok {
		t.Fatal("first refusal not logged")
	}
	for i := 0; i < 5; i++ {
		if ok, _ := r.allow(now.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatal("logged twice within a second")
		}
	}
	if ok, n := r.allow(now.Add(2 * time.Second)); !ok || n != 5 {
		t.Fatalf("after a second: ok=%v suppressed=%d, want true 5", ok, n)
	}
}

// remoteConn is a connection that claims to come from addr.
type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

// Without a cluster secret, peer links are taken from loopback only: a
// lone node listening on 0.0.0.0 cannot be fed consensus messages from
// the network.
func TestNoSecretAcceptsLoopbackOnly(t *testing.T) {
	h := newCollector()
	tr := New(Config{ID: 3, HeartbeatInterval: 10 * time.Millisecond, LeaderTimeout: 50 * time.Millisecond, Log: logging.Node{L: slog.New(slog.DiscardHandler), ID: 3}}, h)
	defer tr.Close()
	for _, tc := range []struct {
		ip     string
		refuse bool
	}{{"192.0.2.7", true}, {"127.0.0.1", false}} {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			tr.Accept(remoteConn{server, &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 4000}},
				[][]byte{[]byte("ORDO.PEER"), []byte("3"), []byte("1"), []byte("3"), []byte(strings.Repeat("ab", nonceLen)), []byte("-"), []byte("-")})
		}()
		client.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(client).ReadString('\n')
		if refused := strings.Contains(line, "loopback only"); refused != tc.refuse {
			t.Errorf("from %s: %q", tc.ip, line)
		}
		client.Close()
		<-done
	}
}
