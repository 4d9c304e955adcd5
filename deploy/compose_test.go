package deploy

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// The guide's Docker Compose demo, run for real: the image is built once,
// the compose cluster comes up under a project, container, volume and
// port range of its own (so it runs beside a cluster someone started with
// `make compose`), and it goes through publish/subscribe across nodes, a
// stopped leader, its return, and `down` + `up` with the data kept. It is
// always torn down (`down -v`), also on failure. Without a Docker engine
// it is skipped, saying so.
func TestComposeCluster(t *testing.T) {
	if ok, why := dockerAnswers(); !ok {
		t.Skipf("skipped: no Docker engine answers (%s); this test needs one", why)
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("a Docker engine answers but docker-compose (1.29, v1) is not installed: make deps installs it (Debian package docker-compose)")
	}
	c := newComposeCluster(t)
	c.compose(2*time.Minute, "up", "-d")
	c.waitHealthy(1, 2, 3)
	leader := c.waitLeader(1, 2, 3)
	t.Logf("cluster up (%s), node %d leads", time.Since(c.started).Round(time.Millisecond), leader)

	// Publish on node 2, receive on node 1.
	sub := testkit.Dial(t, c.addr(1))
	if got := sub.Do("SUBSCRIBE", "chat").Strings(); !slices.Equal(got, []string{"subscribe", "chat", "1"}) {
		t.Fatalf("SUBSCRIBE chat on node 1: %q", got)
	}
	var acked []string
	for k := 1; k <= 3; k++ {
		p := c.publish(2, fmt.Sprintf("hello-%d", k))
		acked = append(acked, p)
		if got := sub.Read().Strings(); !slices.Equal(got, []string{"message", "chat", p}) {
			t.Fatalf("node 1's subscriber got %q, want message %q published on node 2", got, p)
		}
	}

	// Every node prints the conversation (print_channels: chat), as the
	// guide's nodes do.
	for i := 1; i <= 3; i++ {
		c.waitPrinted(i, acked...)
	}

	// A running node's data is refused to `ordo log`, across containers.
	out, err := c.docker(time.Minute, "run", "--rm", "-v", c.volume(1)+":/data", c.image, "log", "--data-dir", "/data")
	if err == nil || !strings.Contains(out, "in use by a running ordo node") {
		t.Fatalf("ordo log on node 1's volume while node 1 runs: %v\n%s", err, out)
	}

	// Stop the leader: the survivors agree on a new one and publishing
	// goes on through them.
	stopped := time.Now()
	c.mustDocker(time.Minute, "stop", c.container(leader))
	survivors := slices.DeleteFunc([]int{1, 2, 3}, func(i int) bool { return i == leader })
	acked = append(acked, c.publish(survivors[0], "after-stop"))
	next := c.waitLeader(survivors...)
	if next == leader {
		t.Fatalf("node %d still leads after docker stop", leader)
	}
	t.Logf("docker stop of leader %d: node %d leads, a publish went through in %s", leader, next, time.Since(stopped).Round(time.Millisecond))
	acked = append(acked, c.publish(survivors[1], "while-one-is-down"))

	// Start it again: it rejoins as a follower and catches up.
	c.mustDocker(time.Minute, "start", c.container(leader))
	h := c.waitSameHistory(acked)
	if l := c.waitLeader(1, 2, 3); l == leader {
		// (Stability: a returning node does not depose a healthy leader.)
		t.Fatalf("node %d took leadership back on its return", leader)
	}

	// down keeps the volumes; a stopped node's volume reads with ordo log.
	last := h.Seqs[len(h.Seqs)-1]
	c.compose(2*time.Minute, "down")
	out, err = c.docker(time.Minute, "run", "--rm", "-v", c.volume(1)+":/data", c.image, "log", "--data-dir", "/data", "--json")
	if err != nil {
		t.Fatalf("ordo log on node 1's volume after down: %v", err)
	}
	var logged testkit.History
	clean := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v struct {
			Type    string
			Seq     uint64
			Payload string
			Clean   bool
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("ordo log --json printed %q: %v", line, err)
		}
		switch v.Type {
		case "message":
			logged.Seqs, logged.Payloads = append(logged.Seqs, v.Seq), append(logged.Payloads, v.Payload)
		case "summary":
			clean = v.Clean
		}
	}
	if !slices.Equal(logged.Seqs, h.Seqs) || !slices.Equal(logged.Payloads, h.Payloads) || !clean {
		t.Fatalf("ordo log of node 1's volume: %v %q (clean %v), want the history %v %q", logged.Seqs, logged.Payloads, clean, h.Seqs, h.Payloads)
	}

	// up again: the history is back and numbering continues after it.
	c.compose(2*time.Minute, "up", "-d")
	c.waitLeader(1, 2, 3)
	p := c.publish(3, "after-restart")
	h2 := c.waitSameHistory(append(acked, p))
	if len(h2.Seqs) <= len(h.Seqs) || !slices.Equal(h2.Payloads[:len(h.Payloads)], h.Payloads) {
		t.Fatalf("history after down/up does not extend the one before: %v then %v", h.Payloads, h2.Payloads)
	}
	if first := h2.Seqs[len(h.Seqs)]; first != last+1 || !strings.HasPrefix(h2.Payloads[len(h.Seqs)], "after-restart") {
		t.Fatalf("first message after down/up is seq %d %q, want seq %d", first, h2.Payloads[len(h.Seqs)], last+1)
	}
	t.Logf("whole demo in %s", time.Since(c.started).Round(time.Millisecond))
}

