package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// A test kit for driving real terminals: every test gets its own tmux
// server (its own socket, no user configuration), each terminal is a
// detached 120x40 session running the ordo binary, and a test types with
// send-keys and reads the screen with capture-pane. Waits poll the
// screen for what they expect; nothing sleeps and hopes.

// tmuxServer is one test's tmux server.
type tmuxServer struct {
	t      *testing.T
	socket string
}

const termWidth, termHeight = 120, 40

func newTmux(t *testing.T) *tmuxServer {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is not installed (make deps installs it): %v", err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	s := &tmuxServer{t: t, socket: fmt.Sprintf("ordo-test-%d-%s", os.Getpid(), name)}
	t.Cleanup(func() {
		// The programs in the panes first: kill-server only hangs up
		// their terminals, and a node takes SIGHUP as "reload", not
		// "exit" (Redis's convention), so it would outlive the test.
		if out, err := s.run("list-panes", "-a", "-F", "#{pane_pid}"); err == nil {
			for _, f := range strings.Fields(out) {
				sh, _ := strconv.Atoi(f)
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", sh, sh))
				for _, c := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(c); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		// The server does not always remove its socket file: do.
		path, err := s.run("display-message", "-p", "#{socket_path}")
		s.run("kill-server")
		if path = strings.TrimSpace(path); err == nil && strings.Contains(path, s.socket) {
			os.Remove(path)
		}
	})
	return s
}

// run runs one tmux command against this test's server.
func (s *tmuxServer) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(10*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-L", s.socket, "-f", "/dev/null"}, args...)...)
	// A test run from inside tmux must not talk to that tmux.
	cmd.Env = append(os.Environ(), "TMUX=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *tmuxServer) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("tmux %q: %v\n%s", args, err, out)
	}
	return out
}

// pane is one terminal: a tmux session running `ordo args...`.
type pane struct {
	s      *tmuxServer
	t      *testing.T
	name   string
	status string // file the shell writes ordo's exit status to
}

// shellCommand runs the ordo binary with args in a shell that then
// writes its exit status to statusFile (tmux's pane_dead_status is not
// always filled in after kill -9). The shell, not ordo, is the pane's
// process, so pid finds ordo as its child.
func shellCommand(t *testing.T, statusFile string, args []string) string {
	q := []string{shellQuote(testkit.OrdoBinary(t))}
	for _, a := range args {
		q = append(q, shellQuote(a))
	}
	return strings.Join(q, " ") + `; s=$?; echo $s > ` + shellQuote(statusFile) + `; exit $s`
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// start opens a terminal named name running `ordo args...`.
func (s *tmuxServer) start(name string, args ...string) *pane {
	s.t.Helper()
	p := &pane{s: s, t: s.t, name: name, status: filepath.Join(s.t.TempDir(), "exit-status")}
	s.must("new-session", "-d", "-s", name, "-x", strconv.Itoa(termWidth), "-y", strconv.Itoa(termHeight),
		shellCommand(s.t, p.status, args),
		";", "set-option", "-t", name, "remain-on-exit", "on",
		";", "set-option", "-t", name, "status", "off")
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.t.Logf("terminal %s at the end:\n%s", name, p.screen())
		}
	})
	return p
}

// restart runs `ordo args...` again in the terminal (its last run ended).
func (p *pane) restart(args ...string) {
	p.t.Helper()
	os.Remove(p.status)
	p.s.must("respawn-pane", "-k", "-t", p.name, shellCommand(p.t, p.status, args))
}

// typeLine types text and presses Enter.
func (p *pane) typeLine(text string) {
	p.t.Helper()
	p.typeText(text)
	p.keys("Enter")
}

// typeText types text without pressing Enter.
func (p *pane) typeText(text string) {
	p.t.Helper()
	p.s.must("send-keys", "-t", p.name, "-l", text)
}

// keys sends keys by tmux name (Enter, C-c, C-u, PageUp).
func (p *pane) keys(keys ...string) {
	p.t.Helper()
	p.s.must(append([]string{"send-keys", "-t", p.name}, keys...)...)
}

