// Package bench is ordo's load generator: publishers pipelining PUBLISH
// over raw RESP connections and subscribers measuring end-to-end latency,
// against ordo or any Redis-protocol server, bounded in time and count.
package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ordo-broker/ordo/clients/resp"
)

// Options configure a run. The JSON names are those of the "params"
// object that `ordo bench --json` writes for every run.
type Options struct {
	Addrs       []string      `json:"addrs"`       // servers; publishers and subscribers are spread over them
	Clients     int           `json:"clients"`     // publisher connections
	Pipeline    int           `json:"pipeline"`    // PUBLISHes in flight per connection
	Subscribers int           `json:"subscribers"` // subscriber connections
	Size        int           `json:"size"`        // payload bytes (at least 16)
	Channel     string        `json:"channel"`     // channel published to
	Duration    time.Duration `json:"duration_ns"` // how long publishers run
	Messages    int64         `json:"messages"`    // stop after this many publishes (0 = no limit)
	Drain       time.Duration `json:"drain_ns"`    // how long to wait for deliveries after publishing stops
	Interval    time.Duration `json:"interval_ns"` // how often a Sample is taken (default 1s)
	// Rate, if set, makes the run open loop: the publishers together send
	// this many PUBLISHes a second on a fixed schedule, whatever the
	// replies do, and every latency is measured from a message's intended
	// send time, so a stall counts for every message it delays
	// (coordinated omission corrected). Pipeline is then ignored.
	Rate float64 `json:"rate,omitempty"`

	// Dialer connects every publisher and subscriber (user, password,
	// TLS; its Timeout defaults to 5s). Never written out: it may hold a
	// password.
	Dialer resp.Dialer `json:"-"`

	// OnSample, if set, is called with every Sample as it is taken (from
	// the sampling goroutine, so it must return quickly): this is how a
	// caller shows progress.
	OnSample func(Sample) `json:"-"`
}

