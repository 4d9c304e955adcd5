package broker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
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
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, _ := s.replica.Status()
		if st.Leader != 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("node %d elected no leader within 10s", s.cfg.ID)
}

// respConn is a raw RESP test client: it sends commands and reads whole
// replies as raw bytes, so tests compare exactly what a client receives.
type respConn struct {
	t  testing.TB
	c  net.Conn
	r  *bufio.Reader
	to time.Duration
}

func dial(t testing.TB, addr string) *respConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &respConn{t: t, c: c, r: bufio.NewReader(c), to: 10 * time.Second}
}

func encodeCommand(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

func (rc *respConn) send(args ...string) {
	rc.t.Helper()
	rc.sendRaw(encodeCommand(args...))
}

func (rc *respConn) sendRaw(b []byte) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(rc.to))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// read returns one whole reply, raw.
func (rc *respConn) read() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(rc.to))
	b, err := readReply(rc.r)
	if err != nil {
		rc.t.Fatalf("read reply: %v (so far %q)", err, b)
	}
	return string(b)
}

// do sends a command and returns its reply.
func (rc *respConn) do(args ...string) string {
	rc.t.Helper()
	rc.send(args...)
	return rc.read()
}

// expectClosed asserts the server closes the connection.
func (rc *respConn) expectClosed() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(rc.to))
	b, err := rc.r.ReadByte()
	if err == nil {
		rest, _ := rc.r.Peek(rc.r.Buffered())
		rc.t.Fatalf("connection still open, read %q", append([]byte{b}, rest...))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		rc.t.Fatalf("connection not closed within %s", rc.to)
	}
}

// readReply reads one RESP2/RESP3 value, returning its raw bytes.
func readReply(r *bufio.Reader) ([]byte, error) {
	var out []byte
	err := readValue(r, &out)
	return out, err
}

func readLine(r *bufio.Reader, out *[]byte) (string, error) {
	line, err := r.ReadString('\n')
	*out = append(*out, line...)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("line without CRLF: %q", line)
	}
	return line[:len(line)-2], nil
}

func readValue(r *bufio.Reader, out *[]byte) error {
	line, err := readLine(r, out)
	if err != nil {
		return err
	}
	if len(line) == 0 {
		return fmt.Errorf("empty line")
	}
	switch line[0] {
	case '+', '-', ':', '_', '#', ',', '(':
		return nil
	case '$', '=', '!':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, buf...)
		return nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := readValue(r, out); err != nil {
				return err
			}
		}
		if line[0] == '|' { // attributes precede the real value
			return readValue(r, out)
		}
		return nil
	}
	return fmt.Errorf("unknown RESP type %q", line)
}

// redisServer starts a real redis-server (the reference the differential
// tests compare against) on a random port. CI installs it (.ci/deps.sh); a
// machine without it fails the test rather than skipping it silently.
func redisServer(t testing.TB) string {
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
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("redis-server did not start on %s", addr)
	return ""
}
