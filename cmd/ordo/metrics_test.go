package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// A three-node cluster with --metrics-addr on every node: all are ready,
// the leader reports itself as leader and its followers' lag, a follower
// as follower. Kill the follower's two peers and its /readyz turns 503
// with a one-line reason, while /healthz stays 200.
func TestMetricsClusterReadyz(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	metricsAddr := make([]string, c.N+1)
	for _, i := range c.All() {
		metricsAddr[i] = fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
		c.Args = []string{"--metrics-addr", metricsAddr[i]}
		c.Start(i)
	}
	// Started one by one (each with its own port), so settle formation
	// as StartAll does: the highest id takes over from whoever led first.
	testkit.Eventually(t, testkit.LeaderTimeout, func() bool { return c.WaitLeader() == c.N },
		"the cluster did not settle on node %d as leader", c.N)
	leader, followers := c.Followers()
	for _, i := range c.All() {
		testkit.EventuallyNoError(t, 10*time.Second, func() error {
			return expectHTTP(metricsAddr[i]+"/readyz", http.StatusOK, "ready")
		}, "node %d ready", i)
	}

	want := map[int]string{leader: "leader", followers[0]: "follower", followers[1]: "follower"}
	for i, role := range want {
		m, err := testkit.Scrape(metricsAddr[i])
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if v, err := m.Value("ordo_role", "role", role); err != nil || v != 1 {
			t.Errorf("node %d: ordo_role{role=%q} = %g (%v), want 1", i, role, v, err)
		}
		if v, err := m.Value("ordo_leader_id"); err != nil || v != float64(leader) {
			t.Errorf("node %d: ordo_leader_id = %g (%v), want %d", i, v, err, leader)
		}
		if v, err := m.Value("ordo_voters"); err != nil || v != 3 {
			t.Errorf("node %d: ordo_voters = %g (%v), want 3", i, v, err)
		}
	}
	// The leader alone knows its followers' progress.
	testkit.EventuallyNoError(t, 10*time.Second, func() error {
		m, err := testkit.Scrape(metricsAddr[leader])
		if err != nil {
			return err
		}
		wantMembers := []string{strconv.Itoa(followers[0]), strconv.Itoa(followers[1])}
		if got := m.LabelValues("ordo_member_lag_entries", "member"); strings.Join(got, ",") != strings.Join(wantMembers, ",") {
			return fmt.Errorf("ordo_member_lag_entries for members %v, want %v", got, wantMembers)
		}
		for _, f := range wantMembers {
			if v, err := m.Value("ordo_member_reachable", "member", f); err != nil || v != 1 {
				return fmt.Errorf("ordo_member_reachable{member=%s} = %g (%v), want 1", f, v, err)
			}
		}
		return nil
	}, "leader %d reports its followers", leader)

	survivor := followers[0]
	for _, i := range testkit.Except(c.All(), survivor) {
		c.Proc(i).Kill()
	}
	var body string
	testkit.EventuallyNoError(t, 20*time.Second, func() error {
		code, b, err := testkit.HTTPGet("http://" + metricsAddr[survivor] + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz: %d %q, want 503", code, b)
		}
		body = b
		return nil
	}, "node %d not ready once its two peers are gone", survivor)
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz body %q: want one line giving the reason", body)
	}
	if err := expectHTTP(metricsAddr[survivor]+"/healthz", http.StatusOK, "ok"); err != nil {
		t.Error(err)
	}
	t.Logf("node %d /readyz: %s", survivor, strings.TrimSpace(body))
}

func expectHTTP(url string, code int, body string) error {
	got, b, err := testkit.HTTPGet("http://" + url)
	if err != nil {
		return err
	}
	if got != code || strings.TrimSpace(b) != body {
		return fmt.Errorf("GET %s: %d %q, want %d %q", url, got, b, code, body)
	}
	return nil
}

// `ordo node` with a metrics port already in use exits at once, naming
// the option, and leaves no data directory behind.
func TestMetricsAddrBusyProcess(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "node1")
	p := testkit.StartOrdo(t, testkit.ProcConfig{Args: []string{"node", "--port", strconv.Itoa(testkit.FreePort(t)),
		"--data-dir", dir, "--metrics-addr", busy.Addr().String()}})
	if code := p.ExitCode(10 * time.Second); code == 0 {
		t.Fatalf("ordo node exited 0 with a busy metrics port:\n%s", p.Logs())
	}
	if want := "metrics_addr " + busy.Addr().String(); !strings.Contains(p.Stderr(), want) {
		t.Errorf("stderr does not name %q:\n%s", want, p.Stderr())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory created despite the failure: %v", err)
	}
}
