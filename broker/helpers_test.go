package broker

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// startServer runs a one-node ordo on a random loopback port.
func startServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{ID: 1, DataDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	return startServerCfg(t, cfg)
}

func startServerCfg(t testing.TB, cfg Config) *Server {
	t.Helper()
	if os.Getenv("ORDO_TEST_LOG") != "" {
		cfg.Logger = logging.NewLogger(os.Stderr, "text", logging.Debug)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	waitLeader(t, s)
	return s
}

// waitLeader waits (bounded) until the node can accept publishes.
func waitLeader(t testing.TB, s *Server) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool {
		st, _ := s.replica.Status()
		return st.Leader != 0
	}, "node %d elected no leader", s.cfg.ID)
}

// respConn is the kit's RESP test connection with the raw view these
// tests need: differential tests compare exactly the bytes a client
// receives. c and r are the socket and its reader, for tests that read in
// another goroutine (with readReply) or close the socket themselves.
type respConn struct {
	*testkit.Conn
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *respConn {
	t.Helper()
	k := testkit.Dial(t, addr)
	return &respConn{Conn: k, t: t, c: k.RESP.Conn, r: k.RESP.Reader}
}

func encodeCommand(args ...string) []byte { return resp.Command(args...) }

func (rc *respConn) send(args ...string) { rc.t.Helper(); rc.Send(args...) }

func (rc *respConn) sendRaw(b []byte) { rc.t.Helper(); rc.SendRaw(b) }

// read returns one whole reply, raw.
func (rc *respConn) read() string { rc.t.Helper(); return string(rc.ReadRaw()) }

// do sends a command and returns its reply, raw.
func (rc *respConn) do(args ...string) string {
	rc.t.Helper()
	rc.Send(args...)
	return string(rc.ReadRaw())
}

// expectClosed asserts the server closes the connection.
func (rc *respConn) expectClosed() { rc.t.Helper(); rc.ExpectClosed() }

// readReply reads one RESP2/RESP3 reply, returning its raw bytes.
func readReply(r *bufio.Reader) ([]byte, error) { return resp.ReadRaw(r, nil) }

// redisServer starts a real redis-server (the reference the differential
// tests compare against) on a random port, with extra arguments if given.
// CI installs it (.ci/deps.sh); a machine without it fails the test rather
// than skipping it silently.
func redisServer(t testing.TB, extra ...string) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed: run `make deps` (Debian package redis-server); the differential tests compare ordo against it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Args = append(cmd.Args, extra...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testkit.Eventually(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "redis-server did not start on %s", addr)
	return addr
}
