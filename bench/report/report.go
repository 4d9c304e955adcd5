// Package report presents what bench measured: the progress line while a
// run goes, the table at its end, the CSV and JSON files that keep every
// run, and the latency-over-time plot. Measuring stays in package bench.
package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/bench"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Run is one benchmark run together with what it was asked to do. Its JSON
// form is the result's fields (the names `ordo bench --json` has always
// printed) plus "started", "run" and "params".
type Run struct {
	Started time.Time     `json:"started"`
	Index   int           `json:"run"` // 1-based, within one invocation
	Params  bench.Options `json:"params"`
	bench.Result
}

// numbers groups thousands, so that 1234567 reads as 1,234,567.
var numbers = message.NewPrinter(language.English)

// Title names a run's parameters in one line, for the table and the plot.
func Title(o bench.Options) string {
	plural := func(n int, one string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	length := o.Duration.String()
	if o.Messages > 0 {
		length = numbers.Sprintf("%s or %d messages", length, o.Messages)
	}
	load := fmt.Sprintf("pipeline %d", o.Pipeline)
	if o.Rate > 0 {
		load = numbers.Sprintf("%.0f msg/s open loop", o.Rate)
	}
	return fmt.Sprintf("%s: %s x %s, %s, %d B payloads, %s",
		strings.Join(o.Addrs, ","), plural(o.Clients, "publisher"), load,
		plural(o.Subscribers, "subscriber"), o.Size, length)
}

// ms renders a latency in milliseconds, the unit of every latency column.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// Table writes a run's results for people: throughput, errors, and ack and
// end-to-end latency percentiles. of > 1 says the run is the median of
// that many.
func Table(w io.Writer, r Run, of int) {
	fmt.Fprintf(w, "ordo bench %s\n", Title(r.Params))
	if of > 1 {
		fmt.Fprintf(w, "median of %d runs by published msg/s\n", of)
	}
	fmt.Fprintf(w, "\n%-12s %14s %12s %9s\n", "", "messages", "msg/s", "MB/s")
	fmt.Fprint(w, numbers.Sprintf("%-12s %14d %12.0f %9.2f   in %.2fs\n", "published", r.Published, r.PublishRate, r.PublishMBps, r.Elapsed.Seconds()))
	if r.Expected > 0 || r.Params.Subscribers > 0 {
		fmt.Fprint(w, numbers.Sprintf("%-12s %14d %12.0f %9.2f   of %d expected, %d out of order\n",
			"delivered", r.Delivered, r.DeliveryRate, r.DeliveryMBps, r.Expected, r.OrderViolated))
	}
	fmt.Fprint(w, numbers.Sprintf("%-12s %14d\n", "errors", r.Errors))
	if r.FirstError != "" {
		fmt.Fprintf(w, "%-12s %s\n", "first error", strings.TrimSpace(r.FirstError))
	}
	fmt.Fprintf(w, "\n%-12s %9s %9s %9s %9s %9s\n", "latency ms", "p50", "p90", "p99", "p99.9", "max")
	fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s\n", "ack", ms(r.AckP50), ms(r.AckP90), ms(r.AckP99), ms(r.AckP999), ms(r.AckMax))
	if r.Delivered > 0 {
		fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s\n", "end-to-end", ms(r.DeliveryP50), ms(r.DeliveryP90), ms(r.DeliveryP99), ms(r.DeliveryP999), ms(r.DeliveryMax))
	}
}

// Line is a run in one line, for the list of runs before their median.
func Line(r Run) string {
	s := numbers.Sprintf("run %d: %.0f msg/s, ack p99 %sms", r.Index, r.PublishRate, ms(r.AckP99))
	if r.Delivered > 0 {
		s += fmt.Sprintf(", end-to-end p99 %sms", ms(r.DeliveryP99))
	}
	if r.Errors > 0 {
		s += numbers.Sprintf(", %d errors", r.Errors)
	}
	return s
}

// Median returns the run with the median publish rate.
func Median(runs []Run) Run {
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b Run) int { return cmp.Compare(a.PublishRate, b.PublishRate) })
	return sorted[len(sorted)/2]
}
