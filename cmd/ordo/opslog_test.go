package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// JSON logs carry what a log pipeline filters on as fields of their own
// (component, node, term, seq), not only in the text; the time has
// milliseconds; and the startup banner names the version, the config
// file, the data directory, the listen address and the cluster.
func TestJSONLogFieldsAndStartupBanner(t *testing.T) {
	port := testkit.FreePort(t)
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "ordo.yml")
	yml := fmt.Sprintf("port: %d\ndata_dir: %s\nlog_format: json\nlog_level: debug\n", port, dir)
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startOrdo(t, port, nil, "node", "--config", file)
	c := testkit.Dial(t, p.Addr)
	if v := c.Do("PUBLISH", "news", "hello"); v.Err() != nil {
		t.Fatal(v.Err())
	}
	p.WaitLog("Delivering seq_no=1")

	timeRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(p.Logs()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if ts, _ := m["time"].(string); !timeRE.MatchString(ts) {
			t.Fatalf("time %q is not RFC 3339 UTC with milliseconds: %v", m["time"], m)
		}
		comp, _ := m["component"].(string)
		if comp == "" || strings.Contains(comp, ".") || m["node"] != 1.0 || m["level"] == nil {
			t.Fatalf("want a bare component, node 1 and a level as fields: %v", m)
		}
		lines = append(lines, m)
	}
	find := func(what string, match func(m map[string]any) bool) map[string]any {
		t.Helper()
		for _, m := range lines {
			if match(m) {
				return m
			}
		}
		t.Fatalf("no log line %s in:\n%s", what, p.Logs())
		return nil
	}
	msgIs := func(prefix string) func(map[string]any) bool {
		return func(m map[string]any) bool { s, _ := m["msg"].(string); return strings.HasPrefix(s, prefix) }
	}
	if m := find("Loaded", msgIs("Loaded 0 messages from log")); m["component"] != "storage" {
		t.Fatalf("component of the storage line: %v", m)
	}
	if m := find("Delivering", msgIs("Delivering seq_no=1")); m["seq"] != 1.0 || m["term"] != 1.0 {
		t.Fatalf("want seq 1 and term 1 as fields: %v", m)
	}
	find("with the version and commit", msgIs("===== ordo "))
	find("naming the config file", msgIs("Config file: "+file))
	find("naming the data directory", msgIs("Data directory: "+dir))
	find("naming the listen address", msgIs(fmt.Sprintf("Listening: clients 127.0.0.1:%d, peers 127.0.0.1:%d", port, port)))
	find("naming the cluster and its members", func(m map[string]any) bool {
		s, _ := m["msg"].(string)
		return strings.HasPrefix(s, "Cluster: ") && strings.Contains(s, "members (1): node_1 ")
	})
}
