package broker

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// A node with metrics on, after N publishes to a subscribed channel,
// reports them on /metrics (parsed, not string-matched), and is healthy
// and ready; Close closes the metrics listener.
func TestMetricsScrape(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0" })
	addr := s.MetricsAddr().String()

	sub := dial(t, s.Addr().String())
	sub.do("SUBSCRIBE", "news")
	sub.do("PSUBSCRIBE", "new*")
	pub := dial(t, s.Addr().String())
	const n = 50
	for i := range n {
		if got := pub.do("PUBLISH", "news", fmt.Sprint("m", i)); got != ":2\r\n" {
			t.Fatalf("PUBLISH %d: %q, want :2 (the channel and the pattern subscription)", i, got)
		}
	}

	// Deliveries are counted once a committed batch is delivered, just
	// after the publishers are answered: wait for the scrape to show them.
	var m testkit.Metrics
	testkit.EventuallyNoError(t, 10*time.Second, func() error {
		var err error
		if m, err = testkit.Scrape(addr); err != nil {
			return err
		}
		return checkMetrics(m, []metricCheck{
			{"ordo_publishes_total", nil, n, n},
			{"ordo_messages_applied_total", nil, n, n},
			{"ordo_deliveries_total", nil, 2 * n, 2 * n},
			{"ordo_publish_errors_total", []string{"reason", "no_leader"}, 0, 0},
			{"ordo_role", []string{"role", "leader"}, 1, 1},
			{"ordo_role", []string{"role", "follower"}, 0, 0},
			{"ordo_leader_id", nil, 1, 1},
			{"ordo_term", nil, 1, -1},
			{"ordo_leader_changes_total", nil, 1, -1},
			{"ordo_voters", nil, 1, 1},
			{"ordo_last_seq", nil, n, -1},
			{"ordo_commit_seq", nil, n, -1},
			{"ordo_wal_segments", nil, 1, -1},
			{"ordo_wal_size_bytes", nil, 1, -1},
			{"ordo_wal_failed", nil, 0, 0},
			{"ordo_connected_clients", nil, 2, 2},
			{"ordo_pubsub_clients", nil, 1, 1},
			{"ordo_pubsub_channels", nil, 1, 1},
			{"ordo_pubsub_patterns", nil, 1, 1},
			{"ordo_net_input_bytes_total", nil, n * 20, -1},
			{"ordo_net_output_bytes_total", nil, n * 4, -1},
			{"ordo_slow_subscriber_disconnects_total", nil, 0, 0},
			{"go_goroutines", nil, 1, -1},
			{"process_open_fds", nil, 1, -1},
		})
	}, "scrape after %d publishes", n)

	count, sum, err := m.Histogram("ordo_publish_commit_duration_seconds")
	if err != nil || count != n || sum <= 0 {
		t.Errorf("commit latency histogram: count %d sum %g (%v), want %d publishes observed", count, sum, err, n)
	}
	fsyncs, _, err := m.Histogram("ordo_wal_fsync_duration_seconds")
	if err != nil || fsyncs < 1 {
		t.Errorf("fsync histogram: count %d (%v), want at least one", fsyncs, err)
	}
	batches, entries, err := m.Histogram("ordo_wal_batch_entries")
	if err != nil || batches < 1 || entries < n {
		t.Errorf("batch histogram: %d batches of %g entries (%v), want every published entry in a batch (at least %d)", batches, entries, err, n)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		code, body, err := testkit.HTTPGet("http://" + addr + path)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s: %d %q (%v), want 200", path, code, body, err)
		}
	}

	s.Close()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("metrics listener %s still accepts after Close", addr)
	}
}

type metricCheck struct {
	name     string
	labels   []string
	min, max float64 // max < 0: no upper bound
}

func checkMetrics(m testkit.Metrics, checks []metricCheck) error {
	var errs []error
	for _, c := range checks {
		v, err := m.Value(c.name, c.labels...)
		switch {
		case err != nil:
			errs = append(errs, err)
		case v < c.min || c.max >= 0 && v > c.max:
			errs = append(errs, fmt.Errorf("%s%v = %g, want %g..%g", c.name, c.labels, v, c.min, c.max))
		}
	}
	return errors.Join(errs...)
}

// Without metrics_addr nothing is served; with a busy port New fails,
// saying which option, before the data directory is created.
func TestMetricsAddr(t *testing.T) {
	s := startServer(t, nil)
	if a := s.MetricsAddr(); a != nil {
		t.Errorf("metrics served on %s without metrics_addr", a)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "node")
	_, err = New(Config{ID: 1, DataDir: dir, MetricsAddr: busy.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "metrics_addr "+busy.Addr().String()) {
		t.Fatalf("New with a busy metrics port: %v, want an error naming metrics_addr", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory touched before the metrics port failed: %v", err)
	}
}