// Result is what a run measured. Rates are per second of the publishing
// phase (deliveries: from the start to the last delivery); MB are 10^6
// payload bytes; Delivered and Expected count every subscriber's copy.
type Result struct {
	Published     int64         `json:"published"`
	Errors        int64         `json:"errors"`
	FirstError    string        `json:"first_error,omitempty"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	PublishRate   float64       `json:"publish_per_sec"`
	PublishMBps   float64       `json:"publish_mb_per_sec"`
	AckP50        time.Duration `json:"ack_p50_ns"`
	AckP90        time.Duration `json:"ack_p90_ns"`
	AckP99        time.Duration `json:"ack_p99_ns"`
	AckP999       time.Duration `json:"ack_p999_ns"`
	AckMax        time.Duration `json:"ack_max_ns"`
	Delivered     int64         `json:"delivered"`
	Expected      int64         `json:"expected"`
	DeliveryRate  float64       `json:"deliver_per_sec"`
	DeliveryMBps  float64       `json:"deliver_mb_per_sec"`
	DeliveryP50   time.Duration `json:"delivery_p50_ns"`
	DeliveryP90   time.Duration `json:"delivery_p90_ns"`
	DeliveryP99   time.Duration `json:"delivery_p99_ns"`
	DeliveryP999  time.Duration `json:"delivery_p999_ns"`
	DeliveryMax   time.Duration `json:"delivery_max_ns"`
	OrderViolated int64         `json:"order_violations"`
	// Samples are the run cut into Interval-long slices, in order; the last
	// one may be shorter.
	Samples []Sample `json:"samples"`
}

// WithDefaults returns o with every unset option at its default: what Run
// will actually do.
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

func (o *Options) defaults() {
	if len(o.Addrs) == 0 {
		o.Addrs = []string{"127.0.0.1:6379"}
	}
	if o.Clients <= 0 {
		o.Clients = 50
	}
	if o.Pipeline <= 0 {
		o.Pipeline = 1
	}
	if o.Size < 16 {
		o.Size = 16
	}
	if o.Channel == "" {
		o.Channel = "bench"
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Dialer.Timeout <= 0 {
		o.Dialer.Timeout = 5 * time.Second
	}
}

// payload layout: | publisher u32 | counter u32 | send time unix-ns u64 | padding |
func makePayload(buf []byte, pub, n uint32, now int64) {
	binary.BigEndian.PutUint32(buf[0:], pub)
	binary.BigEndian.PutUint32(buf[4:], n)
	binary.BigEndian.PutUint64(buf[8:], uint64(now))
}

// Run executes one benchmark.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	var res Result
	var subs []*subscriber
	for i := 0; i < o.Subscribers; i++ {
		s, err := newSubscriber(ctx, o.Dialer, o.Addrs[i%len(o.Addrs)], o.Channel, o.Clients)
		if err != nil {
			return res, err
		}
		defer s.conn.Close()
		subs = append(subs, s)
	}
	for _, s := range subs {
		go s.run()
	}
	// Connect every publisher before the clock starts, so that dialing is
	// not measured as publishing time.
	conns := make([]net.Conn, o.Clients)
	for i := range conns {
		conn, err := o.Dialer.Dial(ctx, o.Addrs[i%len(o.Addrs)])
		if err != nil {
			return res, err
		}
		defer conn.Close()
		conns[i] = conn
	}

	var (
		published, errs atomic.Int64
		firstErr        atomic.Value
		wg              sync.WaitGroup
		acks            = make([]*recorder, o.Clients)
	)
	for i := range acks {
		acks[i] = newRecorder()
	}
	start := time.Now()
	smp := startSampler(start, o, &published, &errs, acks, subs)
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	for i, conn := range conns {
		wg.Add(1)
		if o.Rate > 0 {
			go func(pub uint32, conn net.Conn, ack *recorder) {
				defer wg.Done()
				if err := openLoop(ctx, o, pub, conn, start, &published, ack); err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					errs.Add(1)
				}
			}(uint32(i), conn, acks[i])
			continue
		}
		go func(pub uint32, conn net.Conn, ack *recorder) {
			defer wg.Done()
			rd := bufio.NewReaderSize(conn, 64<<10)
			payload := make([]byte, o.Size)
			for i := range payload[16:] {
				payload[16+i] = 'x'
			}
			ch := []byte(o.Channel)
			publish := []byte("PUBLISH")
			var buf []byte
			var n uint32
			sent := make([]time.Time, o.Pipeline)
			for ctx.Err() == nil {
				if o.Messages > 0 && published.Load() >= o.Messages {
					break
				}
				buf = buf[:0]
				for k := 0; k < o.Pipeline; k++ {
					n++
					now := time.Now()
					sent[k] = now
					makePayload(payload, pub, n, now.UnixNano())
					buf = resp.AppendCommand(buf, publish, ch, payload)
				}
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := conn.Write(buf); err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					errs.Add(int64(o.Pipeline))
					return
				}
				for k := 0; k < o.Pipeline; k++ {
					r, err := resp.Read(rd)
					if err != nil {
						firstErr.CompareAndSwap(nil, err.Error())
						errs.Add(int64(o.Pipeline - k))
						return
					}
					if e := r.Err(); e != nil {
						firstErr.CompareAndSwap(nil, e.Error())
						errs.Add(1)
						continue
					}
					published.Add(1)
					ack.record(int64(time.Since(sent[k])))
				}
			}
		}(uint32(i), conn, acks[i])
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Published = published.Load()
	res.Errors = errs.Load()
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}

	// Wait (bounded) for every subscriber to receive every acknowledged
	// message.
	res.Expected = res.Published * int64(len(subs))
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) {
		var got int64
		for _, s := range subs {
			got += s.count.Load()
		}
		if got >= res.Expected {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var lastDelivery time.Time
	for _, s := range subs {
		s.conn.Close()
		<-s.done
		res.Delivered += s.count.Load()
		res.OrderViolated += s.violations
		if s.lastAt.After(lastDelivery) {
			lastDelivery = s.lastAt
		}
	}
	ackHist, delHist := smp.finish()
	res.Samples = smp.samples

	mb := float64(o.Size) / 1e6
	res.PublishRate = float64(res.Published) / res.Elapsed.Seconds()
	res.PublishMBps = res.PublishRate * mb
	if d := lastDelivery.Sub(start); d > 0 {
		res.DeliveryRate = float64(res.Delivered) / d.Seconds()
		res.DeliveryMBps = res.DeliveryRate * mb
	}
	res.AckP50, res.AckP90, res.AckP99, res.AckP999, res.AckMax = quantiles(ackHist)
	res.DeliveryP50, res.DeliveryP90, res.DeliveryP99, res.DeliveryP999, res.DeliveryMax = quantiles(delHist)
	return res, nil
}

func quantiles(h *hdrhistogram.Histogram) (p50, p90, p99, p999, max time.Duration) {
	q := func(p float64) time.Duration { return time.Duration(h.ValueAtQuantile(p)) }
	return q(50), q(90), q(99), q(99.9), time.Duration(h.Max())
}

// subscriber counts deliveries, checks each publisher's messages arrive in
// the order sent, and records end-to-end latency.
type subscriber struct {
	conn       net.Conn
	rd         *bufio.Reader
	lat        *recorder // end-to-end latency
	last       []uint32
	count      atomic.Int64
	violations int64
	lastAt     time.Time // of the last delivery; read after done
	done       chan struct{}
}

func newSubscriber(ctx context.Context, d resp.Dialer, addr, channel string, publishers int) (*subscriber, error) {
	conn, err := d.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	s := &subscriber{conn: conn, rd: bufio.NewReaderSize(conn, 256<<10), lat: newRecorder(), last: make([]uint32, publishers), done: make(chan struct{})}
	conn.Write(resp.Command("SUBSCRIBE", channel))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := resp.Read(s.rd)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if e := r.Err(); e != nil {
		conn.Close()
		return nil, e
	}
	conn.SetReadDeadline(time.Time{})
	return s, nil
}

func (s *subscriber) run() {
	defer close(s.done)
	for {
		r, err := resp.Read(s.rd)
		if err != nil {
			return
		}
		if len(r.Elems) != 3 || string(r.Elems[0].Str) != "message" {
			continue
		}
		p := r.Elems[2].Str
		if len(p) < 16 {
			continue
		}
		pub, n := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		sentNs := int64(binary.BigEndian.Uint64(p[8:]))
		now := time.Now()
		s.lat.record(now.UnixNano() - sentNs)
		s.lastAt = now
		if int(pub) < len(s.last) {
			if n <= s.last[pub] {
				s.violations++
			}
			s.last[pub] = n
		}
		s.count.Add(1)
	}
}
