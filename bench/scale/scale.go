// Package scale is ordo's scale test (the demo guide's demo 7): it runs N
// real ordo processes on loopback, grows them into one cluster through a
// seed, publishes from every peer at once, kills leaders, restarts the
// killed peers, lets one peer leave and a new one join, and after every
// step checks that all live peers hold one identical, gap-free history
// containing every acknowledged message. It measures formation, failover,
// catch-up and join times and reports violations.
package scale

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Options configure a run.
type Options struct {
	Peers    int // cluster size (at least 3: failover needs a majority without the leader)
	Messages int // messages each peer publishes in the main publishing phase
	Kills    int // leaders killed in a row (kill -9)
	// BasePort: peer i serves on BasePort+i-1 (the joiner N+1 too); 0
	// picks free ports.
	BasePort int
	// DataDir holds node<i>/ (data) and node<i>.log; "" is a new temporary
	// directory, removed after a successful run unless Keep.
	DataDir           string
	Keep              bool
	HeartbeatInterval time.Duration // passed to every node
	LeaderTimeout     time.Duration // passed to every node
	Binary            string        // the ordo binary ("" = this executable)
	Timeout           time.Duration // bound on the whole run
	Channel           string        // the one channel published to
}

// Defaults suit a 2-core machine running 15 nodes: a heartbeat of
// 100ms with a 1s leader timeout leaves room for scheduling delays that
// the node defaults (500ms) would turn into spurious elections.
func (o *Options) defaults() error {
	if o.Peers == 0 {
		o.Peers = 5
	}
	if o.Peers < 3 {
		return fmt.Errorf("--peers %d: at least 3 are needed (a leader must be killable with a majority left)", o.Peers)
	}
	if o.Messages <= 0 {
		o.Messages = 20
	}
	if o.Kills <= 0 {
		o.Kills = 3
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 100 * time.Millisecond
	}
	if o.LeaderTimeout <= 0 {
		o.LeaderTimeout = time.Second
	}
	if o.HeartbeatInterval >= o.LeaderTimeout {
		return fmt.Errorf("heartbeat interval %s must be shorter than the leader timeout %s", o.HeartbeatInterval, o.LeaderTimeout)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Channel == "" {
		o.Channel = "scale"
	}
	if o.BasePort < 0 || o.BasePort+o.Peers > 65535 {
		return fmt.Errorf("base port %d: peers would not fit below 65536", o.BasePort)
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the ordo binary: %w (give --binary)", err)
		}
		o.Binary = exe
	}
	return nil
}

// Failover is one leader kill.
type Failover struct {
	Killed, NewLeader int
	OldTerm, NewTerm  uint64
	// Publish is the time from the kill until a PUBLISH through a survivor
	// was acknowledged again; Agreed until every survivor named the new
	// leader in STATUS.
	Publish, Agreed time.Duration
}

// CatchUp is one restart of a killed peer: Took is from its start until
// its history equalled the leader's.
type CatchUp struct {
	Peer int
	Took time.Duration
}

// Report is what a run measured and found.
type Report struct {
	Peers                       int
	Published, Acked, Uncertain int // messages (unique payloads)
	Retries                     int // attempts beyond each message's first
	Duplicates                  int // extra copies after ambiguous retries (tolerated)
	Errors                      string
	Formation                   time.Duration // peers 2..N started until N voters
	Failovers                   []Failover
	CatchUps                    []CatchUp     // restarted peers
	Join                        time.Duration // new peer: start until it is a voter
	JoinCatchUp                 time.Duration // new peer: start until its history is equal
	Entries                     int           // final history length
	FirstTerm, LastTerm         uint64
	// UnexpectedTerms counts term changes outside the leader kills
	// (elections nobody asked for: a sign of overload).
	UnexpectedTerms int
	LeaderTimeouts  int // "Leader timeout!" lines in all node logs
	Runtime         time.Duration
	Violations      []string
	DataDir         string
}

// Elections is the number of leader kills that ended with a new leader.
func (r *Report) Elections() int { return len(r.Failovers) }

// harness is one run's state.
type harness struct {
	o      Options
	out    io.Writer
	begin  time.Time
	root   string
	nodes  map[int]*node // every node ever started, by id
	ledger *Ledger
	rep    *Report
	leader int    // the leader last agreed on
	term   uint64 // its term
	killed []int  // peers killed and not restarted yet, oldest first
	// suspects are nodes whose logs explain a failure.
	suspects map[int]bool
	reported map[string]bool // violations listed so far, without their step
}

// Run performs the scale test, printing a line per step to progress, and
// returns the report. The error is non-nil if the run could not complete
// or found violations (the report then lists them).
func Run(ctx context.Context, o Options, progress io.Writer) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	h := &harness{o: o, out: progress, begin: time.Now(), nodes: map[int]*node{}, ledger: NewLedger(),
		rep: &Report{Peers: o.Peers}, suspects: map[int]bool{}, reported: map[string]bool{}}
	temp := o.DataDir == ""
	h.root = o.DataDir
	if temp {
		var err error
		if h.root, err = os.MkdirTemp("", "ordo-scale-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(h.root, 0o755); err != nil {
		return nil, err
	}
	h.rep.DataDir = h.root
	h.logf("%d peers, %d messages per peer, heartbeat %s, leader timeout %s, data in %s",
		o.Peers, o.Messages, o.HeartbeatInterval, o.LeaderTimeout, h.root)

	err := h.steps(ctx)
	h.stopAll()
	h.finish()
	if err == nil && len(h.rep.Violations) > 0 {
		err = fmt.Errorf("%d violations", len(h.rep.Violations))
	}
	h.rep.Format(h.out)
	if err != nil {
		h.showLogs()
		fmt.Fprintf(h.out, "[scale] FAILED: %v (node logs kept in %s)\n", err, h.root)
		return h.rep, err
	}
	if temp && !o.Keep {
		os.RemoveAll(h.root)
	}
	return h.rep, nil
}

