package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/bench"
	"github.com/ordo-broker/ordo/bench/proc"
	"github.com/ordo-broker/ordo/bench/suite/scorecard"
	"github.com/ordo-broker/ordo/clients/resp"
)

// fanoutRow: one publisher (16 PUBLISHes in flight: with one at a time
// the row would measure round trips, not delivery) to many subscribers of one channel,
// deliveries per second (every subscriber's copy counts), ordo one node
// (default fsync always) against redis-server, with ordo bench's load
// generator.
func (s *suite) fanoutRow(ctx context.Context) scorecard.Row {
	row := scorecard.Row{ID: "fanout", Name: fmt.Sprintf("fan-out, 1 publisher (-P 16) -> %d subscribers", s.cfg.fanoutSubs),
		Unit: "deliveries/s", RefName: "redis", Goal: scorecard.AtLeastRatio(1),
		Extra: map[string][]float64{}}
	ordo, err := s.node(ctx, "always")
	if err != nil {
		return notRun(row, err)
	}
	redis, err := s.redis(ctx)
	if err != nil {
		return notRun(row, err)
	}
	measure := func(srv *server, side *[]float64) func(int) error {
		return func(int) error {
			res, err := bench.Run(ctx, bench.Options{Addrs: []string{srv.addr}, Clients: 1, Pipeline: 16, Subscribers: s.cfg.fanoutSubs,
				Size: s.cfg.size, Channel: "fanout", Duration: s.cfg.fanoutDur, Drain: 20 * time.Second, Interval: time.Hour})
			if err != nil {
				return err
			}
			*side = append(*side, res.DeliveryRate)
			if res.Expected > 0 {
				row.Extra[srv.name+"_delivered_fraction"] = append(row.Extra[srv.name+"_delivered_fraction"], float64(res.Delivered)/float64(res.Expected))
			}
			row.Extra[srv.name+"_publish_per_sec"] = append(row.Extra[srv.name+"_publish_per_sec"], res.PublishRate)
			s.logf("  fanout %s: %.0f deliveries/s (%d of %d delivered, %.0f publishes/s)", srv.name, res.DeliveryRate, res.Delivered, res.Expected, res.PublishRate)
			return nil
		}
	}
	if err := interleave(ctx, s.cfg.runs, s.progress("fanout"), measure(redis, &row.Ref), measure(ordo, &row.Ordo)); err != nil {
		return notRun(row, err)
	}
	return row
}

// latencyRow: publish -> deliver p99 at a fixed rate, open loop (every
// latency counted from the message's intended send time), ten publishers
// spread over the three nodes of a cluster and one subscriber on a
// follower; redis-server with the same load for reference.
func (s *suite) latencyRow(ctx context.Context) scorecard.Row {
	row := scorecard.Row{ID: "latency", Name: fmt.Sprintf("publish -> deliver p99 at %s msg/s open loop, 3 nodes", scorecard.Num(s.cfg.latencyRate)),
		Unit: "ms", RefName: "redis", Goal: scorecard.AtMost(5), Extra: map[string][]float64{}}
	cl, err := s.cluster(ctx)
	if err != nil {
		return notRun(row, err)
	}
	leader, followers, err := cl.waitRoles(ctx)
	if err != nil {
		return notRun(row, err)
	}
	redis, err := s.redis(ctx)
	if err != nil {
		return notRun(row, err)
	}
	// The subscriber takes Addrs[0]: a follower.
	var addrs []string
	for _, f := range followers {
		addrs = append(addrs, f.addr)
	}
	addrs = append(addrs, leader.addr)
	measure := func(name string, addrs []string, side *[]float64) func(int) error {
		return func(int) error {
			res, err := bench.Run(ctx, bench.Options{Addrs: addrs, Clients: 10, Subscribers: 1, Size: s.cfg.size, Channel: "latency",
				Rate: s.cfg.latencyRate, Duration: s.cfg.latencyDur, Drain: 20 * time.Second, Interval: time.Hour})
			if err != nil {
				return err
			}
			if res.Errors > 0 || res.Delivered < res.Expected {
				return fmt.Errorf("latency run on %s: %d errors (%s), %d of %d delivered", name, res.Errors, res.FirstError, res.Delivered, res.Expected)
			}
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			*side = append(*side, ms(res.DeliveryP99))
			for k, v := range map[string]float64{"p50_ms": ms(res.DeliveryP50), "p999_ms": ms(res.DeliveryP999), "max_ms": ms(res.DeliveryMax),
				"ack_p99_ms": ms(res.AckP99), "publish_per_sec": res.PublishRate} {
				row.Extra[name+"_"+k] = append(row.Extra[name+"_"+k], v)
			}
			s.logf("  latency %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms at %.0f msg/s", name, ms(res.DeliveryP50), ms(res.DeliveryP99), ms(res.DeliveryMax), res.PublishRate)
			return nil
		}
	}
	if err := interleave(ctx, s.cfg.runs, s.progress("latency"), measure("redis", []string{redis.addr}, &row.Ref), measure("ordo", addrs, &row.Ordo)); err != nil {
		return notRun(row, err)
	}
	return row
}