// screen is what the terminal shows now, one string per row, trailing
// blanks trimmed.
func (p *pane) screen() string {
	return p.capture()
}

// scrollback is the screen with the rows that scrolled off it above:
// what a program printed after leaving the full screen (which tmux may
// scroll away when the pane dies) is there.
func (p *pane) scrollback() string { return p.capture("-S", "-100") }

func (p *pane) capture(opts ...string) string {
	out, err := p.s.run(append([]string{"capture-pane", "-p", "-t", p.name}, opts...)...)
	if err != nil {
		return "(capture-pane failed: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// waitScreen polls the screen until cond holds and returns that screen.
func (p *pane) waitScreen(timeout time.Duration, what string, cond func(screen string) bool) string {
	p.t.Helper()
	var last string
	testkit.Eventually(p.t, timeout, func() bool {
		last = p.screen()
		return cond(last)
	}, "terminal %s never showed %s; its screen:\n%s", p.name, what, lazyText{&last})
	return last
}

// lazyScreen shows a terminal's screen as it is when the message is
// printed.
type lazyScreen struct{ p *pane }

func (l lazyScreen) String() string { return l.p.screen() }

// lazyText shows a string as it is when the message is printed.
type lazyText struct{ s *string }

func (l lazyText) String() string { return *l.s }

// waitText waits until the screen shows every one of texts.
func (p *pane) waitText(timeout time.Duration, texts ...string) string {
	p.t.Helper()
	return p.waitScreen(timeout, fmt.Sprintf("%q", texts), func(s string) bool {
		for _, x := range texts {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}

// waitExit waits for the program to end and returns its exit status.
func (p *pane) waitExit(timeout time.Duration) int {
	p.t.Helper()
	var st string
	testkit.Eventually(p.t, timeout, func() bool {
		b, err := os.ReadFile(p.status)
		st = strings.TrimSpace(string(b))
		return err == nil && st != ""
	}, "terminal %s: the program did not exit; its screen:\n%s", p.name, lazyScreen{p})
	n, err := strconv.Atoi(st)
	if err != nil {
		p.t.Fatalf("terminal %s: exit status %q", p.name, st)
	}
	return n
}

// pid is the ordo process's id: the child of the pane's shell.
func (p *pane) pid() int {
	p.t.Helper()
	sh, err := strconv.Atoi(strings.TrimSpace(p.s.must("display-message", "-p", "-t", p.name, "#{pane_pid}")))
	if err != nil {
		p.t.Fatalf("pane pid: %v", err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", sh, sh))
	if err != nil {
		p.t.Fatalf("children of the pane's shell: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		p.t.Fatalf("the pane's shell has children %q, want the ordo process alone", f)
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// kill9 kills the ordo process as a crash would and waits until it is
// gone.
func (p *pane) kill9() {
	p.t.Helper()
	if err := syscall.Kill(p.pid(), syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9: %v", err)
	}
	if st := p.waitExit(10 * time.Second); st != 128+int(syscall.SIGKILL) {
		p.t.Fatalf("killed peer exited with status %d", st)
	}
}

// chatLine is one conversation line on a screen.
type chatLine struct {
	seq          uint64
	sender, text string
}

var chatRE = regexp.MustCompile(`^\[seq=(\d+)\] (\S+): (.*)$`)

// chatLines are the conversation lines a screen shows, top to bottom.
func chatLines(screen string) []chatLine {
	var out []chatLine
	for _, l := range strings.Split(screen, "\n") {
		if m := chatRE.FindStringSubmatch(l); m != nil {
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			out = append(out, chatLine{seq, m[2], m[3]})
		}
	}
	return out
}

// lastLine is the bottom row of a screen: the input line.
func lastLine(screen string) string {
	return screen[strings.LastIndex(screen, "\n")+1:]
}

// since is the part of a screen after the last occurrence of marker
// (all of it if marker is absent): the output of the latest command.
func since(screen, marker string) string {
	if i := strings.LastIndex(screen, marker); i >= 0 {
		return screen[i:]
	}
	return screen
}
