package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// The guide's demo 7 as a user runs it: `ordo scale-test --peers 5`
// starts five nodes of this very binary, runs the whole scenario (joins,
// concurrent publishing, three leader kills, restarts, a leave and a
// join) and exits 0 with a summary that reports no violation.
func TestScaleTestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 5-node cluster through failovers (about 10s, longer under -race)")
	}
	// Under -race the nodes are several times slower: give elections the
	// same slack relative to the work they wait behind.
	lt := testkit.Scale(time.Second)
	bound := testkit.Scale(3 * time.Minute)
	p := testkit.StartOrdo(t, testkit.ProcConfig{Name: "scale-test", Args: []string{"scale-test",
		"--peers", "5", "--data-dir", t.TempDir(),
		"--leader-timeout", lt.String(), "--heartbeat-interval", (lt / 10).String(),
		"--timeout", bound.String()}})
	// The harness stops its nodes within a bound of its own after --timeout.
	if code := p.ExitCode(bound + time.Minute); code != 0 {
		t.Fatalf("scale-test exited with %d:\n%s", code, p.Logs())
	}
	out := p.Logs()
	for _, want := range []string{
		`peers\s+5 \(\+1 joined, 1 left\)`,
		`elections\s+3 leader kills: `,
		`failover\s+median \d`,
		`catch-up\s+max \d.* over 3 restarts`,
		`join\s+voter after \d`,
		`violations\s+none`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("summary lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`published (\d+), acknowledged (\d+)`).FindStringSubmatch(out)
	h := regexp.MustCompile(`history\s+(\d+) entries`).FindStringSubmatch(out)
	if m == nil || h == nil {
		t.Fatalf("summary lacks message counts:\n%s", out)
	}
	pub, _ := strconv.Atoi(m[1])
	ack, _ := strconv.Atoi(m[2])
	entries, _ := strconv.Atoi(h[1])
	// 20 per peer, then probes and a few per survivor after each kill and
	// per peer at the end.
	if pub < 5*20 || ack != pub || entries < ack {
		t.Fatalf("published %d, acknowledged %d, history %d entries:\n%s", pub, ack, entries, out)
	}
	t.Logf("scale-test --peers 5:\n%s", out[strings.Index(out, "[scale] ===== summary"):])
}

// A cluster too small to lose its leader and keep a majority is refused
// before anything starts.
func TestScaleTestRefusesTooFewPeers(t *testing.T) {
	p := testkit.StartOrdo(t, testkit.ProcConfig{Args: []string{"scale-test", "--peers", "2", "--data-dir", t.TempDir()}})
	if code := p.ExitCode(10 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1:\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Stderr(), "at least 3") {
		t.Fatalf("no reason given:\n%s", p.Logs())
	}
}
