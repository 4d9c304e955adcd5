// Package scorecard is the arithmetic and the presentation of the
// benchmark suite (bench/suite, `make bench`): rows of ordo measurements
// beside a reference server's, their medians and ratios, whether each
// row meets its goal, and the table, CSV, JSON and chart written from
// them. Measuring lives in bench/suite; this package only judges and
// prints, so that it can be tested without servers.
package scorecard

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Goal is what a row must reach: On "ratio" compares the median of the
// per-run ratios ordo/reference with Value, on "value" ordo's own median
// (in the row's unit). AtMost turns "at least" into "at most".
type Goal struct {
	On     string  `json:"on"` // "ratio" or "value"
	AtMost bool    `json:"at_most"`
	Value  float64 `json:"value"`
}

// AtLeastRatio, AtMost and AtLeast build the three kinds of goal the
// suite uses.
func AtLeastRatio(v float64) Goal { return Goal{On: "ratio", Value: v} }
func AtMost(v float64) Goal       { return Goal{On: "value", AtMost: true, Value: v} }
func AtLeast(v float64) Goal      { return Goal{On: "value", Value: v} }

// String renders the goal as the table shows it: "≥ 0.8x", "≤ 5 ms".
func (g Goal) String(unit string) string {
	op := "≥"
	if g.AtMost {
		op = "≤"
	}
	if g.On == "ratio" {
		return fmt.Sprintf("%s %sx", op, Num(g.Value))
	}
	return fmt.Sprintf("%s %s %s", op, Num(g.Value), unit)
}

// Row is one line of the table: what ordo measured in each run and, when
// the row has one, what the reference server measured in the run just
// before or after it (runs are interleaved, so Ordo[i] and Ref[i] were
// taken side by side).
type Row struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Unit    string    `json:"unit"`
	RefName string    `json:"reference,omitempty"` // "" when the row has no reference
	Goal    Goal      `json:"goal"`
	Ordo    []float64 `json:"ordo_runs"`
	Ref     []float64 `json:"reference_runs,omitempty"`
	// NotRun says why the row has no measurement (a missing reference
	// server, an error); such a row is printed, never silently left out.
	NotRun string `json:"not_run,omitempty"`
	// RefMissing says why the row has ordo's runs but no reference's.
	RefMissing string `json:"reference_missing,omitempty"`
	Note       string `json:"note,omitempty"`
	// Extra holds other numbers of each run worth keeping (delivered
	// counts, peak RSS), by name.
	Extra map[string][]float64 `json:"extra,omitempty"`
}

// Median is the middle value of vs (the mean of the two middle ones for
// an even count), NaN for none. vs is not modified.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// OrdoMedian and RefMedian are the medians of each side's runs.
func (r Row) OrdoMedian() float64 { return Median(r.Ordo) }
func (r Row) RefMedian() float64  { return Median(r.Ref) }

// Ratios are the per-run ratios ordo/reference of the runs taken side by
// side (a run with a zero reference gives none).
func (r Row) Ratios() []float64 {
	var out []float64
	for i := 0; i < len(r.Ordo) && i < len(r.Ref); i++ {
		if r.Ref[i] != 0 {
			out = append(out, r.Ordo[i]/r.Ref[i])
		}
	}
	return out
}

// Ratio is the median of the per-run ratios: on a noisy machine a pair
// of runs taken together shares the same load, so their ratio is steadier
// than the ratio of the two medians. NaN without a reference.
func (r Row) Ratio() float64 { return Median(r.Ratios()) }

// Measured says whether the row has anything to judge.
func (r Row) Measured() bool { return r.NotRun == "" && len(r.Ordo) > 0 }

// Met says whether the row reaches its goal; ok is false when it cannot
// be judged (not run, or a ratio goal without a reference).
func (r Row) Met() (met, ok bool) {
	if !r.Measured() {
		return false, false
	}
	v := r.OrdoMedian()
	if r.Goal.On == "ratio" {
		v = r.Ratio()
	}
	if math.IsNaN(v) {
		return false, false
	}
	if r.Goal.AtMost {
		return v <= r.Goal.Value, true
	}
	return v >= r.Goal.Value, true
}

// Progress is how far the row is towards its goal on one scale for every
// row: 1 is the goal exactly, 0.5 half way (half the required ratio or
// rate, twice the allowed time or memory). NaN when it cannot be judged.
func (r Row) Progress() float64 {
	if _, ok := r.Met(); !ok {
		return math.NaN()
	}
	v := r.OrdoMedian()
	if r.Goal.On == "ratio" {
		v = r.Ratio()
	}
	if r.Goal.AtMost {
		if v == 0 {
			return math.Inf(1)
		}
		return r.Goal.Value / v
	}
	return v / r.Goal.Value
}

// Header is what the output says about where and when it was measured.
type Header struct {
	Started    time.Time         `json:"started"`
	Finished   time.Time         `json:"finished"`
	Machine    string            `json:"machine"` // e.g. "2 cores, Intel Xeon ..."
	LoadStart  string            `json:"load_start"`
	LoadEnd    string            `json:"load_end"`
	Runs       int               `json:"runs"`
	Quick      bool              `json:"quick"`
	Versions   map[string]string `json:"versions"` // ordo commit, redis-server, nats-server, go
	Parameters map[string]string `json:"parameters"`
}

// Report is a whole suite run: its JSON form is what -json writes.
type Report struct {
	Header Header `json:"header"`
	Rows   []Row  `json:"rows"`
}