// catchupRow: a follower of a fresh three-node cluster is stopped, the
// others commit N messages (50 clients, -P 16), the follower is started
// again, and the time from its start until its STATUS shows the leader's
// last sequence number gives messages per second. The follower with the
// lowest id is the one stopped: in a bully election a returning higher
// id would take the lead instead of catching up.
func (s *suite) catchupRow(ctx context.Context) scorecard.Row {
	row := scorecard.Row{ID: "catchup", Name: fmt.Sprintf("follower catch-up after %s messages", scorecard.Num(float64(s.cfg.catchup))),
		Unit: "msg/s", Goal: scorecard.AtLeast(500e3), Extra: map[string][]float64{}}
	cl, err := s.env.ordoCluster(ctx)
	if err != nil {
		return notRun(row, err)
	}
	defer func() {
		for _, n := range cl.nodes {
			n.stop()
		}
	}()
	for i := 0; i < s.cfg.runs; i++ {
		v, took, err := s.catchupOnce(ctx, cl)
		if err != nil {
			return notRun(row, err)
		}
		row.Ordo = append(row.Ordo, v)
		row.Extra["seconds"] = append(row.Extra["seconds"], took.Seconds())
		s.logf("  catchup run %d: %.0f msg/s (%s)", i+1, v, took.Round(time.Millisecond))
	}
	return row
}