// composeCluster is one run of deploy/docker-compose.yml under names of
// its own.
type composeCluster struct {
	t       *testing.T
	project string   // docker-compose -p
	prefix  string   // ORDO_NAME_PREFIX: containers and volumes
	image   string   // ORDO_IMAGE
	base    string   // ORDO_PORT_BASE: host ports base1..base3
	env     []string // the three variables
	started time.Time
}

// newComposeCluster builds the image (once: it is the one slow step) and
// arranges for everything to be removed when the test ends.
func newComposeCluster(t *testing.T) *composeCluster {
	t.Helper()
	sweepStale(t)
	id := randomID(t)
	c := &composeCluster{t: t, project: "ordo-test-" + id, prefix: "ordo-test-" + id + "-", image: "ordo-test:" + id, base: freePortBase(t)}
	c.env = []string{"ORDO_IMAGE=" + c.image, "ORDO_NAME_PREFIX=" + c.prefix, "ORDO_PORT_BASE=" + c.base}

	start := time.Now()
	env := []string{"ORDO_DOCKER_CONTEXT=" + t.TempDir(), "GO=" + goCommand()}
	if out, err := run(10*time.Minute, env, "./build-image.sh", c.image); err != nil {
		t.Fatalf("building the image: %v", err)
	} else {
		lines := strings.Split(strings.TrimSpace(out), "\n") // (the last one; docker may warn before it)
		t.Logf("%s in %s", lines[len(lines)-1], time.Since(start).Round(time.Millisecond))
	}
	t.Cleanup(func() { run(time.Minute, nil, "docker", "rmi", "-f", c.image) })
	t.Cleanup(func() {
		// Cleanups run even after a t.Fatal: show what the nodes said,
		// then remove containers, network and volumes.
		if t.Failed() {
			out, _ := run(time.Minute, c.env, "docker-compose", "-p", c.project, "-f", "docker-compose.yml", "logs", "--no-color", "--tail=40")
			t.Logf("the nodes' last log lines:\n%s", out)
		}
		if _, err := run(3*time.Minute, c.env, "docker-compose", "-p", c.project, "-f", "docker-compose.yml", "down", "-v", "--timeout", "5"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c.started = time.Now()
	return c
}

func (c *composeCluster) compose(timeout time.Duration, args ...string) {
	c.t.Helper()
	if _, err := run(timeout, c.env, "docker-compose", append([]string{"-p", c.project, "-f", "docker-compose.yml"}, args...)...); err != nil {
		c.t.Fatal(err)
	}
}

// docker runs a docker command.
func (c *composeCluster) docker(timeout time.Duration, args ...string) (string, error) {
	return run(timeout, nil, "docker", args...)
}

// mustDocker runs a docker command that must succeed.
func (c *composeCluster) mustDocker(timeout time.Duration, args ...string) {
	c.t.Helper()
	if _, err := c.docker(timeout, args...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *composeCluster) addr(i int) string      { return fmt.Sprintf("127.0.0.1:%s%d", c.base, i) }
func (c *composeCluster) container(i int) string { return fmt.Sprintf("%schat_node%d", c.prefix, i) }
func (c *composeCluster) volume(i int) string    { return fmt.Sprintf("%schat_node%d_data", c.prefix, i) }

// waitHealthy waits until Docker's health check (`ordo ping` inside the
// container) passes on the nodes.
func (c *composeCluster) waitHealthy(nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		var last string
		testkit.Eventually(c.t, time.Minute, func() bool {
			out, err := run(30*time.Second, nil, "docker", "inspect", "--format", "{{.State.Health.Status}}", c.container(i))
			last = strings.TrimSpace(out)
			return err == nil && last == "healthy"
		}, "node %d's health check (ordo ping) did not pass: %s", i, last)
	}
}

// waitLeader waits until the nodes agree on a leader among them.
func (c *composeCluster) waitLeader(nodes ...int) int {
	c.t.Helper()
	addrs := map[int]string{}
	for _, i := range nodes {
		addrs[i] = c.addr(i)
	}
	var l int
	var last error
	testkit.Eventually(c.t, 30*time.Second, func() bool {
		l, last = agreedLeader(addrs)
		return last == nil
	}, "nodes %v agreed on no leader: %v", nodes, last)
	return l
}

// publish publishes on node i until a PUBLISH is acknowledged, and
// returns the payload that was. Each attempt carries its own payload
// (payload#attempt): one that failed with an uncertain outcome may still
// be delivered, and must not be mistaken for a duplicate.
func (c *composeCluster) publish(i int, payload string) string {
	c.t.Helper()
	var acked, last string
	attempt := 0
	testkit.Eventually(c.t, 30*time.Second, func() bool {
		attempt++
		p := fmt.Sprintf("%s#%d", payload, attempt)
		rc, err := resp.Dial(c.addr(i), testkit.Scale(15*time.Second))
		if err != nil {
			last = err.Error()
			return false
		}
		defer rc.Close()
		v, err := rc.Do("PUBLISH", "chat", p)
		if err != nil || v.Kind != resp.Integer {
			last = fmt.Sprintf("%v %s", err, v.String())
			return false
		}
		acked = p
		return true
	}, "PUBLISH %s on node %d was never acknowledged: %s", payload, i, last)
	return acked
}

// waitSameHistory waits until the three nodes hold the same history of
// chat, numbered 1, 2, 3 ... with no gap, holding every acknowledged
// payload, and returns it.
func (c *composeCluster) waitSameHistory(acked []string) testkit.History {
	c.t.Helper()
	var hs [4]testkit.History
	var last error
	testkit.Eventually(c.t, time.Minute, func() bool {
		for i := 1; i <= 3; i++ {
			h, err := testkit.ReadHistory(c.addr(i), "chat")
			if err != nil {
				last = fmt.Errorf("node %d: %v", i, err)
				return false
			}
			hs[i] = h
		}
		for i := 2; i <= 3; i++ {
			if !slices.Equal(hs[i].Seqs, hs[1].Seqs) || !slices.Equal(hs[i].Payloads, hs[1].Payloads) {
				last = fmt.Errorf("node 1 has %d messages (last %v), node %d has %d (last %v)",
					len(hs[1].Seqs), testkit.Tail(hs[1].Seqs), i, len(hs[i].Seqs), testkit.Tail(hs[i].Seqs))
				return false
			}
		}
		return true
	}, "the nodes' histories did not converge: %v", last)
	h := hs[1]
	for k, s := range h.Seqs {
		if s != uint64(k+1) {
			c.t.Fatalf("history has seq %d at position %d: %v", s, k+1, h.Seqs)
		}
	}
	for _, p := range acked {
		if !slices.Contains(h.Payloads, p) {
			c.t.Fatalf("acknowledged %q is missing from the history %q", p, h.Payloads)
		}
	}
	return h
}

// waitPrinted waits until node i has printed every payload to its
// stdout as the guide's nodes do: "[seq=N] sender: payload".
func (c *composeCluster) waitPrinted(i int, payloads ...string) {
	c.t.Helper()
	var missing string
	testkit.Eventually(c.t, 30*time.Second, func() bool {
		out, err := run(30*time.Second, nil, "docker", "logs", c.container(i))
		if err != nil {
			missing = err.Error()
			return false
		}
		for _, p := range payloads {
			re := regexp.MustCompile(`(?m)^\[seq=\d+\] \S+: ` + regexp.QuoteMeta(p) + `$`)
			if !re.MatchString(out) {
				missing = p
				return false
			}
		}
		return true
	}, "node %d did not print [seq=N] sender: %s (print_channels: chat)", i, missing)
}
