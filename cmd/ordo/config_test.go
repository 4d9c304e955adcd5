package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
	if code := p.exitCode(10 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, p.logs())
	}
	if !strings.Contains(p.logs(), "prot") || !strings.Contains(p.logs(), "not found") {
		t.Fatalf("error should name the unknown key:\n%s", p.logs())
	}
}

func TestBadFlagValues(t *testing.T) {
	for _, args := range [][]string{
		{"node", "--fsync", "sometimes"},
		{"node", "--log-level", "chatty"},
		{"node", "--peers", "1:127.0.0.1:1,x"},
		{"node", "--max-message-size", "lots"},
		{"node", "--heartbeat-interval", "2s", "--leader-timeout", "1s"},
	} {
		p := startOrdo(t, 0, nil, args...)
		if code := p.exitCode(10 * time.Second); code == 0 {
			t.Errorf("%v: exit code 0; output:\n%s", args, p.logs())
		}
	}
}

// Flags beat environment variables, which beat the file, which beats the
// defaults.
func TestConfigPrecedence(t *testing.T) {
	filePort, envPort, flagPort := freePort(t), freePort(t), freePort(t)
	cfg := writeFile(t, "n.yml", fmt.Sprintf("id: 7\nport: %d\ndata_dir: %s\nlog_level: debug\n", filePort, t.TempDir()))

	p := startOrdo(t, filePort, nil, "node", "--config", cfg)
	if st := dialOrdo(t, p.addr).do("STATUS"); st.arr[1].s != "7" {
		t.Fatalf("id from file: %+v", st)
	}
	p.waitLog("DEBUG") // log_level from the file
	p.kill()

	env := []string{fmt.Sprintf("ORDO_PORT=%d", envPort), "ORDO_LOG_LEVEL=info"}
	p = startOrdo(t, envPort, env, "node", "--config", cfg)
	p.kill()

	p = startOrdo(t, flagPort, env, "node", "--config", cfg, "--port", fmt.Sprint(flagPort))
	v := dialOrdo(t, p.addr).do("CONFIG", "GET", "port")
	if len(v.arr) != 2 || v.arr[1].s != fmt.Sprint(flagPort) {
		t.Fatalf("CONFIG GET port: %+v", v)
	}
}

func TestLogFormats(t *testing.T) {
	port := freePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, t.TempDir())...)
	p.waitLog("Loaded 0 messages from log")
	line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - storage\.1 - INFO - Loaded 0 messages from log$`)
	if !line.MatchString(p.logs()) {
		t.Fatalf("text log line format:\n%s", p.logs())
	}
	p.kill()

	port = freePort(t)
	p = startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--log-format", "json")...)
	p.waitLog("Loaded 0 messages from log")
	for _, l := range strings.Split(strings.TrimSpace(p.logs()), "\n") {
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
	port := freePort(t)
	p := startOrdoIn(t, dir, port, []string{fmt.Sprintf("ORDO_PORT=%d", port)}, "node")
	r := dialOrdo(t, p.addr)
	if v := r.do("PUBLISH", "chat", "hi"); v.s != "0" {
		t.Fatalf("publish: %+v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "node1")); err != nil {
		t.Fatalf("default data dir: %v", err)
	}
	p.signal(sigTerm)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d:\n%s", code, p.logs())
	}
}
