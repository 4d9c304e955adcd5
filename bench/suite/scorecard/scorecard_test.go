package scorecard

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		in := slices.Clone(c.in)
		if got := Median(in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("Median reordered its argument: %v", in)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing must be NaN")
	}
}

// The ratio is the median of the per-run ratios, not the ratio of the
// medians: here the two differ.
func TestRatioIsMedianOfPairedRuns(t *testing.T) {
	r := Row{Ordo: []float64{10, 50, 30}, Ref: []float64{100, 100, 20}, RefName: "redis"}
	if got := r.Ratios(); !slices.Equal(got, []float64{0.1, 0.5, 1.5}) {
		t.Fatalf("Ratios = %v", got)
	}
	if got := r.Ratio(); got != 0.5 {
		t.Errorf("Ratio = %v, want 0.5 (median of 0.1, 0.5, 1.5)", got)
	}
	if got := r.OrdoMedian() / r.RefMedian(); got == 0.5 {
		t.Fatalf("test is vacuous: ratio of medians is also %v", got)
	}
	// A zero reference gives no ratio rather than +Inf.
	r = Row{Ordo: []float64{1, 2}, Ref: []float64{0, 4}}
	if got := r.Ratios(); !slices.Equal(got, []float64{0.5}) {
		t.Errorf("Ratios with a zero reference = %v", got)
	}
	if !math.IsNaN((Row{Ordo: []float64{1}}).Ratio()) {
		t.Error("a row without reference has no ratio")
	}
}

func TestGoals(t *testing.T) {
	for _, c := range []struct {
		name     string
		row      Row
		met, ok  bool
		progress float64
	}{
		{"ratio met", Row{Goal: AtLeastRatio(0.8), Ordo: []float64{90, 80, 85}, Ref: []float64{100, 100, 100}}, true, true, 0.85 / 0.8},
		{"ratio missed", Row{Goal: AtLeastRatio(0.8), Ordo: []float64{40}, Ref: []float64{100}}, false, true, 0.5},
		{"ratio exactly", Row{Goal: AtLeastRatio(0.5), Ordo: []float64{50}, Ref: []float64{100}}, true, true, 1},
		{"ratio without reference", Row{Goal: AtLeastRatio(1), Ordo: []float64{50}}, false, false, math.NaN()},
		{"at most met", Row{Goal: AtMost(5), Ordo: []float64{4, 2, 9}}, true, true, 5.0 / 4},
		{"at most missed", Row{Goal: AtMost(2), Ordo: []float64{20}}, false, true, 0.1},
		{"at least met", Row{Goal: AtLeast(500e3), Ordo: []float64{600e3}}, true, true, 1.2},
		{"at least missed", Row{Goal: AtLeast(500e3), Ordo: []float64{50e3}}, false, true, 0.1},
		{"not run", Row{Goal: AtLeast(1), Ordo: []float64{5}, NotRun: "nats-server not installed"}, false, false, math.NaN()},
		{"no runs", Row{Goal: AtLeast(1)}, false, false, math.NaN()},
	} {
		met, ok := c.row.Met()
		if met != c.met || ok != c.ok {
			t.Errorf("%s: Met = %v, %v; want %v, %v", c.name, met, ok, c.met, c.ok)
		}
		p := c.row.Progress()
		if math.IsNaN(c.progress) != math.IsNaN(p) || (!math.IsNaN(p) && math.Abs(p-c.progress) > 1e-9) {
			t.Errorf("%s: Progress = %v, want %v", c.name, p, c.progress)
		}
	}
}

func TestNumAndGoalString(t *testing.T) {
	for in, want := range map[float64]string{
		1234567.8: "1,234,568", 283286: "283,286", 1000.4: "1,000", 0.37: "0.37", 0.123456: "0.123",
		5: "5", 12.34: "12.3", math.NaN(): "-", -4321: "-4,321",
	} {
		if got := Num(in); got != want {
			t.Errorf("Num(%v) = %q, want %q", in, got, want)
		}
	}
	if got := AtLeastRatio(0.8).String("req/s"); got != "≥ 0.8x" {
		t.Errorf("ratio goal: %q", got)
	}
	if got := AtMost(5).String("ms"); got != "≤ 5 ms" {
		t.Errorf("at-most goal: %q", got)
	}
	if got := AtLeast(500000).String("msg/s"); got != "≥ 500,000 msg/s" {
		t.Errorf("at-least goal: %q", got)
	}
}

