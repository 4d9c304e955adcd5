package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/urfave/cli/v2"
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
	if !strings.Contains(p.Logs(), `unknown key "prot"`) || !strings.Contains(p.Logs(), "line 2") {
		t.Fatalf("error should name the unknown key:\n%s", p.Logs())
	}
}

// A bad flag or value stops ordo before it serves anything, with a
// non-zero exit and a message that names what is wrong, never a panic.
func TestBadFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string // in stderr
	}{
		{[]string{"node", "--fsync", "sometimes"}, nil, `--fsync`},
		{[]string{"node", "--log-level", "chatty"}, nil, `chatty`},
		{[]string{"node", "--peers", "1:127.0.0.1:1,x"}, nil, `"x"`},
		{[]string{"node", "--max-message-size", "lots"}, nil, `--max-message-size: invalid`},
		{[]string{"node", "--segment-size", "-5"}, nil, `--segment-size`},
		{[]string{"node", "--segment-size", "3gb"}, nil, `--segment-size`},
		{[]string{"node", "--heartbeat-interval", "2s", "--leader-timeout", "1s"}, nil, `must be shorter than leader_timeout`},
		{[]string{"node", "--heartbeat-interval", "soon"}, nil, `--heartbeat-interval`},
		{[]string{"node", "--port", "99999"}, nil, `--port`},
		{[]string{"node", "--port", "notaport"}, nil, `--port`},
		{[]string{"node", "--max-clients", "-3"}, nil, `--max-clients`},
		{[]string{"node", "--nosuchflag"}, nil, `flag provided but not defined: -nosuchflag`},
		{[]string{"node", "--cluster-secret", "a", "--cluster-secret-file", "/nonexistent"}, nil, `cluster`},
		{[]string{"node"}, []string{"ORDO_REJOIN_EMPTY=maybe"}, `maybe`},
		{[]string{"node"}, []string{"ORDO_RETENTION_AGE=-1h"}, `ORDO_RETENTION_AGE`},
		{[]string{"node"}, []string{"ORDO_PEERS=1:127.0.0.1:0"}, `ORDO_PEERS`},
	} {
		// Each gets its own data directory: a case that wrongly starts
		// must not share a log with the next.
		args := append(tc.args, "--data-dir", t.TempDir())
		p := startOrdo(t, 0, tc.env, args...)
		code := p.ExitCode(10 * time.Second)
		stderr := p.Stderr()
		switch {
		case code == 0:
			t.Errorf("%v %v: exit code 0; output:\n%s", tc.env, tc.args, p.Logs())
		case code < 0:
			t.Errorf("%v %v: killed by a signal; output:\n%s", tc.env, tc.args, p.Logs())
		case !strings.Contains(stderr, tc.want):
			t.Errorf("%v %v: exit %d, stderr does not say %q:\n%s", tc.env, tc.args, code, tc.want, stderr)
		case strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine "):
			t.Errorf("%v %v: exit %d with a panic or stack trace instead of a message:\n%s", tc.env, tc.args, code, stderr)
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
	line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - storage\.1 - INFO - Loaded 0 messages from log$`)
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
		if m["msg"] == "Loaded 0 messages from log" && (m["component"] != "storage" || m["node"] != 1.0) {
			t.Fatalf("component or node missing: %v", m)
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

// parseNode runs `ordo node args...` in-process up to the configuration it
// would start with (environment from t.Setenv).
func parseNode(t *testing.T, args ...string) (broker.Config, error) {
	t.Helper()
	var cfg broker.Config
	var cfgErr error
	cmd := nodeCommand()
	cmd.Action = func(c *cli.Context) error {
		cfg, cfgErr = configFromCLI(c)
		return nil
	}
	app := &cli.App{Name: "ordo", Commands: []*cli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard}
	if err := app.Run(append([]string{"ordo", "node"}, args...)); err != nil {
		return cfg, err
	}
	return cfg, cfgErr
}

// Flags beat ORDO_* variables, which beat the file, which beats the
// defaults, for every kind of value: duration, size, bool, list, and a
// nested YAML key.
func TestConfigPrecedenceKinds(t *testing.T) {
	file := writeFile(t, "n.yml", `
heartbeat_interval: 50ms
max_message_size: 2mb
rejoin_empty: true
peers:
  - {id: 1, port: 5001}
  - {id: 2, host: 127.0.0.2, port: 5002}
pubsub_output_buffer: {soft_seconds: 30}
`)
	type view struct {
		hb      time.Duration
		msg     int64
		rejoin  bool
		peers   string
		softSec time.Duration
	}
	get := func(c broker.Config) view {
		var ps []string
		for _, p := range c.Peers {
			ps = append(ps, fmt.Sprintf("%d:%s", p.ID, p.Addr))
		}
		return view{c.HeartbeatInterval, c.Limits.MaxMessageBytes, c.RejoinEmpty, strings.Join(ps, ","), c.Limits.PubsubSoftDuration}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want view
	}{
		{"defaults", nil, nil, view{100 * time.Millisecond, 1 << 20, false, "", 60 * time.Second}},
		{"file", nil, []string{"--config", file}, view{50 * time.Millisecond, 2 << 20, true, "1:127.0.0.1:5001,2:127.0.0.2:5002", 30 * time.Second}},
		{"env over file", map[string]string{
			"ORDO_CONFIG": file, "ORDO_HEARTBEAT_INTERVAL": "70ms", "ORDO_MAX_MESSAGE_SIZE": "3mb", "ORDO_REJOIN_EMPTY": "false",
			"ORDO_PEERS": "1:127.0.0.1:6001,3:127.0.0.1:6003", "ORDO_PUBSUB_OUTPUT_BUFFER_SOFT_SECONDS": "20",
		}, nil, view{70 * time.Millisecond, 3 << 20, false, "1:127.0.0.1:6001,3:127.0.0.1:6003", 20 * time.Second}},
		{"flag over env", map[string]string{
			"ORDO_HEARTBEAT_INTERVAL": "70ms", "ORDO_MAX_MESSAGE_SIZE": "3mb", "ORDO_REJOIN_EMPTY": "false",
			"ORDO_PEERS": "1:127.0.0.1:6001", "ORDO_PUBSUB_OUTPUT_BUFFER_SOFT_SECONDS": "20",
		}, []string{"--config", file, "--heartbeat-interval", "80ms", "--max-message-size", "512kb", "--rejoin-empty",
			"--peers", "1:127.0.0.1:7001", "--pubsub-output-buffer-soft-seconds", "10"},
			view{80 * time.Millisecond, 512 << 10, true, "1:127.0.0.1:7001", 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := parseNode(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := get(cfg); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Every default the table shows is the value a node gets, and --help shows
// it (durations used to show 0s because defaults were applied later).
func TestHelpShowsRealDefaults(t *testing.T) {
	var out bytes.Buffer
	app := &cli.App{Name: "ordo", Commands: []*cli.Command{nodeCommand()}, Writer: &out, ErrWriter: &out}
	if err := app.Run([]string{"ordo", "node", "--help"}); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, o := range broker.Options() {
		line := ""
		for _, l := range strings.Split(help, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "--"+o.Flag()+" ") {
				line = l
			}
		}
		if line == "" || !strings.Contains(line, "$"+o.Env()) {
			t.Errorf("--%s (%s) missing from help:\n%s", o.Flag(), o.Env(), help)
			continue
		}
		if o.Default != "" && !strings.Contains(line, "(default: "+o.Default+")") {
			t.Errorf("help for --%s does not show default %q: %s", o.Flag(), o.Default, line)
		}
	}
	if !strings.Contains(help, "(default: 100ms)") || !strings.Contains(help, "(default: 1mb)") {
		t.Fatalf("help:\n%s", help)
	}
	cfg, err := parseNode(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HeartbeatInterval != 100*time.Millisecond || cfg.Port != broker.DefaultPort || cfg.Limits.MaxRequestBytes != broker.DefaultMaxRequestBytes || cfg.SegmentBytes != broker.DefaultSegmentBytes {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestClusterSecretSources(t *testing.T) {
	secret := writeFile(t, "secret", "s3cret\n")
	cfg, err := parseNode(t, "--cluster-secret-file", secret)
	if err != nil || string(cfg.ClusterSecret) != "s3cret" {
		t.Fatalf("from file: %q, %v", cfg.ClusterSecret, err)
	}
	t.Setenv("ORDO_CLUSTER_SECRET", "fromenv")
	cfg, err = parseNode(t)
	if err != nil || string(cfg.ClusterSecret) != "fromenv" {
		t.Fatalf("from env: %q, %v", cfg.ClusterSecret, err)
	}
	// Both given, by any mix of sources, is an error rather than a silent
	// choice.
	for _, args := range [][]string{
		{"--cluster-secret-file", secret},
		{"--config", writeFile(t, "n.yml", "cluster_secret_file: "+secret+"\n")},
	} {
		if _, err := parseNode(t, args...); err == nil || !strings.Contains(err.Error(), "both") {
			t.Errorf("%v with ORDO_CLUSTER_SECRET: %v", args, err)
		}
	}
	os.Unsetenv("ORDO_CLUSTER_SECRET")
	for name, path := range map[string]string{
		"empty":   writeFile(t, "empty", "\n"),
		"missing": filepath.Join(t.TempDir(), "nope"),
	} {
		if _, err := parseNode(t, "--cluster-secret-file", path); err == nil {
			t.Errorf("%s secret file accepted", name)
		}
	}
	// A cluster beyond loopback needs the secret.
	if _, err := parseNode(t, "--peers", "1:10.0.0.1:5001,2:10.0.0.2:5001"); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("cluster without secret: %v", err)
	}
	if _, err := parseNode(t, "--peers", "1:10.0.0.1:5001,2:10.0.0.2:5001", "--cluster-secret-file", secret); err != nil {
		t.Fatal(err)
	}
}

// The file loader rejects what it does not understand, naming the key.
func TestYAMLStrict(t *testing.T) {
	for body, want := range map[string]string{
		"retention: {bytez: 1}\n":              `unknown key "retention.bytez"`,
		"port: 1\nport: 2\n":                   "port given twice",
		"peers:\n  - {id: 1, prot: 5001}\n":    `unknown peer key "prot"`,
		"heartbeat_interval: soon\n":           "heartbeat_interval",
		"port:\n":                              "port",
		"retention: 5\n":                       "must be a mapping",
		"config: other.yml\n":                  `unknown key "config"`,
		"pubsub_output_buffer: {hard: lots}\n": "pubsub_output_buffer.hard",
	} {
		_, err := parseNode(t, "--config", writeFile(t, "n.yml", body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", body, err, want)
		}
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	paths, _ := filepath.Glob("../../configs/*.yml")
	if len(paths) == 0 {
		t.Fatal("no configs/*.yml")
	}
	for _, p := range paths {
		path := p
		if strings.HasSuffix(p, "_docker.yml") {
			// The Docker configurations name the secret where compose
			// mounts it; here it is read from deploy/ itself.
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			secret, err := filepath.Abs("../../deploy/cluster-secret")
			if err != nil {
				t.Fatal(err)
			}
			body := strings.ReplaceAll(string(b), "/etc/ordo/cluster-secret", secret)
			if body == string(b) {
				t.Errorf("%s does not read the secret compose mounts at /etc/ordo/cluster-secret", p)
			}
			path = writeFile(t, filepath.Base(p), body)
		}
		cfg, err := parseNode(t, "--config", path)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if len(cfg.Peers) != 3 {
			t.Errorf("%s: peers %+v", p, cfg.Peers)
		}
	}
}

// CONFIG GET reports every parameter the table names, and never the
// cluster secret.
func TestConfigGetHidesSecret(t *testing.T) {
	const secret = "do-not-show-me-7f3a"
	port := testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--cluster-secret-file", writeFile(t, "s", secret+"\n"))...)
	got := testkit.Dial(t, p.Addr).Do("CONFIG", "GET", "*").StringMap()
	for k, v := range got {
		if strings.Contains(v, secret) {
			t.Errorf("CONFIG GET %s reveals the secret", k)
		}
	}
	if got["ordo-cluster-secret"] != "yes" {
		t.Errorf("ordo-cluster-secret = %q, want yes", got["ordo-cluster-secret"])
	}
	for _, o := range broker.Options() {
		for _, name := range o.ConfigGet {
			if _, ok := got[name]; !ok {
				t.Errorf("CONFIG GET lacks %s (option %s)", name, o.Key)
			}
		}
	}
	if got["ordo-heartbeat-interval"] != "100" || got["port"] != fmt.Sprint(port) || !strings.HasSuffix(got["client-output-buffer-limit"], "pubsub 33554432 8388608 60") {
		t.Errorf("CONFIG GET values: %v", got)
	}
	if strings.Contains(p.Logs(), secret) {
		t.Errorf("the secret is in the log:\n%s", p.Logs())
	}
}

// A port in use fails at once, before the data directory is created or
// locked (it used to fail after ~10s, after opening the log).
func TestPortInUseFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(t.TempDir(), "data")
	start := time.Now()
	p := startOrdo(t, 0, nil, nodeArgs(port, dir)...)
	code := p.ExitCode(10 * time.Second)
	took := time.Since(start)
	if code == 0 || !strings.Contains(p.Logs(), "address already in use") {
		t.Fatalf("exit code %d:\n%s", code, p.Logs())
	}
	// The old code failed after ~10 s; the untouched data dir below is the
	// real proof it failed first. The bound only catches a regression.
	if took > testkit.Scale(3*time.Second) {
		t.Errorf("took %s to fail, want well under the old 10s", took)
	}
	t.Logf("failed in %s: %s", took, strings.TrimSpace(p.Logs()))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir touched: %v", err)
	}
}

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's configuration table from broker.Options")

const (
	tableBegin = "<!-- options table: generated from broker.Options; go test ./cmd/ordo -run TestREADMEConfigTable -update-readme -->\n"
	tableEnd   = "<!-- end of options table -->\n"
)

// README.md's configuration table is the option table, rendered.
func TestREADMEConfigTable(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", tableBegin, tableEnd)
	}
	want := readme[:i+len(tableBegin)] + markdownTable() + readme[j:]
	if want == readme {
		return
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("README.md's configuration table is out of date: run go test ./cmd/ordo -run TestREADMEConfigTable -update-readme")
}

func markdownTable() string {
	var b strings.Builder
	b.WriteString("| flag | env | YAML | default | CONFIG GET | meaning |\n| --- | --- | --- | --- | --- | --- |\n")
	code := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	for _, o := range broker.Options() {
		flagName := code("--" + o.Flag())
		if o.Alias != "" {
			flagName += ", " + code("-"+o.Alias)
		}
		key := ""
		if !o.NoYAML {
			key = code(o.Key)
		}
		var gets []string
		for _, g := range o.ConfigGet {
			gets = append(gets, code(g))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", flagName, code(o.Env()), key, code(o.Default),
			strings.Join(gets, ", "), strings.ReplaceAll(o.Usage, "|", `\|`))
	}
	return b.String()
}