func (s *suite) catchupOnce(ctx context.Context, cl *cluster) (float64, time.Duration, error) {
	leader, followers, err := cl.waitRoles(ctx)
	if err != nil {
		return 0, 0, err
	}
	f := slices.MinFunc(followers, func(a, b *server) int { return strings.Compare(a.name, b.name) }) // ordo1 < ordo2 < ordo3
	st, err := status(f.addr)
	if err != nil {
		return 0, 0, err
	}
	before, _ := strconv.ParseUint(st["last_seq"], 10, 64)
	f.halt()
	res, err := bench.Run(ctx, bench.Options{Addrs: []string{leader.addr}, Clients: 50, Pipeline: 16, Size: s.cfg.size,
		Channel: "catchup", Messages: int64(s.cfg.catchup), Duration: 30 * time.Minute, Interval: time.Hour})
	if err != nil {
		return 0, 0, err
	}
	if res.Errors > 0 {
		return 0, 0, fmt.Errorf("filling the backlog: %d errors, first: %s", res.Errors, res.FirstError)
	}
	st, err = status(leader.addr)
	if err != nil {
		return 0, 0, err
	}
	target, _ := strconv.ParseUint(st["last_seq"], 10, 64)
	start := time.Now()
	if err := f.start(); err != nil {
		return 0, 0, err
	}
	deadline := start.Add(10 * time.Minute)
	for {
		if st, err := status(f.addr); err == nil {
			if seq, _ := strconv.ParseUint(st["last_seq"], 10, 64); seq >= target {
				took := time.Since(start)
				return float64(target-before) / took.Seconds(), took, nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("follower %s did not catch up to %d", f.name, target)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restartRows: a one-node ordo filled with N messages (--fsync never,
// pipelined publishes), then stopped cleanly and started again: the time
// from starting the process until it answers PING and STATUS and returns
// the last message of its history, and its RSS at that moment.
func (s *suite) restartRows(ctx context.Context) []scorecard.Row {
	n := scorecard.Num(float64(s.cfg.restart))
	rows := []scorecard.Row{
		{ID: "restart-time", Name: fmt.Sprintf("restart with %s messages: time to serve", n), Unit: "s", Goal: scorecard.AtMost(2)},
		{ID: "restart-rss", Name: fmt.Sprintf("restart with %s messages: RSS when serving", n), Unit: "MB", Goal: scorecard.AtMost(300),
			Extra: map[string][]float64{}},
	}
	fail := func(err error) []scorecard.Row {
		for i := range rows {
			rows[i] = notRun(rows[i], err)
		}
		return rows
	}
	node, err := s.env.ordoNode(ctx, "--fsync", "never")
	if err != nil {
		return fail(err)
	}
	defer node.stop()
	t0 := time.Now()
	res, err := bench.Run(ctx, bench.Options{Addrs: []string{node.addr}, Clients: 50, Pipeline: 64, Size: s.cfg.size,
		Channel: "chat", Messages: int64(s.cfg.restart), Duration: time.Hour, Interval: time.Hour})
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("%d errors, first: %s", res.Errors, res.FirstError)
	}
	if err != nil {
		return fail(fmt.Errorf("filling the log: %w", err))
	}
	s.logf("  restart: %d messages written in %s", res.Published, time.Since(t0).Round(time.Second))
	for i := 0; i < s.cfg.runs; i++ {
		node.halt()
		start := time.Now()
		if err := node.start(); err != nil {
			return fail(err)
		}
		err := waitRESP(ctx, node, 10*time.Minute, func(c *resp.Conn) bool {
			if v, err := c.Do("STATUS"); err != nil || v.Err() != nil {
				return false
			}
			v, err := c.Do("XREVRANGE", "chat", "+", "-", "COUNT", "1")
			return err == nil && v.Err() == nil && len(v.Elems) == 1
		})
		took := time.Since(start)
		if err != nil {
			return fail(err)
		}
		rss := node.rssMB()
		hwm, _ := proc.StatusKB(node.pid(), "VmHWM")
		rows[0].Ordo = append(rows[0].Ordo, took.Seconds())
		rows[1].Ordo = append(rows[1].Ordo, rss)
		rows[1].Extra["peak_rss_mb"] = append(rows[1].Extra["peak_rss_mb"], float64(hwm)/1024)
		s.logf("  restart run %d: serving after %s, RSS %.0f MB (peak %d MB)", i+1, took.Round(time.Millisecond), rss, hwm>>10)
	}
	return rows
}

// xrangeRow runs bench/xrange (make bench-xrange) once per run, one reader:
// each call fills and measures ordo, then redis-server, so the two are
// interleaved.
func (s *suite) xrangeRow(ctx context.Context) scorecard.Row {
	row := scorecard.Row{ID: "xrange", Name: fmt.Sprintf("peak RSS during XRANGE - + over %s entries", scorecard.Num(float64(s.cfg.xrangeEntries))),
		Unit: "MB", RefName: "redis", Goal: scorecard.AtMost(300), Extra: map[string][]float64{}}
	bin := s.cfg.xrangeBin
	if _, err := os.Stat(bin); err != nil {
		return notRun(row, fmt.Errorf("%s not built (make bench builds it): %w", bin, err))
	}
	for i := 0; i < s.cfg.runs; i++ {
		out := filepath.Join(s.env.tmp, fmt.Sprintf("xrange-%d.json", i))
		args := []string{"-ordo", s.env.ordoBin, "-redis", s.env.redisBin, "-entries", strconv.Itoa(s.cfg.xrangeEntries),
			"-size", strconv.Itoa(s.cfg.size), "-readers", "1", "-runs", "1", "-json", out}
		cmd := exec.CommandContext(ctx, bin, args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return notRun(row, fmt.Errorf("bench/xrange: %v: %s", err, b))
		}
		var res []struct {
			Server    string  `json:"server"`
			PeakRSSMB float64 `json:"peak_rss_mb"`
			BeforeMB  float64 `json:"rss_before_mb"`
			PingP99   float64 `json:"ping_p99_corrected_ms"`
		}
		b, err := os.ReadFile(out)
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err != nil {
			return notRun(row, err)
		}
		for _, r := range res {
			switch r.Server {
			case "ordo":
				row.Ordo = append(row.Ordo, r.PeakRSSMB)
			case "redis":
				row.Ref = append(row.Ref, r.PeakRSSMB)
			}
			row.Extra[r.Server+"_rss_before_mb"] = append(row.Extra[r.Server+"_rss_before_mb"], r.BeforeMB)
			row.Extra[r.Server+"_ping_p99_corrected_ms"] = append(row.Extra[r.Server+"_ping_p99_corrected_ms"], r.PingP99)
			s.logf("  xrange run %d %s: peak RSS %.0f MB", i+1, r.Server, r.PeakRSSMB)
		}
	}
	return row
}

func notRun(r scorecard.Row, err error) scorecard.Row {
	r.NotRun = err.Error()
	return r
}
