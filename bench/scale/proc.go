package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// node is one ordo process of the test, across its restarts.
type node struct {
	id      int
	port    int
	dir     string   // its data directory
	logPath string   // its stdout and stderr, appended across restarts
	args    []string // `ordo node ...`, the same at every (re)start
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	starts  int
}

func (n *node) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// running reports whether the node's current process is alive.
func (n *node) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// start runs the node's process with its output appended to its log,
// and waits (bounded) until it accepts connections. A process that exits
// meanwhile is an error at once.
func (n *node) start(ctx context.Context, binary string, bound time.Duration) error {
	if n.running() {
		return fmt.Errorf("node %d is already running", n.id)
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.starts++
	fmt.Fprintf(f, "=== [scale] start %d of node %d: %s %s\n", n.starts, n.id, binary, strings.Join(n.args, " "))
	cmd := exec.Command(binary, n.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	f.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("start node %d: %w", n.id, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	done := n.done
	go func() { cmd.Wait(); close(done) }()
	err = poll(ctx, bound, func() error {
		if !n.running() {
			return errExited
		}
		c, err := net.DialTimeout("tcp", n.addr(), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
	switch {
	case errors.Is(err, errExited) || !n.running():
		return fmt.Errorf("node %d exited (%s) before accepting connections", n.id, n.cmd.ProcessState)
	case err != nil:
		n.kill()
		return fmt.Errorf("node %d: no listener on %s: %w", n.id, n.addr(), err)
	}
	return nil
}

var errExited = errors.New("process exited")

// kill is kill -9 (a crash); it returns once the process is gone.
func (n *node) kill() {
	if !n.running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM (a leader hands over first) and kills the process
// if it has not exited within bound.
func (n *node) stop(bound time.Duration) {
	if !n.running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(bound):
		n.kill()
	}
}

// wait waits (bounded) for the process to exit by itself and returns its
// exit code.
func (n *node) wait(bound time.Duration) (int, error) {
	if n.cmd == nil {
		return 0, fmt.Errorf("node %d never started", n.id)
	}
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode(), nil
	case <-time.After(bound):
		return -1, fmt.Errorf("node %d did not exit within %s", n.id, bound)
	}
}

// tail is the last lines of the node's log.
func (n *node) tail(lines int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// count is how many lines of the node's log contain s.
func (n *node) count(s string) int {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), s)
}

// freePorts returns n distinct loopback ports that were free a moment
// ago: all listeners are held until every port is chosen, so none is
// handed out twice.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// nodeDir prepares data directory root/node<id>; it must not hold a
// previous run's data (the node would restore that cluster instead of
// joining this one).
func nodeDir(root string, id int) (string, error) {
	dir := filepath.Join(root, "node"+strconv.Itoa(id))
	ents, err := os.ReadDir(dir)
	switch {
	case err == nil && len(ents) > 0:
		return "", fmt.Errorf("%s is not empty (left by an earlier run?): give an empty --data-dir", dir)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}
