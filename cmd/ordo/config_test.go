package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnknownYAMLKeyIsAnError(t *testing.T) {
	cfg := writeFile(t, "n.yml", "id: 1\nprot: 5001\n")
	p := startOrdo(t, 0, nil, "node", "--config", cfg)
	if code := p.ExitCode(10 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Logs(), "prot") || !strings.Contains(p.Logs(), "not found") {
		t.Fatalf("error should name the unknown key:\n%s", p.Logs())
	}
}

// A bad flag or value stops ordo before it serves anything, with a
// non-zero exit and a message that names what is wrong, never a panic.
func TestBadFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"node", "--fsync", "sometimes"}, `fsync must be always`},
		{[]string{"node", "--log-level", "chatty"}, `unknown log level "chatty"`},
		{[]string{"node", "--peers", "1:127.0.0.1:1,x"}, `invalid peer "x"`},
		{[]string{"node", "--max-message-size", "lots"}, `--max-message-size: invalid size "lots"`},
		{[]string{"node", "--segment-size", "-5"}, `--segment-size: invalid size "-5"`},
		{[]string{"node", "--heartbeat-interval", "2s", "--leader-timeout", "1s"}, `must be shorter than leader_timeout`},
		{[]string{"node", "--port", "notaport"}, `invalid value "notaport" for flag -port`},
		{[]string{"node", "--nosuchflag"}, `flag provided but not defined: -nosuchflag`},
	} {
		// Each gets its own data directory: a case that wrongly starts
		// must not share a log with the next.
		args := append(tc.args, "--data-dir", t.TempDir())
		p := startOrdo(t, 0, nil, args...)
		code := p.ExitCode(10 * time.Second)
		stderr := p.Stderr()
		switch {
		case code == 0:
			t.Errorf("%v: exit code 0; output:\n%s", tc.args, p.Logs())
		case code < 0:
			t.Errorf("%v: killed by a signal; output:\n%s", tc.args, p.Logs())
		case !strings.Contains(stderr, tc.want):
			t.Errorf("%v: exit %d, stderr does not say %q:\n%s", tc.args, code, tc.want, stderr)
		case strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine "):
			t.Errorf("%v: exit %d with a panic or stack trace instead of a message:\n%s", tc.args, code, stderr)
		}
	}
}

// Flags beat environment variables, which beat the file, which beats the
// defaults.
func TestConfigPrecedence(t *testing.T) {
	filePort, envPort, flagPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	cfg := writeFile(t, "n.yml", fmt.Sprintf("id: 7\nport: %d\ndata_dir: %s\nlog_level: debug\n", filePort, t.TempDir()))

	p := startOrdo(t, filePort, nil, "node", "--config", cfg)
	if st := testkit.Dial(t, p.Addr).Do("STATUS").StringMap(); st["node_id"] != "7" {
		t.Fatalf("id from file: %+v", st)
	}
	p.WaitLog("DEBUG") // log_level from the file
	p.Kill()

	env := []string{fmt.Sprintf("ORDO_PORT=%d", envPort), "ORDO_LOG_LEVEL=info"}
	p = startOrdo(t, envPort, env, "node", "--config", cfg)
	p.Kill()

	p = startOrdo(t, flagPort, env, "node", "--config", cfg, "--port", fmt.Sprint(flagPort))
	v := testkit.Dial(t, p.Addr).Do("CONFIG", "GET", "port")
	if m := v.StringMap(); len(m) != 1 || m["port"] != fmt.Sprint(flagPort) {
		t.Fatalf("CONFIG GET port: %+v", v)
	}
}

func TestLogFormats(t *testing.T) {
	port := testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, t.TempDir())...)
	p.WaitLog("Loaded 0 messages from log")
	line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - storage\.1 - INFO - Loaded 0 messages from log$`)
	if !line.MatchString(p.Logs()) {
		t.Fatalf("text log line format:\n%s", p.Logs())
	}
	p.Kill()

	port = testkit.FreePort(t)
	p = startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--log-format", "json")...)
	p.WaitLog("Loaded 0 messages from log")
	for _, l := range strings.Split(strings.TrimSpace(p.Logs()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["msg"] == "Loaded 0 messages from log" && m["component"] != "storage.1" {
			t.Fatalf("component missing: %v", m)
		}
	}
}

// The README's "no config needed" command: defaults work (the port is
// taken from ORDO_PORT here only to avoid clashing with a local Redis).
func TestNodeRunsWithNoConfig(t *testing.T) {
	dir := t.TempDir()
	port := testkit.FreePort(t)
	p := testkit.StartOrdo(t, testkit.ProcConfig{Dir: dir, Port: port, Env: []string{fmt.Sprintf("ORDO_PORT=%d", port)}, Args: []string{"node"}})
	r := testkit.Dial(t, p.Addr)
	if v := r.Do("PUBLISH", "chat", "hi"); v.Err() != nil || v.Num != 0 {
		t.Fatalf("publish: %+v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "node1")); err != nil {
		t.Fatalf("default data dir: %v", err)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.ExitCode(10 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d:\n%s", code, p.Logs())
	}
}
