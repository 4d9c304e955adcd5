// Package bench is ordo's load generator: publishers pipelining PUBLISH
// over raw RESP connections and subscribers measuring end-to-end latency,
// against ordo or any Redis-protocol server, bounded in time and count.
package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ordo-broker/ordo/clients/resp"
)

// Options configure a run.
type Options struct {
	Addrs       []string      // servers; publishers and subscribers are spread over them
	Clients     int           // publisher connections
	Pipeline    int           // PUBLISHes in flight per connection
	Subscribers int           // subscriber connections
	Size        int           // payload bytes (at least 16)
	Channel     string        // channel published to
	Duration    time.Duration // how long publishers run
	Messages    int64         // stop after this many publishes (0 = no limit)
	Drain       time.Duration // how long to wait for deliveries after publishing stops
}

// Result is what a run measured.
type Result struct {
	Published     int64         `json:"published"`
	Errors        int64         `json:"errors"`
	FirstError    string        `json:"first_error,omitempty"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	PublishRate   float64       `json:"publish_per_sec"`
	AckP50        time.Duration `json:"ack_p50_ns"`
	AckP99        time.Duration `json:"ack_p99_ns"`
	AckP999       time.Duration `json:"ack_p999_ns"`
	AckMax        time.Duration `json:"ack_max_ns"`
	Delivered     int64         `json:"delivered"`
	Expected      int64         `json:"expected"`
	DeliveryP50   time.Duration `json:"delivery_p50_ns"`
	DeliveryP99   time.Duration `json:"delivery_p99_ns"`
	DeliveryMax   time.Duration `json:"delivery_max_ns"`
	OrderViolated int64         `json:"order_violations"`
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
		s, err := newSubscriber(o.Addrs[i%len(o.Addrs)], o.Channel, o.Clients)
		if err != nil {
			return res, err
		}
		defer s.conn.Close()
		subs = append(subs, s)
	}
	for _, s := range subs {
		go s.run()
	}

	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var (
		published, errs atomic.Int64
		firstErr        atomic.Value
		wg              sync.WaitGroup
		mu              sync.Mutex
		ackHist         = hdrhistogram.New(1, int64(time.Minute), 3)
	)
	start := time.Now()
	for i := 0; i < o.Clients; i++ {
		conn, err := net.DialTimeout("tcp", o.Addrs[i%len(o.Addrs)], 5*time.Second)
		if err != nil {
			return res, err
		}
		defer conn.Close()
		wg.Add(1)
		go func(pub uint32, conn net.Conn) {
			defer wg.Done()
			h := hdrhistogram.New(1, int64(time.Minute), 3)
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
					h.RecordValue(int64(time.Since(sent[k])))
				}
			}
			mu.Lock()
			ackHist.Merge(h)
			mu.Unlock()
		}(uint32(i), conn)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Published = published.Load()
	res.Errors = errs.Load()
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	res.PublishRate = float64(res.Published) / res.Elapsed.Seconds()
	res.AckP50 = time.Duration(ackHist.ValueAtQuantile(50))
	res.AckP99 = time.Duration(ackHist.ValueAtQuantile(99))
	res.AckP999 = time.Duration(ackHist.ValueAtQuantile(99.9))
	res.AckMax = time.Duration(ackHist.Max())

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
	delHist := hdrhistogram.New(1, int64(time.Minute), 3)
	for _, s := range subs {
		s.conn.Close()
		<-s.done
		res.Delivered += s.count.Load()
		res.OrderViolated += s.violations
		delHist.Merge(s.hist)
	}
	res.DeliveryP50 = time.Duration(delHist.ValueAtQuantile(50))
	res.DeliveryP99 = time.Duration(delHist.ValueAtQuantile(99))
	res.DeliveryMax = time.Duration(delHist.Max())
	return res, nil
}

// subscriber counts deliveries, checks each publisher's messages arrive in
// the order sent, and records end-to-end latency.
type subscriber struct {
	conn       net.Conn
	rd         *bufio.Reader
	hist       *hdrhistogram.Histogram
	last       []uint32
	count      atomic.Int64
	violations int64
	done       chan struct{}
}

func newSubscriber(addr, channel string, publishers int) (*subscriber, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s := &subscriber{conn: conn, rd: bufio.NewReaderSize(conn, 256<<10), hist: hdrhistogram.New(1, int64(time.Minute), 3), last: make([]uint32, publishers), done: make(chan struct{})}
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
		s.hist.RecordValue(time.Now().UnixNano() - sentNs)
		if int(pub) < len(s.last) {
			if n <= s.last[pub] {
				s.violations++
			}
			s.last[pub] = n
		}
		s.count.Add(1)
	}
}

// Format renders a result for people.
func (r Result) Format(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
	fmt.Fprintf(w, "published   %d in %.2fs = %.0f msg/s (%d errors)\n", r.Published, r.Elapsed.Seconds(), r.PublishRate, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", strings.TrimSpace(r.FirstError))
	}
	fmt.Fprintf(w, "ack latency p50 %s  p99 %s  p99.9 %s  max %s\n", ms(r.AckP50), ms(r.AckP99), ms(r.AckP999), ms(r.AckMax))
	if r.Expected > 0 {
		fmt.Fprintf(w, "delivered   %d of %d expected, order violations %d\n", r.Delivered, r.Expected, r.OrderViolated)
		fmt.Fprintf(w, "e2e latency p50 %s  p99 %s  max %s\n", ms(r.DeliveryP50), ms(r.DeliveryP99), ms(r.DeliveryMax))
	}
}

// Median returns the run with the median publish rate.
func Median(rs []Result) Result {
	sorted := append([]Result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].PublishRate < sorted[j].PublishRate })
	return sorted[len(sorted)/2]
}
