// Package metrics exposes a node to Prometheus and to health checks, on
// an HTTP listener of its own (metrics_addr), apart from the Redis port:
//
//	/metrics  Prometheus text exposition (the node's metrics, Go runtime, process)
//	/healthz  200 while the process serves HTTP at all (liveness)
//	/readyz   200 when a leader is known and a majority of voters is
//	          reachable as this node sees it, else 503 and one line saying why
//
// Almost everything is read when scraped, from the counters and status the
// node keeps anyway (replica.Stats, replica.Status, the front end's
// counters), so metrics add no work to the publish path. Only latency and
// batch-size histograms are recorded as events happen (Metrics implements
// replica.Observer): a few atomic adds per batch or per publish, no
// allocation.
package metrics

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// FrontEnd is a snapshot of the Redis front end's counters, taken at
// scrape time.
type FrontEnd struct {
	Clients       int // connected clients (peer links excluded)
	PubsubClients int // clients with at least one subscription
	Channels      int // channels with a subscriber on this node
	Patterns      int
	ShardChannels int

	ConnectionsReceived int64
	Commands            int64
	RejectedConnections int64 // refused by max_clients
	InputBytes          int64 // bytes read from clients
	OutputBytes         int64 // bytes written to clients
	// SlowSubscriberDisconnects: subscribers cut off because their output
	// buffer passed a pubsub_output_buffer limit.
	SlowSubscriberDisconnects int64
}

// Metrics is one node's metrics registry and HTTP endpoints.
type Metrics struct {
	reg      *prometheus.Registry
	frontEnd func() FrontEnd
	replica  atomic.Pointer[replica.Replica]

	commit prometheus.Histogram // publish taken in -> committed and applied
	fsync  prometheus.Histogram // one log batch written and fsynced
	batch  prometheus.Histogram // entries per log batch

	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when the server has stopped
}

// New builds the registry; frontEnd is called at each scrape. Attach the
// replica once it is open.
func New(frontEnd func() FrontEnd) *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		frontEnd: frontEnd,
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordo_publish_commit_duration_seconds",
			Help: "Time from a local publish being taken in to its commit (durable on a majority) and delivery here.",
			// 0.25ms .. 8s: a fsync is ~0.3-1.3ms, the publish timeout 5s.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ordo_wal_fsync_duration_seconds",
			Help: "Time to write one batch of log entries and fsync it (one write, one fsync; no fsync with fsync=never).",
			// 50us .. 1.6s.
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordo_wal_batch_entries",
			Help:    "Log entries written per batch (per fsync): group commit at work.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 .. 4096
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commit, m.fsync, m.batch,
		nodeCollector{m},
	)
	return m
}

// Attach sets the replica whose state is reported (and which /readyz
// judges). Before it, only process, Go and front-end metrics are served.
func (m *Metrics) Attach(r *replica.Replica) { m.replica.Store(r) }

// Registry is where the node's metrics are registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// LogWritten implements replica.Observer.
func (m *Metrics) LogWritten(entries int, took time.Duration) {
	m.fsync.Observe(took.Seconds())
	m.batch.Observe(float64(entries))
}

// PublishCommitted implements replica.Observer.
func (m *Metrics) PublishCommitted(took time.Duration) { m.commit.Observe(took.Seconds()) }

var _ replica.Observer = (*Metrics)(nil)

// Handler serves /metrics, /healthz and /readyz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := Readiness(m.replica.Load()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(strings.ReplaceAll(err.Error(), "\n", " ") + "\n")) // one line, always
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// Start serves the endpoints on ln (in the background) until Close.
func (m *Metrics) Start(ln net.Listener) {
	m.srv = &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	m.ln, m.done = ln, make(chan struct{})
	go func() {
		defer close(m.done)
		m.srv.Serve(ln) // returns ErrServerClosed after Close; an accept error ends it too
	}()
}

// Addr is the address served (nil before Start).
func (m *Metrics) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// Close closes the listener and any scrape in progress, and waits until
// the server has stopped.
func (m *Metrics) Close() error {
	if m.srv == nil {
		return nil
	}
	err := m.srv.Close()
	<-m.done
	return err
}
