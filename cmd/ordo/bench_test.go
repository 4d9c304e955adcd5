package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/bench/report"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// A short `ordo bench` against a real node: two runs land as two CSV rows
// and two JSON objects with their samples, the plot is a PNG, the table
// and the progress lines are printed, and `--json -` prints JSON alone on
// standard output as the old boolean --json did.
func TestBenchWritesFiles(t *testing.T) {
	port := testkit.FreePort(t)
	dir := t.TempDir()
	startOrdo(t, port, nil, nodeArgs(port, filepath.Join(dir, "data"))...)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testkit.Eventually(t, testkit.Scale(10*time.Second), func() bool {
		st, err := testkit.Status(addr)
		return err == nil && st["role"] == "leader"
	}, "the node did not become leader")

	csvPath, jsonPath, pngPath := filepath.Join(dir, "runs.csv"), filepath.Join(dir, "runs.json"), filepath.Join(dir, "run.png")
	common := []string{"bench", "--port", fmt.Sprint(port), "--clients", "4", "--pipeline", "4", "--subscribers", "2"}
	stdout, stderr, code := runOrdo(t, append(common, "--duration", "600ms", "--interval", "200ms", "--runs", "2",
		"--csv", csvPath, "--json", jsonPath, "--plot", pngPath)...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"run 1: ", "run 2: ", "median of 2 runs", "published ", "delivered ", "end-to-end ", "p99.9", "wrote " + csvPath} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// Standard error is not a terminal here: plain progress lines.
	if !strings.Contains(stderr, "run 1/2 ") || !strings.Contains(stderr, "run 2/2 ") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on stderr:\n%q", stderr)
	}

	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || !slices.Equal(recs[0], report.CSVHeader) {
		t.Fatalf("CSV: want the header and 2 rows, got %q", recs)
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var runs []report.Run
	for dec := json.NewDecoder(bytes.NewReader(b)); dec.More(); {
		var r report.Run
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("JSON: %v\n%s", err, b)
		}
		runs = append(runs, r)
	}
	if len(runs) != 2 {
		t.Fatalf("JSON: %d runs, want 2", len(runs))
	}
	for i, r := range runs {
		if r.Index != i+1 || r.Params.Clients != 4 || r.Published == 0 || r.Errors != 0 || r.Delivered != r.Expected || len(r.Samples) < 2 {
			t.Errorf("run %d: index %d, %d clients, %d published, %d errors, %d/%d delivered, %d samples",
				i+1, r.Index, r.Params.Clients, r.Published, r.Errors, r.Delivered, r.Expected, len(r.Samples))
		}
	}

	pf, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(pf)
	pf.Close()
	if err != nil {
		t.Fatalf("plot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 500 {
		t.Fatalf("plot is %dx%d", b.Dx(), b.Dy())
	}

	stdout, stderr, code = runOrdo(t, append(common, "--duration", "300ms", "--json", "-", "-q")...)
	var r report.Run
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || r.Published == 0 {
		t.Fatalf("--json -: exit %d, %v, %d published\nstdout:\n%s\nstderr:\n%s", code, err, r.Published, stdout, stderr)
	}
	if !strings.Contains(stderr, "end-to-end") {
		t.Errorf("--json -: the table belongs on stderr:\n%s", stderr)
	}

	// The old boolean form would take the next flag as the file name.
	_, stderr, code = runOrdo(t, append(common, "--json", "--runs", "2")...)
	if code != 2 || !strings.Contains(stderr, "--json takes a file name") {
		t.Fatalf("--json --runs 2: exit %d\n%s", code, stderr)
	}
}
