package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unit is a systemd unit file: section -> key -> values (keys repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// The systemd unit: the keys a production service needs, checked here,
// and the whole file checked by systemd itself (systemd-analyze verify),
// where systemd is installed.
func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("systemd", "ordo.service")
	u := parseUnit(t, path)
	for _, kv := range [][3]string{
		{"Service", "Restart", "on-failure"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "DynamicUser", "yes"},
		{"Service", "StateDirectory", "ordo"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.get(kv[0], kv[1]); got != kv[2] {
			t.Errorf("[%s] %s=%q, want %q", kv[0], kv[1], got, kv[2])
		}
	}
	for _, key := range []string{"LimitNOFILE", "TimeoutStopSec"} {
		if u.get("Service", key) == "" {
			t.Errorf("[Service] %s is missing", key)
		}
	}
	// ExecStart runs `ordo node` with existing flags, its data in the
	// state directory (the only place the service may write).
	exec0 := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec0) < 2 || filepath.Base(exec0[0]) != "ordo" || exec0[1] != "node" {
		t.Fatalf("ExecStart %v: want ordo node ...", exec0)
	}
	known := knownFlags()
	dataDir := ""
	for i := 2; i < len(exec0); i++ {
		name := strings.TrimPrefix(exec0[i], "--")
		if !known[name] {
			t.Fatalf("ExecStart: --%s is not a flag of `ordo node`", name)
		}
		if i+1 < len(exec0) && name == "data-dir" {
			dataDir = exec0[i+1]
		}
		i++
	}
	if want := "/var/lib/" + u.get("Service", "StateDirectory"); dataDir != want {
		t.Fatalf("--data-dir %q, want the state directory %s", dataDir, want)
	}
	if t.Failed() {
		return
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed (Debian package systemd): the unit's keys were checked above, systemd's own verification was not run")
		return
	}
	// verify wants the ExecStart binary to exist: point it at any
	// executable (this test's) in a copy of the unit.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "ordo.service")
	if err := os.WriteFile(cp, []byte(strings.ReplaceAll(string(b), exec0[0], self)), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 even for unknown keys or bad values; it reports them
	// on its output, so any output is a failure.
	out, err := exec.Command(analyze, "verify", cp).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
