// Command suite is `make bench`: every row of issue 10's performance
// table measured side by side with redis-server and, where installed,
// NATS JetStream, runs interleaved with the reference's, medians and
// ratios printed as a table with each row's goal, and the whole run
// written as CSV, JSON (every run of every row), Markdown and a PNG chart.
//
//	make bench                                   (all rows, about 20-40 minutes)
//	go run ./bench/suite -rows fanout,latency    (some rows)
//	go run ./bench/suite -quick                  (small sizes: a smoke run)
//
// Linux only (/proc for CPU and memory). Everything on 127.0.0.1. The
// servers' own output goes to <out>.log.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordo-broker/ordo/bench/suite/scorecard"
)

// config is what the flags set.
type config struct {
	ordoBin, redisBin, natsBin, xrangeBin string
	rows                                  string
	out                                   string
	runs                                  int
	quick                                 bool
	size                                  int
	requests, requestsP1                  int
	fanoutSubs                            int
	fanoutDur                             time.Duration
	latencyRate                           float64
	latencyDur                            time.Duration
	catchup, restart, xrangeEntries       int
}

// groups are the suite's parts in the order they run; each measures one
// or more rows. -rows takes group names or row ids.
var groups = []struct {
	name string
	rows []string
}{
	{"always", []string{"always-P16", "always-P1"}},
	{"never", []string{"never-P16", "never-P1", "cpu"}},
	{"cluster", []string{"cluster-P16", "cluster-P1"}},
	{"jetstream", []string{"js-always-async", "js-always-sync", "js-default-async", "js-default-sync"}},
	{"fanout", []string{"fanout"}},
	{"latency", []string{"latency"}},
	{"catchup", []string{"catchup"}},
	{"restart", []string{"restart-time", "restart-rss"}},
	{"xrange", []string{"xrange"}},
}

// selectGroups turns -rows into the set of groups to run.
func selectGroups(spec string) (map[string]bool, error) {
	sel := map[string]bool{}
	if spec == "" || spec == "all" {
		for _, g := range groups {
			sel[g.name] = true
		}
		return sel, nil
	}
	var known []string
next:
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		known = known[:0]
		for _, g := range groups {
			known = append(known, g.name)
			if f == g.name {
				sel[g.name] = true
				continue next
			}
			for _, r := range g.rows {
				if f == r {
					sel[g.name] = true
					continue next
				}
			}
		}
		return nil, fmt.Errorf("unknown row %q: give any of %s (or a row id)", f, strings.Join(known, ","))
	}
	return sel, nil
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.StringVar(&c.ordoBin, "ordo", "bin/ordo", "ordo binary")
	fs.StringVar(&c.redisBin, "redis", "redis-server", "redis-server binary")
	fs.StringVar(&c.natsBin, "nats", "", "nats-server binary (default: nats-server on PATH, else bin/benchdeps/nats-server; none: JetStream rows not run)")
	fs.StringVar(&c.xrangeBin, "xrange", "bin/bench-xrange", "bench/xrange binary, for the xrange row")
	fs.StringVar(&c.rows, "rows", "all", "rows to run, comma-separated groups or row ids: "+groupNames())
	fs.StringVar(&c.out, "out", "data/bench/suite", "write <out>.csv, .json, .md, .png and the servers' output to <out>.log")
	fs.IntVar(&c.runs, "runs", 3, "runs per row, interleaved with the reference's (the median is reported)")
	fs.BoolVar(&c.quick, "quick", false, "small sizes (and one run unless -runs is given): a smoke run, not a measurement")
	fs.IntVar(&c.size, "size", 100, "payload bytes")
	fs.IntVar(&c.requests, "requests", 200_000, "redis-benchmark requests per -P 16 run (and messages per async JetStream run)")
	fs.IntVar(&c.requestsP1, "requests-p1", 100_000, "redis-benchmark requests per -P 1 run (and per sync JetStream run)")
	fs.IntVar(&c.fanoutSubs, "fanout-subscribers", 1000, "subscribers of the fan-out row")
	fs.DurationVar(&c.fanoutDur, "fanout-duration", 5*time.Second, "publishing time of a fan-out run")
	fs.Float64Var(&c.latencyRate, "latency-rate", 10_000, "messages per second of the latency row")
	fs.DurationVar(&c.latencyDur, "latency-duration", 10*time.Second, "length of a latency run")
	fs.IntVar(&c.catchup, "catchup", 1_000_000, "messages a stopped follower has to catch up")
	fs.IntVar(&c.restart, "restart", 10_000_000, "messages in the log of the restart rows")
	fs.IntVar(&c.xrangeEntries, "xrange-entries", 1_000_000, "entries read by XRANGE - +")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		// Small enough for a smoke test; a flag given explicitly wins.
		quick := map[string]func(){
			"runs":               func() { c.runs = 1 },
			"requests":           func() { c.requests = 20_000 },
			"requests-p1":        func() { c.requestsP1 = 5_000 },
			"fanout-subscribers": func() { c.fanoutSubs = 50 },
			"fanout-duration":    func() { c.fanoutDur = time.Second },
			"latency-rate":       func() { c.latencyRate = 1000 },
			"latency-duration":   func() { c.latencyDur = 2 * time.Second },
			"catchup":            func() { c.catchup = 20_000 },
			"restart":            func() { c.restart = 50_000 },
			"xrange-entries":     func() { c.xrangeEntries = 20_000 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	if c.runs < 1 {
		return c, fmt.Errorf("-runs must be at least 1")
	}
	if c.natsBin == "" {
		if p, err := exec.LookPath("nats-server"); err == nil {
			c.natsBin = p
		} else if _, err := os.Stat("bin/benchdeps/nats-server"); err == nil {
			c.natsBin = "bin/benchdeps/nats-server"
		}
	}
	return c, nil
}

func groupNames() string {
	var n []string
	for _, g := range groups {
		n = append(n, g.name)
	}
	return strings.Join(n, ",")
}

// suite is one run of the suite: its configuration, the processes it
// started and the servers shared between groups.
type suite struct {
	cfg    config
	env    *env
	stderr io.Writer
	shared map[string]*server
	clust  *cluster
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, format+"\n", args...)
}

