package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// Helpers of the compose test: running docker and docker-compose with
// bounded time, and reading the cluster through its published ports.

func TestMain(m *testing.M) { testkit.Main(m) }

// run runs a command with a time bound and returns its combined output;
// the error says which command failed and what it printed.
func run(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// docker-compose is Python with children of its own: a timeout must
	// not leave them holding the output pipe.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// dockerAnswers reports whether a Docker engine answers, and if not why.
func dockerAnswers() (bool, string) {
	if _, err := exec.LookPath("docker"); err != nil {
		return false, "no docker command on PATH"
	}
	if out, err := run(30*time.Second, nil, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		if strings.TrimSpace(out) == "" {
			out = err.Error()
		}
		return false, "docker info failed: " + firstLine(out)
	}
	return true, ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// randomID is a short random name part, so parallel runs never share
// containers, volumes, networks or images.
func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePortBase picks B such that host ports B1, B2, B3 (the compose
// file's ${ORDO_PORT_BASE}1..3) are free now, away from the default 500
// of a cluster someone may be running.
func freePortBase(t *testing.T) string {
	t.Helper()
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(250))
		if err != nil {
			t.Fatal(err)
		}
		base := 400 + int(n.Int64()) // ports 4001 .. 6493
		if base == 500 {
			continue
		}
		free := true
		for i := 1; i <= 3 && free; i++ {
			// Docker publishes on every address: check the wildcard.
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d%d", base, i))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return strconv.Itoa(base)
		}
	}
	t.Fatal("found no free host ports for the compose cluster")
	return ""
}

// goCommand is the go tool that runs this test (CI's PATH may lack it).
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// agreedLeader returns the leader every node at addrs agrees on (same
// leader_id and term, the leader among them and reporting itself
// leader), or why there is none.
func agreedLeader(addrs map[int]string) (int, error) {
	var lead, term string
	ids := slices.Sorted(maps.Keys(addrs))
	sts := map[int]map[string]string{}
	for _, i := range ids {
		st, err := testkit.Status(addrs[i])
		if err != nil {
			return 0, fmt.Errorf("node %d: %v", i, err)
		}
		sts[i] = st
		if lead == "" {
			lead, term = st["leader_id"], st["term"]
		}
		if st["leader_id"] != lead || st["term"] != term {
			return 0, fmt.Errorf("no agreement: node %d follows %q in term %s, node %d %q in term %s", ids[0], lead, term, i, st["leader_id"], st["term"])
		}
	}
	l, _ := strconv.Atoi(lead)
	if st, ok := sts[l]; !ok || st["role"] != "leader" {
		return 0, fmt.Errorf("leader %q is not among the nodes %v, or does not say it leads", lead, ids)
	}
	return l, nil
}

// staleAfter is the age past which an ordo-test-* project or image is
// taken for the remains of a run that could not clean up (a `go test`
// timeout panics without running cleanups); no run lasts that long.
const staleAfter = time.Hour

// sweepStale removes what earlier runs of this test left behind: their
// containers (which would otherwise restart with Docker and hold ports),
// networks, volumes and images.
func sweepStale(t *testing.T) {
	t.Helper()
	old := func(created string) bool {
		at, err := time.Parse("2006-01-02 15:04:05 -0700 MST", created)
		return err == nil && time.Since(at) > staleAfter
	}
	out, _ := run(30*time.Second, nil, "docker", "ps", "-a", "--filter", "name=ordo-test-",
		"--format", `{{.Label "com.docker.compose.project"}}|{{.CreatedAt}}`)
	projects := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		project, created, _ := strings.Cut(line, "|")
		if strings.HasPrefix(project, "ordo-test-") && old(created) {
			projects[project] = true
		}
	}
	for p := range projects {
		t.Logf("removing %s, left behind by an earlier run", p)
		run(3*time.Minute, []string{"ORDO_NAME_PREFIX=" + p + "-"}, "docker-compose", "-p", p, "-f", "docker-compose.yml", "down", "-v", "--timeout", "5")
	}
	out, _ = run(30*time.Second, nil, "docker", "images", "ordo-test", "--format", "{{.Repository}}:{{.Tag}}|{{.CreatedAt}}")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if image, created, _ := strings.Cut(line, "|"); image != "" && old(created) {
			run(time.Minute, nil, "docker", "rmi", "-f", image)
		}
	}
}
