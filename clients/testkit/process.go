package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LogEnv, when set, echoes every process's output to the test's stderr
// as it arrives, prefixed with the process's name.
const LogEnv = "ORDO_TEST_LOG"

// ProcConfig describes a process to start.
type ProcConfig struct {
	Args []string // arguments after the binary
	Env  []string // added to the test's environment
	Dir  string   // working directory ("" = the test's)
	// Port, if not 0, is where the process serves clients: Start waits
	// until it accepts connections there.
	Port int
	Name string // prefix for echoed logs (default: the address)
}

// Proc is one running process whose output is captured. It is killed
// (kill -9) when the test ends.
type Proc struct {
	Addr string // 127.0.0.1:Port, or "" without a port
	t    testing.TB
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // stdout and stderr, interleaved as they arrived
	err  bytes.Buffer // stderr alone
	done chan struct{}
}

// StartOrdo runs the ordo binary built by Main(WithOrdo()).
func StartOrdo(t testing.TB, cfg ProcConfig) *Proc {
	t.Helper()
	return StartProcess(t, OrdoBinary(t), cfg)
}

// StartProcess runs bin and, if cfg.Port is set, waits until it listens.
func StartProcess(t testing.TB, bin string, cfg ProcConfig) *Proc {
	t.Helper()
	p := &Proc{t: t, name: cfg.Name, done: make(chan struct{})}
	if cfg.Port != 0 {
		p.Addr = fmt.Sprintf("127.0.0.1:%d", cfg.Port)
	}
	if p.name == "" {
		p.name = p.Addr
	}
	p.cmd = exec.Command(bin, cfg.Args...)
	p.cmd.Dir = cfg.Dir
	p.cmd.Env = append(os.Environ(), cfg.Env...)
	p.cmd.Stdout = procWriter{p, false}
	p.cmd.Stderr = procWriter{p, true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Kill)
	if cfg.Port != 0 {
		p.WaitListening()
	}
	return p
}

type procWriter struct {
	p      *Proc
	stderr bool
}

func (w procWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	w.p.out.Write(b)
	if w.stderr {
		w.p.err.Write(b)
	}
	w.p.mu.Unlock()
	if os.Getenv(LogEnv) != "" {
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" {
				fmt.Fprintf(os.Stderr, "[%s] %s", w.p.name, l)
			}
		}
	}
	return len(b), nil
}

// Logs is everything the process printed so far, stdout and stderr.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stderr is what the process printed to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitListening waits until the process accepts connections on Addr;
// it fails at once, with the logs, if the process exits meanwhile.
func (p *Proc) WaitListening() {
	p.t.Helper()
	err := poll(20*time.Second, func() bool {
		if p.Exited() {
			return true
		}
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if p.Exited() {
		p.t.Fatalf("%s exited (%s) before accepting connections:\n%s", p.name, p.cmd.ProcessState, p.Logs())
	}
	if err != nil {
		p.t.Fatalf("%s: no listener on %s: %v\n%s", p.name, p.Addr, err, p.Logs())
	}
}

// WaitLog waits until the output contains s. It fails at once if the
// process exits without having printed it.
func (p *Proc) WaitLog(s string) {
	p.t.Helper()
	err := poll(10*time.Second, func() bool { return strings.Contains(p.Logs(), s) || p.Exited() })
	if !strings.Contains(p.Logs(), s) {
		<-p.waitDone(time.Second) // let the last output arrive before showing it
		state := "still running"
		if p.Exited() {
			state = "exited: " + p.cmd.ProcessState.String()
		}
		p.t.Fatalf("%s: log line %q not seen (%s, %v):\n%s", p.name, s, state, err, p.Logs())
	}
}

func (p *Proc) waitDone(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-p.done:
		case <-time.After(d):
		}
		close(ch)
	}()
	return ch
}

// Kill is kill -9; it returns once the process is gone.
func (p *Proc) Kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Signal sends sig (SIGSTOP, SIGCONT, SIGTERM ...).
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// ExitCode waits (bounded by Scale(timeout)) for the process to exit by
// itself and returns its exit code (-1 if a signal ended it).
func (p *Proc) ExitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(Scale(timeout)):
		p.t.Fatalf("%s did not exit within %s:\n%s", p.name, Scale(timeout), p.Logs())
	}
	return -1
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