func (s *suite) progress(group string) func(string) {
	return func(msg string) { s.logf("%s: %s", group, msg) }
}

// redis, node and cluster start the servers several groups use, once.
func (s *suite) redis(ctx context.Context) (*server, error) {
	if r := s.shared["redis"]; r != nil {
		return r, nil
	}
	r, err := s.env.redis(ctx)
	if err == nil {
		s.shared["redis"] = r
	}
	return r, err
}

func (s *suite) node(ctx context.Context, fsync string) (*server, error) {
	if n := s.shared["ordo-"+fsync]; n != nil {
		return n, nil
	}
	n, err := s.env.ordoNode(ctx, "--fsync", fsync)
	if err == nil {
		s.shared["ordo-"+fsync] = n
	}
	return n, err
}

func (s *suite) cluster(ctx context.Context) (*cluster, error) {
	if s.clust != nil {
		return s.clust, nil
	}
	c, err := s.env.ordoCluster(ctx)
	if err == nil {
		s.clust = c
	}
	return c, err
}

// throughput runs one of the redis-benchmark groups.
func (s *suite) throughput(ctx context.Context, group string) []scorecard.Row {
	var (
		target *server
		name   string
		goals  [2]scorecard.Goal
		cpu    *scorecard.Row
		err    error
	)
	switch group {
	case "always":
		name, goals = "1 node, fsync always", [2]scorecard.Goal{scorecard.AtLeastRatio(0.8), scorecard.AtLeastRatio(0.6)}
		target, err = s.node(ctx, "always")
	case "never":
		name, goals = "1 node, fsync never", [2]scorecard.Goal{scorecard.AtLeastRatio(1), scorecard.AtLeastRatio(1)}
		cpu = &scorecard.Row{ID: "cpu", Name: "CPU per PUBLISH, 1 node, fsync never (server CPU / requests, -P 16)",
			Unit: "µs", RefName: "redis", Goal: scorecard.AtMost(2)}
		target, err = s.node(ctx, "never")
	case "cluster":
		name, goals = "3 nodes through a follower", [2]scorecard.Goal{scorecard.AtLeastRatio(0.5), scorecard.AtLeastRatio(0.3)}
		var cl *cluster
		if cl, err = s.cluster(ctx); err == nil {
			var followers []*server
			if _, followers, err = cl.waitRoles(ctx); err == nil {
				target = followers[0]
			}
		}
	}
	var redis *server
	if err == nil {
		redis, err = s.redis(ctx)
	}
	var rows []scorecard.Row
	if err == nil {
		rows, err = s.throughputRows(ctx, group, name, target, redis, goals, cpu)
	}
	if cpu != nil {
		rows = append(rows, *cpu)
	}
	if err != nil {
		if rows == nil {
			for i, p := range pipelines {
				rows = append(rows, scorecard.Row{ID: fmt.Sprintf("%s-P%d", group, p), Name: fmt.Sprintf("%s, -P %d", name, p), Unit: "req/s", Goal: goals[i]})
			}
			if cpu != nil {
				rows = append(rows, *cpu)
			}
		}
		for i := range rows {
			rows[i] = notRun(rows[i], err)
		}
	}
	return rows
}

