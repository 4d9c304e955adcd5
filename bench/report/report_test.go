package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/bench"
)

// synthetic is a 10-second run with known numbers: 2 subscribers, a
// latency spike at second 6, and a short last sample.
func synthetic() Run {
	r := Run{
		Started: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC),
		Index:   1,
		Params: bench.Options{Addrs: []string{"127.0.0.1:6379"}, Clients: 50, Pipeline: 16, Subscribers: 2,
			Size: 100, Channel: "bench", Duration: 10 * time.Second, Interval: time.Second},
		Result: bench.Result{
			Published: 1234567, Errors: 3, FirstError: "-TRYAGAIN leader changed\r\n", Elapsed: 10 * time.Second,
			PublishRate: 123456.7, PublishMBps: 12.35,
			AckP50: 410 * time.Microsecond, AckP90: 720 * time.Microsecond, AckP99: 1310 * time.Microsecond,
			AckP999: 2900 * time.Microsecond, AckMax: 8120 * time.Microsecond,
			Delivered: 2469134, Expected: 2469134, DeliveryRate: 246900.2, DeliveryMBps: 24.69,
			DeliveryP50: 520 * time.Microsecond, DeliveryP90: 900 * time.Microsecond, DeliveryP99: 1700 * time.Microsecond,
			DeliveryP999: 3400 * time.Microsecond, DeliveryMax: 9 * time.Millisecond,
		},
	}
	for i := 1; i <= 10; i++ {
		spike := time.Duration(1)
		if i == 6 {
			spike = 4
		}
		pub := int64(110000 + 3000*i)
		span := time.Second
		if i == 10 {
			span = 200 * time.Millisecond
			pub /= 5
		}
		r.Samples = append(r.Samples, bench.Sample{
			At: time.Duration(i-1)*time.Second + span, Span: span, Published: pub, Delivered: 2 * pub,
			PublishRate: float64(pub) / span.Seconds(), DeliveryRate: float64(2*pub) / span.Seconds(),
			AckP50: 400 * time.Microsecond * spike, AckP99: 1300 * time.Microsecond * spike, AckMax: 5 * time.Millisecond * spike,
			DeliveryP50: 500 * time.Microsecond * spike, DeliveryP99: 1700 * time.Microsecond * spike, DeliveryMax: 6 * time.Millisecond * spike,
		})
	}
	return r
}

// row finds the table line that starts with label and returns its fields.
func row(t *testing.T, table, label string) []string {
	t.Helper()
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, label+" ") {
			return strings.Fields(strings.TrimPrefix(l, label))
		}
	}
	t.Fatalf("no %q line in\n%s", label, table)
	return nil
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	Table(&b, synthetic(), 3)
	out := b.String()
	for _, want := range []string{
		"ordo bench 127.0.0.1:6379: 50 publishers x pipeline 16, 2 subscribers, 100 B payloads, 10s",
		"median of 3 runs",
		"first error  -TRYAGAIN leader changed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	checks := map[string][]string{
		"published":  {"1,234,567", "123,457", "12.35"},
		"delivered":  {"2,469,134", "246,900", "24.69"},
		"errors":     {"3"},
		"latency ms": {"p50", "p90", "p99", "p99.9", "max"},
		"ack":        {"0.410", "0.720", "1.310", "2.900", "8.120"},
		"end-to-end": {"0.520", "0.900", "1.700", "3.400", "9.000"},
	}
	for label, want := range checks {
		got := row(t, out, label)
		if len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("%s row: got %q, want it to start with %q", label, got, want)
		}
	}
	// The columns line up: every latency value ends where its header does.
	lines := strings.Split(out, "\n")
	var header, ack string
	for _, l := range lines {
		if strings.HasPrefix(l, "latency ms") {
			header = l
		}
		if strings.HasPrefix(l, "ack ") {
			ack = l
		}
	}
	if len(header) != len(ack) {
		t.Errorf("latency columns misaligned:\n%s\n%s", header, ack)
	}

	// Without subscribers there is no delivery to report.
	r := synthetic()
	r.Params.Subscribers, r.Delivered, r.Expected = 0, 0, 0
	b.Reset()
	Table(&b, r, 1)
	if strings.Contains(b.String(), "delivered") || strings.Contains(b.String(), "end-to-end") || strings.Contains(b.String(), "median") {
		t.Errorf("table without subscribers:\n%s", b.String())
	}
}

func TestCSVAppendsRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.csv")
	r := synthetic()
	if err := AppendCSV(path, r); err != nil {
		t.Fatal(err)
	}
	r.Index = 2
	r.Params.Pipeline = 1
	if err := AppendCSV(path, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want a header and 2 rows: %q", len(recs), recs)
	}
	col := func(rec []string, name string) string {
		for i, h := range recs[0] {
			if h == name {
				return rec[i]
			}
		}
		t.Fatalf("no column %q in %q", name, recs[0])
		return ""
	}
	for name, want := range map[string]string{
		"started": "2026-12-02T08:00:00Z", "run": "1", "pipeline": "16", "published": "1234567",
		"publish_msg_s": "123456.7", "ack_p99_ms": "1.310", "e2e_p999_ms": "3.400", "errors": "3",
		"first_error": "-TRYAGAIN leader changed", "duration_s": "10.000",
	} {
		if got := col(recs[1], name); got != want {
			t.Errorf("row 1 %s = %q, want %q", name, got, want)
		}
	}
	if col(recs[2], "run") != "2" || col(recs[2], "pipeline") != "1" {
		t.Errorf("row 2: %q", recs[2])
	}

	// A CSV with other columns is not appended to.
	other := filepath.Join(t.TempDir(), "other.csv")
	os.WriteFile(other, []byte("a,b\n1,2\n"), 0o644)
	if err := AppendCSV(other, r); err == nil {
		t.Fatal("appended to a CSV with other columns")
	}
	if b, _ := os.ReadFile(other); string(b) != "a,b\n1,2\n" {
		t.Fatalf("other CSV changed: %q", b)
	}
}

func TestJSONOneObjectPerRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.json")
	r := synthetic()
	if err := AppendJSON(path, r); err != nil {
		t.Fatal(err)
	}
	r.Index = 2
	if err := AppendJSON(path, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var runs []map[string]any
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, m)
	}
	if len(runs) != 2 || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("%d objects in %d lines, want 2 and 2", len(runs), strings.Count(string(b), "\n"))
	}
	m := runs[0]
	// The result's names are those `ordo bench --json` always printed.
	for k, want := range map[string]float64{"run": 1, "published": 1234567, "publish_per_sec": 123456.7, "ack_p99_ns": 1310000, "delivery_p99_ns": 1700000, "errors": 3} {
		if got, _ := m[k].(float64); got != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	params, _ := m["params"].(map[string]any)
	if params["pipeline"] != float64(16) || params["duration_ns"] != float64(10e9) || params["channel"] != "bench" {
		t.Errorf("params: %v", params)
	}
	samples, _ := m["samples"].([]any)
	if len(samples) != 10 {
		t.Fatalf("%d samples", len(samples))
	}
	s0, _ := samples[0].(map[string]any)
	if s0["at_ns"] != float64(1e9) || s0["published"] != float64(113000) || s0["ack_p99_ns"] != float64(1300000) {
		t.Errorf("sample 0: %v", s0)
	}
	// And back into the Go type without loss.
	var back Run
	if err := json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &back); err != nil {
		t.Fatal(err)
	}
	want := synthetic()
	if back.Published != want.Published || back.Params.Pipeline != 16 || len(back.Samples) != 10 || back.Samples[5].AckP99 != want.Samples[5].AckP99 || !back.Started.Equal(want.Started) {
		t.Errorf("round trip: %+v", back)
	}
}

func TestProgress(t *testing.T) {
	r := synthetic()
	var plain bytes.Buffer
	p := NewProgress(&plain, false, r.Params, 2, 3)
	for _, s := range r.Samples[:3] {
		p.Sample(s)
	}
	p.Done()
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Contains(plain.String(), "\x1b") {
		t.Fatalf("not a terminal: want 3 plain lines, got %q", plain.String())
	}
	// Third second: 113000+116000+119000 published, so far 116,000 msg/s.
	want := regexp.MustCompile(`^run 2/3 +3\.0s/10s  published 348,000  116,000 msg/s  ack p99 1\.300ms  end-to-end p99 1\.700ms  errors 0$`)
	if !want.MatchString(lines[2]) {
		t.Errorf("line %q does not match %v", lines[2], want)
	}

	var term bytes.Buffer
	p = NewProgress(&term, true, r.Params, 1, 1)
	for _, s := range r.Samples[:3] {
		p.Sample(s)
	}
	p.Done()
	out := term.String()
	if strings.Contains(out, "\n") || strings.Count(out, "\r") != 4 || !strings.HasSuffix(out, "\r\x1b[K") || strings.Contains(out, "run 1/1") {
		t.Errorf("terminal: want 3 lines rewritten in place and cleared, got %q", out)
	}
}

func TestPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.png")
	if err := SavePNG(path, synthetic()); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, true)

	// One sample, no subscribers: still a picture, not an error.
	r := synthetic()
	r.Samples = r.Samples[:1]
	r.Params.Subscribers = 0
	for i := range r.Samples {
		r.Samples[i].Delivered, r.Samples[i].DeliveryRate = 0, 0
	}
	var b bytes.Buffer
	if err := WritePNG(&b, r); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&b); err != nil {
		t.Fatal(err)
	}
	r.Samples = nil
	if err := WritePNG(&b, r); err == nil {
		t.Fatal("plotted a run without samples")
	}
}

// checkPNG decodes the PNG at path and checks it is a picture of the
// expected size with the series drawn on it.
func checkPNG(t *testing.T, path string, wantDelivery bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	bounds := img.Bounds()
	if bounds.Dx() < 800 || bounds.Dy() < 500 {
		t.Fatalf("%s is %dx%d", path, bounds.Dx(), bounds.Dy())
	}
	// Both series colours are drawn (lines, not just axes and text).
	count := map[color.RGBA]int{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if c == ackColor || c == deliveryColor {
				count[c]++
			}
		}
	}
	if count[ackColor] < 500 || (wantDelivery && count[deliveryColor] < 500) {
		t.Fatalf("%s: %d pixels of the ack colour, %d of the delivery colour", path, count[ackColor], count[deliveryColor])
	}
}