func sample() Report {
	return Report{
		Header: Header{Started: time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC), Finished: time.Date(2026, 12, 2, 11, 20, 0, 0, time.UTC),
			Machine: "2 cores, Test CPU", LoadStart: "1.00 2.00 3.00", LoadEnd: "4.00 5.00 6.00", Runs: 3,
			Versions: map[string]string{"redis-server": "7.0.15"}},
		Rows: []Row{
			{ID: "always-P16", Name: "1 node, fsync always, -P 16", Unit: "req/s", RefName: "redis", Goal: AtLeastRatio(0.8),
				Ordo: []float64{100e3, 110e3, 90e3}, Ref: []float64{300e3, 280e3, 310e3}},
			{ID: "latency", Name: "latency p99", Unit: "ms", RefName: "redis", Goal: AtMost(5),
				Ordo: []float64{3, 4, 2}, Ref: []float64{1, 1, 1}},
			{ID: "js-always-async", Name: "vs JetStream", Unit: "msg/s", RefName: "nats", Goal: AtLeastRatio(5),
				NotRun: "nats-server not installed"},
			{ID: "catchup", Name: "catch-up", Unit: "msg/s", Goal: AtLeast(500e3), Ordo: []float64{45e3}},
		},
	}
}

func TestTableShowsEveryRow(t *testing.T) {
	var b bytes.Buffer
	rep := sample()
	PrintHeader(&b, rep.Header)
	PrintTable(&b, rep)
	out := b.String()
	for _, want := range []string{
		"2026-12-02 11:00 UTC", "2 cores, Test CPU", "1.00 2.00 3.00", "4.00 5.00 6.00", "redis-server 7.0.15",
		"100,000 req/s", "300,000 req/s (redis)", "0.333x", "≥ 0.8x",
		"not run: nats-server not installed",
		"≤ 5 ms", "45,000 msg/s",
		"always-P16: ordo 100,000 / 110,000 / 90,000 | redis 300,000 / 280,000 / 310,000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	for _, want := range []struct{ id, met string }{{"1 node, fsync always", "no"}, {"latency p99", "yes"}, {"catch-up", "no"}} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, want.id) {
				found = true
				if f := strings.Fields(l); f[len(f)-1] != want.met {
					t.Errorf("row %q: met column %q, want %q", want.id, f[len(f)-1], want.met)
				}
			}
		}
		if !found {
			t.Errorf("no table line for %q", want.id)
		}
	}
	var md bytes.Buffer
	Markdown(&md, rep)
	if n := strings.Count(md.String(), "\n"); n != 2+len(rep.Rows) {
		t.Errorf("markdown has %d lines, want %d:\n%s", n, 2+len(rep.Rows), md.String())
	}
}

func TestCSVAndJSON(t *testing.T) {
	rep := sample()
	var b bytes.Buffer
	if err := WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(rep.Rows) || !slices.Equal(recs[0], CSVHeader) {
		t.Fatalf("CSV: %q", recs)
	}
	col := func(rec []string, name string) string { return rec[slices.Index(CSVHeader, name)] }
	if col(recs[1], "ordo_median") != "100000" || col(recs[1], "ratio_median") != "0.333333" || col(recs[1], "met") != "no" ||
		col(recs[1], "ordo_runs") != "100000 110000 90000" {
		t.Errorf("CSV row: %q", recs[1])
	}
	if col(recs[3], "not_run") != "nats-server not installed" {
		t.Errorf("CSV not-run row: %q", recs[3])
	}
	b.Reset()
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Rows[0].Ref, rep.Rows[0].Ref) || back.Rows[2].NotRun == "" || back.Header.Machine != rep.Header.Machine {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
}

func TestChart(t *testing.T) {
	var b bytes.Buffer
	if err := WriteChart(&b, sample()); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() < 800 {
		t.Errorf("chart is %v", img.Bounds())
	}
	if err := WriteChart(&b, Report{Rows: []Row{{NotRun: "x"}}}); err == nil {
		t.Error("a chart of nothing must fail")
	}
}
