package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// The guide's demo 7 as a user runs it: `ordo scale-test --peers 5`
// starts five nodes of this very binary, runs the whole scenario (joins,
// concurrent publishing, three leader kills under load, restarts, a
// leave and a join) and exits 0 with a summary that reports no
// violation.
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
	m := regexp.MustCompile(`published (\d+), acknowledged (\d+), uncertain (\d+)`).FindStringSubmatch(out)
	h := regexp.MustCompile(`history\s+(\d+) entries`).FindStringSubmatch(out)
	if m == nil || h == nil {
		t.Fatalf("summary lacks message counts:\n%s", out)
	}
	pub, _ := strconv.Atoi(m[1])
	ack, _ := strconv.Atoi(m[2])
	uncertain, _ := strconv.Atoi(m[3])
	entries, _ := strconv.Atoi(h[1])
	// 20 per peer, then continuous publishing across each kill: every
	// message is acknowledged but those in flight through the killed
	// leader (uncertain), and the history holds at least the acknowledged.
	if pub < 5*20 || pub-ack > uncertain || entries < ack {
		t.Fatalf("published %d, acknowledged %d, uncertain %d, history %d entries:\n%s", pub, ack, uncertain, entries, out)
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

// The harness must be able to fail: a message it never published,
// slipped into the channel behind its back, is reported as a violation,
// the run exits 1 and shows the nodes' logs.
func TestScaleTestReportsForeignMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-node cluster through failovers")
	}
	lt := testkit.Scale(time.Second)
	bound := testkit.Scale(3 * time.Minute)
	p := testkit.StartOrdo(t, testkit.ProcConfig{Name: "scale-test", Args: []string{"scale-test",
		"--peers", "3", "--kills", "1", "--data-dir", t.TempDir(),
		"--leader-timeout", lt.String(), "--heartbeat-interval", (lt / 10).String(),
		"--timeout", bound.String()}})
	p.WaitLog("with --seed 1:")
	m := regexp.MustCompile(`with --seed 1:(\S+)`).FindStringSubmatch(p.Logs())
	if m == nil {
		t.Fatalf("no seed address in the progress:\n%s", p.Logs())
	}
	var v resp.Value
	testkit.EventuallyNoError(t, 20*time.Second, func() error {
		r, err := resp.Dial(m[1], testkit.Scale(5*time.Second))
		if err != nil {
			return err
		}
		defer r.Close()
		if v, err = r.Do("PUBLISH", "scale", "rogue"); err != nil {
			return err
		}
		return v.Err()
	}, "PUBLISH rogue to peer 1 at %s", m[1])
	if code := p.ExitCode(bound + time.Minute); code != 1 {
		t.Fatalf("scale-test exited with %d, want 1:\n%s", code, p.Logs())
	}
	out := p.Logs()
	for _, want := range []string{`VIOLATION`, `"rogue" was never published`, `violations\s+[1-9]`,
		`--- last \d+ lines of \S+node1\.log ---`, `FAILED`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
