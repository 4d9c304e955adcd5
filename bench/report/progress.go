package report

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ordo-broker/ordo/bench"
)

// Progress shows a run while it goes, from its samples: on a terminal one
// line rewritten in place, elsewhere (a log, a pipe) one plain line per
// sample.
type Progress struct {
	w                            io.Writer
	tty                          bool
	total                        time.Duration
	prefix                       string
	mu                           sync.Mutex
	published, delivered, errors int64
	shown                        bool
}

// NewProgress shows run (1-based) of runs of a benchmark with options o
// on w; tty says whether w is a terminal.
func NewProgress(w io.Writer, tty bool, o bench.Options, run, runs int) *Progress {
	p := &Progress{w: w, tty: tty, total: o.Duration}
	if runs > 1 {
		p.prefix = fmt.Sprintf("run %d/%d  ", run, runs)
	}
	return p
}

// Sample is a bench.Options.OnSample.
func (p *Progress) Sample(s bench.Sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published += s.Published
	p.delivered += s.Delivered
	p.errors += s.Errors
	line := numbers.Sprintf("%s%5.1fs/%s  published %d  %.0f msg/s  ack p99 %sms",
		p.prefix, s.At.Seconds(), p.total, p.published, float64(p.published)/s.At.Seconds(), ms(s.AckP99))
	if p.delivered > 0 {
		line += fmt.Sprintf("  end-to-end p99 %sms", ms(s.DeliveryP99))
	}
	line += numbers.Sprintf("  errors %d", p.errors)
	if p.tty {
		// Back to the line's start, rewrite it, erase what is left of a
		// longer previous one.
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.shown = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// Done clears the terminal line, so that what follows starts clean.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}
