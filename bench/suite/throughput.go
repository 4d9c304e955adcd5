package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/bench/suite/scorecard"
	"github.com/ordo-broker/ordo/clients/resp"
)

// redisBenchmark runs redis-benchmark's PUBLISH test against addr: 50
// clients, pipeline p, n requests of 100-byte payloads on channel bench.
// It returns requests per second.
func redisBenchmark(ctx context.Context, addr string, p, n, size int) (float64, error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-c", "50", "-P", strconv.Itoa(p),
		"-n", strconv.Itoa(n), "-q", "PUBLISH", "bench", strings.Repeat("x", size))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark on %s: %v: %s", addr, err, out)
	}
	return parseRPS(string(out))
}

// parseRPS takes the last "N requests per second" of redis-benchmark -q
// output (progress lines end in \r, the result in \n).
func parseRPS(out string) (float64, error) {
	var v float64
	found := false
	for _, line := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' }) {
		i := strings.Index(line, " requests per second")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[:i])
		if len(f) == 0 {
			continue
		}
		x, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			v, found = x, true
		}
	}
	if !found {
		return 0, fmt.Errorf("no requests per second in redis-benchmark output %q", out)
	}
	return v, nil
}

// drain subscribes to channel on addr and reads (and drops) everything
// sent to it until stopped: the one subscriber of the throughput rows.
func drain(addr, channel string) (stop func(), err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn.Write(resp.Command("SUBSCRIBE", channel))
	rd := bufio.NewReaderSize(conn, 256<<10)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := resp.Read(rd); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe on %s: %w", addr, err)
	}
	conn.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			if _, err := rd.Read(buf); err != nil {
				return
			}
		}
	}()
	return func() { conn.Close(); <-done }, nil
}

// interleave runs ref and ordo cfg.runs times each, alternating which
// goes first, so that both see the same moments of a loaded machine.
func interleave(ctx context.Context, runs int, progress func(string), ref, ordo func(run int) error) error {
	for i := 0; i < runs; i++ {
		first, second := ref, ordo
		if i%2 == 1 {
			first, second = ordo, ref
		}
		if err := first(i); err != nil {
			return err
		}
		if err := second(i); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		progress(fmt.Sprintf("run %d/%d done", i+1, runs))
	}
	return nil
}

// pipelines are the two redis-benchmark settings of the throughput rows.
var pipelines = []int{16, 1}

// throughputRows measures PUBLISH req/s of target (an ordo node or a
// follower of a cluster) against redis-server with redis-benchmark at
// -P 16 and -P 1. cpu, if set, is also given each -P 16 run's server CPU
// time per request (µs) of both.
func (s *suite) throughputRows(ctx context.Context, id, name string, target, redis *server, goals [2]scorecard.Goal, cpu *scorecard.Row) ([]scorecard.Row, error) {
	rows := make([]scorecard.Row, len(pipelines))
	for i, p := range pipelines {
		rows[i] = scorecard.Row{ID: fmt.Sprintf("%s-P%d", id, p), Name: fmt.Sprintf("%s, -P %d", name, p),
			Unit: "req/s", RefName: "redis", Goal: goals[i]}
	}
	for _, srv := range []*server{target, redis} {
		stop, err := drain(srv.addr, "bench")
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	measure := func(srv *server, side func(*scorecard.Row) *[]float64) func(int) error {
		return func(int) error {
			for i, p := range pipelines {
				n := s.cfg.requests
				if p == 1 {
					n = s.cfg.requestsP1
				}
				cpu0, _ := srv.cpuSeconds()
				rps, err := redisBenchmark(ctx, srv.addr, p, n, s.cfg.size)
				if err != nil {
					return err
				}
				cpu1, _ := srv.cpuSeconds()
				*side(&rows[i]) = append(*side(&rows[i]), rps)
				if cpu != nil && p == 16 {
					*side(cpu) = append(*side(cpu), (cpu1-cpu0)*1e6/float64(n))
				}
				s.logf("  %s %s -P %d: %.0f req/s", id, srv.name, p, rps)
			}
			return nil
		}
	}
	ordoSide := func(r *scorecard.Row) *[]float64 { return &r.Ordo }
	refSide := func(r *scorecard.Row) *[]float64 { return &r.Ref }
	err := interleave(ctx, s.cfg.runs, s.progress(id), measure(redis, refSide), measure(target, ordoSide))
	return rows, err
}