func (s *suite) runGroup(ctx context.Context, name string) []scorecard.Row {
	switch name {
	case "always", "never", "cluster":
		return s.throughput(ctx, name)
	case "jetstream":
		return s.jetStreamRows(ctx)
	case "fanout":
		return []scorecard.Row{s.fanoutRow(ctx)}
	case "latency":
		return []scorecard.Row{s.latencyRow(ctx)}
	case "catchup":
		return []scorecard.Row{s.catchupRow(ctx)}
	case "restart":
		return s.restartRows(ctx)
	case "xrange":
		return []scorecard.Row{s.xrangeRow(ctx)}
	}
	panic("unknown group " + name)
}

// run is the whole suite: header, the selected groups, table and files.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (scorecard.Report, error) {
	sel, err := selectGroups(cfg.rows)
	if err != nil {
		return scorecard.Report{}, err
	}
	for _, bin := range []string{cfg.ordoBin, cfg.redisBin, "redis-benchmark"} {
		if _, err := exec.LookPath(bin); err != nil {
			return scorecard.Report{}, fmt.Errorf("%s: %w (make build; make deps installs redis)", bin, err)
		}
	}
	if dir := filepath.Dir(cfg.out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return scorecard.Report{}, err
		}
	}
	logf, err := os.Create(cfg.out + ".log")
	if err != nil {
		return scorecard.Report{}, err
	}
	defer logf.Close()
	tmp, err := os.MkdirTemp("", "ordo-bench-suite-")
	if err != nil {
		return scorecard.Report{}, err
	}
	defer os.RemoveAll(tmp)
	ordoBin, _ := filepath.Abs(cfg.ordoBin)
	if !strings.Contains(cfg.ordoBin, "/") {
		ordoBin, _ = exec.LookPath(cfg.ordoBin)
	}
	e := &env{ordoBin: ordoBin, redisBin: cfg.redisBin, natsBin: cfg.natsBin, tmp: tmp, log: &lockedWriter{w: logf}}
	defer e.stopAll()
	s := &suite{cfg: cfg, env: e, stderr: stderr, shared: map[string]*server{}}

	rep := scorecard.Report{Header: header(cfg)}
	scorecard.PrintHeader(stdout, rep.Header)
	fmt.Fprintln(stdout)
	for _, g := range groups {
		if !sel[g.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t := time.Now()
		s.logf("%s: starting", g.name)
		rows := s.runGroup(ctx, g.name)
		s.logf("%s: done in %s", g.name, time.Since(t).Round(time.Second))
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.Header.Finished = time.Now()
	rep.Header.LoadEnd = loadAvg()
	scorecard.PrintTable(stdout, rep)
	paths, err := scorecard.SaveAll(cfg.out, rep)
	if err == nil {
		var f *os.File
		if f, err = os.Create(cfg.out + ".md"); err == nil {
			scorecard.Markdown(f, rep)
			err = f.Close()
			paths = append(paths, cfg.out+".md")
		}
	}
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(append(paths, cfg.out+".log"), ", "))
	return rep, err
}

// lockedWriter lets several server processes share the log file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench suite:", err)
		os.Exit(1)
	}
}
