package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, testkit.WithOrdo()) }

func TestParseRPS(t *testing.T) {
	out := "PUBLISH bench xxx: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\r" +
		"PUBLISH bench xxx: rps=120000.0 (overall: 118000.0) avg_msec=1.2\r" +
		"PUBLISH bench xxx: 283286.12 requests per second, p50=2.639 msec                    \n\n"
	if v, err := parseRPS(out); err != nil || v != 283286.12 {
		t.Errorf("parseRPS = %v, %v", v, err)
	}
	if _, err := parseRPS("Could not connect to Redis at 127.0.0.1:1: Connection refused\n"); err == nil {
		t.Error("parseRPS of an error must fail")
	}
}

func TestParseCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (ordo (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0"
	if v, err := parseCPU(stat); err != nil || v != 3.25 {
		t.Errorf("parseCPU = %v, %v; want 3.25 (325 ticks)", v, err)
	}
	if _, err := parseCPU("garbage"); err == nil {
		t.Error("parseCPU of garbage must fail")
	}
}

func TestSelectGroups(t *testing.T) {
	sel, err := selectGroups("fanout,cpu,js-always-sync")
	if err != nil {
		t.Fatal(err)
	}
	if len(sel) != 3 || !sel["fanout"] || !sel["never"] || !sel["jetstream"] {
		t.Errorf("selectGroups = %v", sel)
	}
	if all, _ := selectGroups("all"); len(all) != len(groups) {
		t.Errorf("all selects %d groups", len(all))
	}
	if _, err := selectGroups("fanout,nosuch"); err == nil || !strings.Contains(err.Error(), "latency") {
		t.Errorf("an unknown row must fail and name the valid ones: %v", err)
	}
}

func TestQuickFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-catchup", "777"})
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 1 || c.requests != 20_000 || c.restart != 50_000 || c.catchup != 777 {
		t.Errorf("quick config: %+v", c)
	}
	c, _ = parseFlags([]string{"-quick", "-runs", "2"})
	if c.runs != 2 {
		t.Errorf("an explicit -runs must win over -quick: %d", c.runs)
	}
	c, _ = parseFlags(nil)
	if c.runs != 3 || c.restart != 10_000_000 || c.catchup != 1_000_000 || c.fanoutSubs != 1000 || c.latencyRate != 10_000 {
		t.Errorf("default config: %+v", c)
	}
}

// TestQuickSuite runs the suite's quick mode on two cheap rows against
// real servers: the one-node fsync-never throughput and CPU rows (with
// redis-benchmark and redis-server) and the restart rows (fill, stop,
// start, time and RSS). Both are one-node rows: a three-node row under
// -race on a machine kept busy can see its publishes time out, which
// says nothing about the suite's plumbing. It needs redis-server and
// redis-benchmark (make deps), and fails without them.
func TestQuickSuite(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed (make deps): %v", bin, err)
		}
	}
	out := filepath.Join(t.TempDir(), "suite")
	cfg, err := parseFlags([]string{"-quick", "-runs", "2", "-rows", "never,restart", "-out", out,
		"-ordo", testkit.OrdoBinary(t), "-requests", "5000", "-requests-p1", "2000", "-restart", "20000"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(60*time.Second))
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	rep, err := run(ctx, cfg, &stdout, &stderr)
	t.Logf("took %s\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	want := []string{"never-P16", "never-P1", "cpu", "restart-time", "restart-rss"}
	if len(rep.Rows) != len(want) {
		t.Fatalf("rows %d, want %v", len(rep.Rows), want)
	}
	for i, r := range rep.Rows {
		if r.ID != want[i] {
			t.Errorf("row %d is %s, want %s", i, r.ID, want[i])
		}
		refs := 2
		if r.RefName == "" { // the restart rows have no reference
			refs = 0
		}
		if !r.Measured() || len(r.Ordo) != 2 || len(r.Ref) != refs {
			t.Errorf("row %s not measured twice on each side: %+v\n%s", r.ID, r, stderr.String())
			continue
		}
		for _, v := range append(r.Ordo, r.Ref...) {
			if !(v > 0) {
				t.Errorf("row %s has a non-positive measurement: %v", r.ID, v)
			}
		}
		if _, ok := r.Met(); !ok {
			t.Errorf("row %s cannot be judged against its goal", r.ID)
		}
	}
	for _, s := range []string{"ordo benchmark suite", "load average at start", "cores", "met?", "CPU per PUBLISH", "wrote "} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
	f, err := os.Open(out + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != 1+len(want) {
		t.Errorf("CSV: %v, %d records", err, len(recs))
	}
	for _, ext := range []string{".json", ".png", ".md", ".log"} {
		if st, err := os.Stat(out + ext); err != nil || (ext != ".log" && st.Size() == 0) {
			t.Errorf("%s%s: %v", out, ext, err)
		}
	}
}
