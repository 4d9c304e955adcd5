package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ordo-broker/ordo/bench"
	"github.com/ordo-broker/ordo/bench/proc"
	"github.com/ordo-broker/ordo/bench/suite/scorecard"
)

// natsCluster is three nats-servers with JetStream and a stream BENCH on
// subject bench with three replicas in file storage.
type natsCluster struct {
	servers []*server
	names   []string
}

// natsCluster starts the cluster; syncAlways sets JetStream's
// sync_interval: always (fsync before every acknowledgement, as ordo's
// default), otherwise JetStream's defaults (acknowledged once in the OS
// page cache of a majority, fsynced every 2 minutes).
func (e *env) natsCluster(ctx context.Context, syncAlways bool) (*natsCluster, error) {
	var c natsCluster
	var routes []string
	cports := make([]int, 3)
	for i := range 3 {
		s, err := e.newServer(fmt.Sprintf("nats%d", i+1), e.natsBin)
		if err != nil {
			return nil, err
		}
		if cports[i], err = proc.FreePort(); err != nil {
			return nil, err
		}
		c.servers = append(c.servers, s)
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cports[i]))
	}
	sync := ""
	if syncAlways {
		sync = "sync_interval: always"
	}
	for i, s := range c.servers {
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: %q
  %s }
cluster { name: bench
  listen: 127.0.0.1:%d
  routes: [%s] }
