package report

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CSVHeader names the columns of a CSV row: parameters first, then
// results. Latencies are in milliseconds, rates per second, MB 10^6
// payload bytes.
var CSVHeader = []string{
	"started", "run", "addrs", "channel", "clients", "pipeline", "subscribers", "size", "duration_s", "messages",
	"elapsed_s", "published", "publish_msg_s", "publish_mb_s",
	"delivered", "expected", "deliver_msg_s", "deliver_mb_s",
	"ack_p50_ms", "ack_p90_ms", "ack_p99_ms", "ack_p999_ms", "ack_max_ms",
	"e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_p999_ms", "e2e_max_ms",
	"errors", "order_violations", "first_error",
}

// CSVRow is a run as one CSV record, in CSVHeader's order.
func CSVRow(r Run) []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	d := func(v time.Duration) string { return f(float64(v)/1e6, 3) }
	o := r.Params
	return []string{
		r.Started.UTC().Format(time.RFC3339), i(int64(r.Index)), strings.Join(o.Addrs, " "), o.Channel,
		i(int64(o.Clients)), i(int64(o.Pipeline)), i(int64(o.Subscribers)), i(int64(o.Size)), f(o.Duration.Seconds(), 3), i(o.Messages),
		f(r.Elapsed.Seconds(), 3), i(r.Published), f(r.PublishRate, 1), f(r.PublishMBps, 3),
		i(r.Delivered), i(r.Expected), f(r.DeliveryRate, 1), f(r.DeliveryMBps, 3),
		d(r.AckP50), d(r.AckP90), d(r.AckP99), d(r.AckP999), d(r.AckMax),
		d(r.DeliveryP50), d(r.DeliveryP90), d(r.DeliveryP99), d(r.DeliveryP999), d(r.DeliveryMax),
		i(r.Errors), i(r.OrderViolated), strings.TrimSpace(r.FirstError),
	}
}

// AppendCSV adds one row per run to the CSV file at path, writing the
// header first if the file is new or empty, so that the runs of several
// invocations line up in one table. A file whose header is not CSVHeader
// is left alone: its columns would not match.
func AppendCSV(path string, runs ...Run) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	header, err := csv.NewReader(f).Read()
	switch {
	case errors.Is(err, io.EOF):
		header = nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case !slices.Equal(header, CSVHeader):
		return fmt.Errorf("%s has other columns than ordo bench writes: give another file", path)
	}
	w := csv.NewWriter(f)
	if header == nil {
		w.Write(CSVHeader)
	}
	for _, r := range runs {
		w.Write(CSVRow(r))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return f.Close()
}

// WriteJSON writes each run as one JSON object on its own line (JSON
// Lines: `jq`, or any decoder reading a stream of values, takes it as is).
func WriteJSON(w io.Writer, runs ...Run) error {
	enc := json.NewEncoder(w)
	for _, r := range runs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// AppendJSON adds one line per run to the JSON Lines file at path.
func AppendJSON(path string, runs ...Run) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := WriteJSON(f, runs...); err != nil {
		return err
	}
	return f.Close()
}
