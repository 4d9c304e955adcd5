package bench

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Sample is one interval of a run: what was acknowledged and delivered in
// it and the latencies of those messages. Latencies are 0 in an interval
// without messages.
type Sample struct {
	At           time.Duration `json:"at_ns"`   // end of the interval, since publishing started
	Span         time.Duration `json:"span_ns"` // length of the interval
	Published    int64         `json:"published"`
	Delivered    int64         `json:"delivered"`
	Errors       int64         `json:"errors"`
	PublishRate  float64       `json:"publish_per_sec"`
	DeliveryRate float64       `json:"deliver_per_sec"`
	AckP50       time.Duration `json:"ack_p50_ns"`
	AckP99       time.Duration `json:"ack_p99_ns"`
	AckMax       time.Duration `json:"ack_max_ns"`
	DeliveryP50  time.Duration `json:"delivery_p50_ns"`
	DeliveryP99  time.Duration `json:"delivery_p99_ns"`
	DeliveryMax  time.Duration `json:"delivery_max_ns"`
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, int64(time.Minute), 3) }

// recorder is one goroutine's latency histogram for the current interval.
// The owner records under a mutex that the sampler takes once per
// interval to move the values out, so neither waits on the other for
// long and no value is counted twice or lost.
type recorder struct {
	mu  sync.Mutex
	cur *hdrhistogram.Histogram
}

func newRecorder() *recorder { return &recorder{cur: newHist()} }

func (r *recorder) record(v int64) {
	r.mu.Lock()
	r.cur.RecordValue(v)
	r.mu.Unlock()
}

// moveTo adds the interval's values to dst and starts a new interval.
func (r *recorder) moveTo(dst *hdrhistogram.Histogram) {
	r.mu.Lock()
	dst.Merge(r.cur)
	r.cur.Reset()
	r.mu.Unlock()
}

// sampler cuts a run into Samples every Interval, and adds every
// interval's latencies to the whole-run histograms.
type sampler struct {
	o                  Options
	start              time.Time
	published, errs    *atomic.Int64
	acks               []*recorder
	subs               []*subscriber
	ackTotal, delTotal *hdrhistogram.Histogram
	ackIv, delIv       *hdrhistogram.Histogram // reused for every interval
	last               time.Duration
	lastPub, lastDel   int64
	lastErr            int64
	samples            []Sample
	stop, done         chan struct{}
}

func startSampler(start time.Time, o Options, published, errs *atomic.Int64, acks []*recorder, subs []*subscriber) *sampler {
	s := &sampler{
		o: o, start: start, published: published, errs: errs, acks: acks, subs: subs,
		ackTotal: newHist(), delTotal: newHist(), ackIv: newHist(), delIv: newHist(),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// The ticker starts now, not when the goroutine gets to run, so that
	// the samples fall on whole intervals from the start.
	go s.loop(time.NewTicker(o.Interval))
	return s
}

func (s *sampler) loop(t *time.Ticker) {
	defer close(s.done)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.take(false)
		case <-s.stop:
			return
		}
	}
}

// finish takes the last, usually shorter, sample once every publisher and
// subscriber has stopped, and returns the whole-run ack and delivery
// latency histograms.
func (s *sampler) finish() (ack, delivery *hdrhistogram.Histogram) {
	close(s.stop)
	<-s.done
	s.take(true)
	return s.ackTotal, s.delTotal
}

func (s *sampler) take(final bool) {
	at := time.Since(s.start)
	s.ackIv.Reset()
	s.delIv.Reset()
	for _, r := range s.acks {
		r.moveTo(s.ackIv)
	}
	var del int64
	for _, sub := range s.subs {
		sub.lat.moveTo(s.delIv)
		del += sub.count.Load()
	}
	pub, errs := s.published.Load(), s.errs.Load()
	smp := Sample{
		At: at, Span: at - s.last,
		Published: pub - s.lastPub, Delivered: del - s.lastDel, Errors: errs - s.lastErr,
		AckP50: time.Duration(s.ackIv.ValueAtQuantile(50)), AckP99: time.Duration(s.ackIv.ValueAtQuantile(99)),
		AckMax:      time.Duration(s.ackIv.Max()),
		DeliveryP50: time.Duration(s.delIv.ValueAtQuantile(50)), DeliveryP99: time.Duration(s.delIv.ValueAtQuantile(99)),
		DeliveryMax: time.Duration(s.delIv.Max()),
	}
	s.ackTotal.Merge(s.ackIv)
	s.delTotal.Merge(s.delIv)
	s.last, s.lastPub, s.lastDel, s.lastErr = at, pub, del, errs
	// The final slice holds what straggled in after the last tick; an
	// empty one would only add a misleading zero at the end.
	if final && smp.Published == 0 && smp.Delivered == 0 && smp.Errors == 0 {
		return
	}
	if sec := smp.Span.Seconds(); sec > 0 {
		smp.PublishRate = float64(smp.Published) / sec
		smp.DeliveryRate = float64(smp.Delivered) / sec
	}
	s.samples = append(s.samples, smp)
	if s.o.OnSample != nil {
		s.o.OnSample(smp)
	}
}
