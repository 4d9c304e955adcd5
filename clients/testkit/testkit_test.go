package testkit

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
)

func TestMain(m *testing.M) { Main(m) }

// fakeT records a failure instead of ending the test, so the kit's own
// failure paths can be checked.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Second, func() bool { n++; return n == 3 }, "never")
	if n != 3 {
		t.Fatalf("polled %d times", n)
	}
	f := &fakeT{TB: t}
	start := time.Now()
	Eventually(f, 20*time.Millisecond, func() bool { return false }, "the thing %d", 7)
	if !strings.HasPrefix(f.failed, "the thing 7 (not true after") || time.Since(start) < Scale(20*time.Millisecond) {
		t.Fatalf("a false condition must fail after the scaled timeout: %q after %s", f.failed, time.Since(start))
	}
}

func TestScale(t *testing.T) {
	if got := Scale(time.Second); got < time.Second*raceScale {
		t.Fatalf("Scale(1s) = %s, want at least %ds", got, raceScale)
	}
}

// Conn reads parsed and raw replies and sees the server close.
func TestConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		buf := make([]byte, 64)
		for _, reply := range []string{":1\r\n", "*2\r\n$1\r\na\r\n_\r\n"} {
			s.Read(buf)
			s.Write([]byte(reply))
		}
	}()
	c := Dial(t, ln.Addr().String())
	if v := c.Do("PING"); v.Kind != resp.Integer || v.Num != 1 {
		t.Fatalf("Do: %+v", v)
	}
	c.Send("PING")
	if raw := c.ReadRaw(); string(raw) != "*2\r\n$1\r\na\r\n_\r\n" {
		t.Fatalf("ReadRaw: %q", raw)
	}
	c.ExpectClosed()
	<-done
}

// A cut link closes what is open and refuses new connections; healed,
// it forwards again.
func TestLinkProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer s.Close(); s.Write([]byte("+hi\r\n")); s.Read(make([]byte, 1)) }()
		}
	}()
	p := NewLinkProxy(t, ln.Addr().String())
	greet := func() error {
		c, err := resp.Dial(p.Addr(), Scale(2*time.Second))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Receive()
		return err
	}
	if err := greet(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.SetCut(true)
	if err := greet(); err == nil {
		t.Fatal("a cut link forwarded a connection")
	}
	p.SetCut(false)
	EventuallyNoError(t, 5*time.Second, greet, "healed link")
}

// Proc captures output, waits for a line, reports exit codes and kills.
func TestProc(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	p := StartProcess(t, sh, ProcConfig{Args: []string{"-c", "echo out; echo err >&2; exit 3"}})
	if code := p.ExitCode(5 * time.Second); code != 3 {
		t.Fatalf("exit code %d", code)
	}
	p.WaitLog("out")
	if p.Stderr() != "err\n" || !strings.Contains(p.Logs(), "out\n") {
		t.Fatalf("logs %q, stderr %q", p.Logs(), p.Stderr())
	}
	p = StartProcess(t, sh, ProcConfig{Args: []string{"-c", "echo ready; exec sleep 60"}})
	p.WaitLog("ready")
	p.Signal(syscall.SIGKILL)
	if code := p.ExitCode(5 * time.Second); code != -1 {
		t.Fatalf("killed process exit code %d", code)
	}
}

func TestExcept(t *testing.T) {
	all := []int{1, 2, 3}
	if got := Except(all, 2); len(got) != 2 || got[0] != 1 || got[1] != 3 || len(all) != 3 || all[1] != 2 {
		t.Fatalf("Except = %v, input now %v", got, all)
	}
}
