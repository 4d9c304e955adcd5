package broker

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Redis's own tools against ordo (Debian's redis-tools; .ci/deps.sh
// installs them).

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed: run `make deps` (Debian package redis-tools): %v", name, err)
	}
	return p
}

// redis-cli --stat shows ordo's memory (INFO memory's used_memory) and
// request counts, not blanks.
func TestRedisCliStat(t *testing.T) {
	cli := lookTool(t, "redis-cli")
	srv := startServer(t, nil)
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// stdbuf: redis-cli buffers a pipe's output until it exits.
	cmd := exec.CommandContext(ctx, lookTool(t, "stdbuf"), "-o0", cli, "-h", "127.0.0.1", "-p", port, "--stat", "-i", "0.1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	// keys mem clients blocked requests connections
	row := regexp.MustCompile(`^0 +([0-9.]+)([BKMG]) +([0-9]+) +0 +([0-9]+) \(\+[0-9]+\) +([0-9]+)`)
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if m[1] == "0" || m[2] == "B" || m[3] == "0" {
			t.Fatalf("implausible --stat row: %q", sc.Text())
		}
		return
	}
	t.Fatalf("redis-cli --stat printed no data row:\n%s", strings.Join(lines, "\n"))
}

// redis-benchmark's default run starts with PING and then SET: it stops
// at SET with an error that says what ordo is.
func TestRedisBenchmarkDefaultRun(t *testing.T) {
	bench := lookTool(t, "redis-benchmark")
	srv := startServer(t, nil)
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bench, "-h", "127.0.0.1", "-p", port, "-q", "-n", "1000").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ctx.Err() != nil {
		t.Fatalf("redis-benchmark should fail at SET, got %v:\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"PING_MBULK: ", "ERR unknown command 'SET'", "ordo is a pub/sub broker", "it serves PUBLISH"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestInfoMemoryAndCPU(t *testing.T) {
	c := dial(t, startServer(t, nil).Addr().String())
	info := c.Do("INFO").String()
	for _, re := range []string{
		`# Memory\r\nused_memory:[1-9][0-9]*\r\nused_memory_human:[0-9.]+[KMG]\r\n`,
		`used_memory_rss:[1-9]`, `used_memory_peak:[1-9]`, `maxmemory_policy:noeviction\r\n`,
		`# CPU\r\nused_cpu_sys:[0-9]+\.[0-9]{6}\r\nused_cpu_user:[0-9]+\.[0-9]{6}\r\n`,
	} {
		if !regexp.MustCompile(re).MatchString(info) {
			t.Errorf("INFO lacks %s:\n%s", re, info)
		}
	}
	if i, j := strings.Index(info, "# Memory"), strings.Index(info, "# Persistence"); i < 0 || j < i {
		t.Errorf("INFO sections not in Redis's order")
	}
}

func TestBytesToHuman(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1.00K", 1536: "1.50K", 10 << 20: "10.00M", 3 << 30: "3.00G"} {
		if got := bytesToHuman(n); got != want {
			t.Errorf("bytesToHuman(%d) = %q, want %q", n, got, want)
		}
	}
}
