package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this package run ordo as real processes: the test binary
// re-executes itself as `ordo` (TestMain), so kill -9, SIGSTOP and restarts
// are the real thing.

func TestMain(m *testing.M) {
	if os.Getenv("ORDO_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is one ordo process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startOrdo runs `ordo args...` with extra environment and waits until it
// accepts connections on port (0: don't wait).
func startOrdo(t *testing.T, port int, env []string, args ...string) *proc {
	t.Helper()
	return startOrdoIn(t, "", port, env, args...)
}

// startOrdoIn is startOrdo with a working directory.
func startOrdoIn(t *testing.T, dir string, port int, env []string, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "ORDO_RUN_MAIN=1"), env...)
	p := &proc{t: t, cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if os.Getenv("ORDO_TEST_LOG") != "" {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", p.addr, sc.Text())
			}
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	if port != 0 {
		p.waitListening()
	}
	return p
}

func (p *proc) waitListening() {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("ordo exited early:\n%s", p.logs())
		default:
		}
		if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("ordo not listening on %s after 20s:\n%s", p.addr, p.logs())
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// waitLog waits (bounded) for a log line containing s.
func (p *proc) waitLog(s string) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.logs(), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("log line %q not seen:\n%s", s, p.logs())
}

// kill is kill -9.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// exitCode waits for the process to exit by itself.
func (p *proc) exitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("ordo did not exit within %s", timeout)
	}
	return -1
}

// rconn is a minimal RESP client for these tests.
type rconn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialOrdo(t *testing.T, addr string) *rconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rconn{t: t, c: c, r: bufio.NewReader(c)}
}

func (r *rconn) send(args ...string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := r.c.Write(b.Bytes())
	return err
}

// value is a parsed reply: a string (simple, bulk, error with "-"
// prefix, integer as text) or an array.
type value struct {
	s   string
	arr []value
	nil bool
}

func (r *rconn) read() (value, error) {
	r.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := r.r.ReadString('\n')
	if err != nil {
		return value{}, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', ':':
		return value{s: line[1:]}, nil
	case '-':
		return value{s: line}, nil
	case '_':
		return value{nil: true}, nil
	case '$', '=':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return value{nil: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.r, buf); err != nil {
			return value{}, err
		}
		return value{s: string(buf[:n])}, nil
	case '*', '>', '%':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return value{nil: true}, nil
		}
		if line[0] == '%' {
			n *= 2
		}
		v := value{arr: []value{}}
		for i := 0; i < n; i++ {
			e, err := r.read()
			if err != nil {
				return v, err
			}
			v.arr = append(v.arr, e)
		}
		return v, nil
	}
	return value{}, fmt.Errorf("bad reply line %q", line)
}

func (r *rconn) do(args ...string) value {
	r.t.Helper()
	if err := r.send(args...); err != nil {
		r.t.Fatalf("%v: %v", args, err)
	}
	v, err := r.read()
	if err != nil {
		r.t.Fatalf("%v: %v", args, err)
	}
	return v
}

// history returns a channel's log as (seq, payload) via XRANGE.
func history(t *testing.T, addr, channel string) (seqs []uint64, payloads []string) {
	t.Helper()
	v := dialOrdo(t, addr).do("XRANGE", channel, "-", "+")
	if strings.HasPrefix(v.s, "-") {
		t.Fatalf("XRANGE: %s", v.s)
	}
	for _, e := range v.arr {
		id := strings.TrimSuffix(e.arr[0].s, "-0")
		seq, _ := strconv.ParseUint(id, 10, 64)
		seqs = append(seqs, seq)
		payloads = append(payloads, e.arr[1].arr[1].s)
	}
	return seqs, payloads
}