`, c.names[i], s.port, filepath.Join(s.dir, "js"), sync, cports[i], strings.Join(routes, ", "))
		path := filepath.Join(s.dir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		s.args = append(s.args, "-c", path)
		if err := s.start(); err != nil {
			return nil, err
		}
	}
	// JetStream serves once the cluster has elected its meta leader: add
	// the stream until that works.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := c.createStream(ctx)
		if err == nil {
			return &c, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("jetstream cluster not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *natsCluster) url(i int) string { return "nats://" + c.servers[i].addr }

func (c *natsCluster) createStream(ctx context.Context) error {
	nc, err := nats.Connect(c.url(0), nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench"},
		Replicas: 3, Storage: jetstream.FileStorage})
	return err
}

// follower is the client URL of a server that is not the stream's
// leader: publishes go through it, as ordo's go through a follower.
func (c *natsCluster) follower(ctx context.Context) (string, error) {
	nc, err := nats.Connect(c.url(0), nats.Timeout(2*time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(ctx, "BENCH")
		if err == nil {
			info, err := st.Info(ctx)
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				for i, n := range c.names {
					if n != info.Cluster.Leader {
						return c.url(i), nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the BENCH stream has no leader")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsPublish publishes n messages of size bytes to the stream through url
// over clients connections, each with window publishes awaiting their
// acknowledgement (async) or one at a time (sync), while one core NATS
// subscriber receives them. It returns acknowledged messages per second.
func jsPublish(ctx context.Context, url string, n, clients, window, size int, async bool) (float64, error) {
	sub, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	if _, err := sub.Subscribe("bench", func(*nats.Msg) {}); err != nil {
		return 0, err
	}
	sub.Flush()
	type pub struct {
		nc *nats.Conn
		js jetstream.JetStream
	}
	pubs := make([]pub, clients)
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range pubs {
		nc, err := nats.Connect(url)
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}))
		if err != nil {
			return 0, err
		}
		pubs[i] = pub{nc, js}
	}
	payload := []byte(strings.Repeat("x", size))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range pubs {
		count := n / clients
		if i < n%clients {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				var err error
				if async {
					// A full window waits for an acknowledgement (as -P 16
					// does) instead of failing after the default 200 ms.
					_, err = p.js.PublishAsync("bench", payload, jetstream.WithStallWait(time.Minute))
				} else {
					_, err = p.js.Publish(ctx, "bench", payload)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if ctx.Err() != nil {
						return
					}
				}
			}
			if async {
				select {
				case <-p.js.PublishAsyncComplete():
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("jetstream: %d of %d publishes failed, first: %v", f, n, firstErr.Load())
	}
	return float64(n) / elapsed.Seconds(), nil
}

// ordoPublish is the ordo side of the JetStream rows: the same shape of
// load from a Go client in this process (50 connections, window PUBLISHes
// in flight each, one subscriber), through addr.
func ordoPublish(ctx context.Context, addr string, n, clients, window, size int) (float64, error) {
	res, err := bench.Run(ctx, bench.Options{Addrs: []string{addr}, Clients: clients, Pipeline: window, Subscribers: 1,
		Size: size, Messages: int64(n), Duration: 10 * time.Minute, Drain: 10 * time.Second, Interval: time.Hour})
	if err != nil {
		return 0, err
	}
	if res.Errors > 0 {
		return 0, fmt.Errorf("ordo: %d publishes failed, first: %s", res.Errors, res.FirstError)
	}
	return res.PublishRate, nil
}

// jetStreamRows: ordo's three-node cluster through a follower against
// JetStream with sync_interval: always and with its defaults, async
// (16 in flight per connection, like -P 16) and sync publishing (like
// -P 1), 50 connections, 100-byte payloads.
func (s *suite) jetStreamRows(ctx context.Context) []scorecard.Row {
	type kind struct {
		id, name string
		always   bool
		async    bool
		goal     float64
	}
	kinds := []kind{
		{"js-always-async", "3 nodes vs JetStream, sync_interval always, async (16 in flight)", true, true, 5},
		{"js-always-sync", "3 nodes vs JetStream, sync_interval always, sync", true, false, 3},
		{"js-default-async", "3 nodes vs JetStream, default settings, async (16 in flight)", false, true, 2},
		{"js-default-sync", "3 nodes vs JetStream, default settings, sync", false, false, 2},
	}
	rows := make([]scorecard.Row, len(kinds))
	for i, k := range kinds {
		rows[i] = scorecard.Row{ID: k.id, Name: k.name, Unit: "msg/s", RefName: "jetstream", Goal: scorecard.AtLeastRatio(k.goal),
			Note: "JetStream: 3 replicas, file storage; both sides Go clients in the suite's process, 50 connections, through a non-leader"}
	}
	fail := func(why string) []scorecard.Row {
		for i := range rows {
			rows[i].NotRun = why
		}
		return rows
	}
	if s.env.natsBin == "" {
		return fail("nats-server not installed (make bench-deps)")
	}
	cl, err := s.cluster(ctx)
	if err != nil {
		return fail(err.Error())
	}
	_, followers, err := cl.waitRoles(ctx)
	if err != nil {
		return fail(err.Error())
	}
	via := followers[0].addr
	urls := map[bool]string{}
	for _, always := range []bool{true, false} {
		nc, err := s.env.natsCluster(ctx, always)
		if err != nil {
			return fail(err.Error())
		}
		if urls[always], err = nc.follower(ctx); err != nil {
			return fail(err.Error())
		}
	}
	n := s.cfg.requests
	window := map[bool]int{true: 16, false: 1}
	count := map[bool]int{true: n, false: s.cfg.requestsP1}
	ordo := func(int) error {
		for _, async := range []bool{true, false} {
			v, err := ordoPublish(ctx, via, count[async], 50, window[async], s.cfg.size)
			if err != nil {
				return err
			}
			s.logf("  jetstream rows: ordo window %d: %.0f msg/s", window[async], v)
			for i, k := range kinds {
				if k.async == async {
					rows[i].Ordo = append(rows[i].Ordo, v)
				}
			}
		}
		return nil
	}
	ref := func(int) error {
		for i, k := range kinds {
			v, err := jsPublish(ctx, urls[k.always], count[k.async], 50, window[k.async], s.cfg.size, k.async)
			if err != nil {
				return err
			}
			s.logf("  %s: jetstream %.0f msg/s", k.id, v)
			rows[i].Ref = append(rows[i].Ref, v)
		}
		return nil
	}
	if err := interleave(ctx, s.cfg.runs, s.progress("jetstream"), ref, ordo); err != nil {
		return fail(err.Error())
	}
	return rows
}