// steps runs the scenario; an error ends it (the nodes are then stopped
// by Run). Violations found along the way do not stop it.
func (h *harness) steps(ctx context.Context) error {
	if err := h.prepare(); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{
		h.form,
		h.publishAll,
		h.failovers,
		h.restartKilled,
		h.leaveAndJoin,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// prepare assigns ports and data directories, and each node's command
// line: peer 1 forms the cluster alone, every other peer joins through
// peer 1. Peer N+1 is prepared here too; it joins in the last step.
func (h *harness) prepare() error {
	n := h.o.Peers + 1
	var ports []int
	if h.o.BasePort == 0 {
		var err error
		if ports, err = freePorts(n); err != nil {
			return err
		}
	} else {
		for i := range n {
			ports = append(ports, h.o.BasePort+i)
		}
	}
	for id := 1; id <= n; id++ {
		dir, err := nodeDir(h.root, id)
		if err != nil {
			return err
		}
		nd := &node{id: id, port: ports[id-1], dir: dir, logPath: filepath.Join(h.root, fmt.Sprintf("node%d.log", id))}
		nd.args = []string{"node", "--id", strconv.Itoa(id), "--port", strconv.Itoa(nd.port), "--data-dir", dir,
			"--heartbeat-interval", h.o.HeartbeatInterval.String(), "--leader-timeout", h.o.LeaderTimeout.String()}
		if id > 1 && id <= h.o.Peers {
			nd.args = append(nd.args, "--seed", "1:"+h.nodes[1].addr())
		}
		h.nodes[id] = nd
	}
	return nil
}

// live is the ids of running peers, ascending.
func (h *harness) live() []int {
	var ids []int
	for id, n := range h.nodes {
		if n.running() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.out, "[scale] %6.1fs  %s\n", time.Since(h.begin).Seconds(), fmt.Sprintf(format, args...))
}

// violation records a broken guarantee; nodes are the peers whose logs
// may explain it.
func (h *harness) violation(step string, nodes []int, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	// Found again by a later check (perhaps on fewer nodes, some being
	// down): listed once, at the first.
	key := onNodes.ReplaceAllString(what, "")
	if h.reported[key] {
		return
	}
	h.reported[key] = true
	msg := step + ": " + what
	h.rep.Violations = append(h.rep.Violations, msg)
	h.logf("VIOLATION %s", msg)
	for _, id := range nodes {
		h.suspects[id] = true
	}
}

var onNodes = regexp.MustCompile(` on nodes \[[0-9 ]*\]`)

// stopAll stops every running node: SIGTERM (a leader hands over), then
// kill -9 after a bound, all at once so the run ends promptly.
func (h *harness) stopAll() {
	ids := h.live()
	if len(ids) == 0 {
		return
	}
	bound := 2*h.o.LeaderTimeout + 5*time.Second
	h.logf("stopping %d nodes (SIGTERM, kill -9 after %s)", len(ids), bound)
	begin := time.Now()
	done := make(chan struct{}, len(ids))
	for _, id := range ids {
		go func(n *node) { n.stop(bound); done <- struct{}{} }(h.nodes[id])
	}
	for range ids {
		<-done
	}
	h.logf("stopped in %s", since(begin))
}

// finish completes the report from the ledger and the logs.
func (h *harness) finish() {
	r := h.rep
	r.Published, r.Acked, r.Uncertain, r.Retries = h.ledger.Counts()
	r.Errors = h.ledger.Errors()
	for _, n := range h.nodes {
		r.LeaderTimeouts += n.count("Leader timeout!")
	}
	r.Runtime = time.Since(h.begin)
}

// showLogs prints the last lines of the logs of the nodes involved in
// the failure (all of them if none was singled out).
func (h *harness) showLogs() {
	ids := sortedIDs(h.suspects)
	if len(ids) == 0 {
		for id, n := range h.nodes {
			if n.starts > 0 {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
	}
	lines := 40
	if len(ids) > 4 {
		lines = 15
	}
	for _, id := range ids {
		fmt.Fprintf(h.out, "[scale] --- last %d lines of %s ---\n%s\n", lines, h.nodes[id].logPath, h.nodes[id].tail(lines))
	}
}

func sortedIDs(m map[int]bool) []int {
	var ids []int
	for id, ok := range m {
		if ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// stepErr is an error that ends the run, naming the nodes to look at.
func (h *harness) stepErr(nodes []int, format string, args ...any) error {
	for _, id := range nodes {
		h.suspects[id] = true
	}
	return fmt.Errorf(format, args...)
}
