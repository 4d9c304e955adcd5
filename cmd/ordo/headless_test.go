package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// headlessProc is `ordo ... --headless` with a pipe to its stdin.
type headlessProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr testkit.Buffer
	done   chan error
}

func headless(t *testing.T, args ...string) *headlessProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(60*time.Second))
	p := &headlessProc{name: args[0], done: make(chan error, 1)}
	p.cmd = exec.CommandContext(ctx, testkit.OrdoBinary(t), args...)
	p.cmd.Stdout = writerFunc(func(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.Write(b) })
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s printed:\n%s", p.name, p.output())
		}
	})
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *headlessProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func (p *headlessProc) say(t *testing.T, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		t.Fatalf("%s: write %q: %v", p.name, line, err)
	}
}

func (p *headlessProc) waitLine(t *testing.T, s string) {
	t.Helper()
	testkit.Eventually(t, screenWait, func() bool { return strings.Contains(p.output(), s) },
		"%s never printed %q", p.name, s)
}

// wait returns how the process ended (nil: exit status 0).
func (p *headlessProc) wait() error {
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(testkit.Scale(screenWait)):
		return fmt.Errorf("still running after %s", testkit.Scale(screenWait))
	}
}
