package scorecard

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Num renders a measurement readably: thousands grouped above 1000, three
// significant digits below.
func Num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 0):
		return "inf"
	case math.Abs(v) >= 1000:
		return group(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if strings.Contains(s, "e") {
		s = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return s
}

func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Cells are a row's columns as the table and the CSV show them: row,
// ordo, reference, ratio, goal, met.
func (r Row) Cells() []string {
	name := r.Name
	if !r.Measured() {
		return []string{name, "not run: " + short(r.NotRun), "", "", r.Goal.String(r.Unit), "-"}
	}
	ordo := Num(r.OrdoMedian()) + " " + r.Unit
	ref, ratio := "-", "-"
	switch {
	case r.RefName != "" && len(r.Ref) > 0:
		ref = fmt.Sprintf("%s %s (%s)", Num(r.RefMedian()), r.Unit, r.RefName)
		ratio = Num(r.Ratio()) + "x"
	case r.RefMissing != "":
		ref = "not run: " + r.RefMissing
	}
	met := "-"
	if m, ok := r.Met(); ok {
		met = "no"
		if m {
			met = "yes"
		}
	}
	return []string{name, ordo, ref, ratio, r.Goal.String(r.Unit), met}
}

// short keeps a reason to one table cell; the JSON and CSV keep it whole.
func short(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if r := []rune(s); len(r) > 70 {
		return string(r[:69]) + "…"
	}
	return s
}

var columns = []string{"row", "ordo (median)", "reference (median)", "ratio", "goal", "met?"}

// PrintHeader writes where and when the suite ran.
func PrintHeader(w io.Writer, h Header) {
	fmt.Fprintf(w, "ordo benchmark suite, %s\n", h.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s\n", h.Machine)
	fmt.Fprintf(w, "load average at start: %s\n", h.LoadStart)
	var keys []string
	for k := range h.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, k+" "+h.Versions[k])
	}
	fmt.Fprintf(w, "versions: %s\n", strings.Join(vs, ", "))
	mode := ""
	if h.Quick {
		mode = " (quick mode: small sizes, not comparable with the issue's table)"
	}
	fmt.Fprintf(w, "runs per row: %d, interleaved with the reference; medians, ratios are medians of per-run ratios%s\n", h.Runs, mode)
}

// PrintTable writes the rows aligned, then every run of each row.
func PrintTable(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rep.Rows {
		fmt.Fprintln(tw, strings.Join(r.Cells(), "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		if !r.Measured() {
			continue
		}
		line := fmt.Sprintf("  %s: ordo %s", r.ID, nums(r.Ordo))
		if len(r.Ref) > 0 {
			line += fmt.Sprintf(" | %s %s | ratios %s", r.RefName, nums(r.Ref), nums(r.Ratios()))
		}
		if r.Note != "" {
			line += " (" + r.Note + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nload average at end: %s; took %s\n", rep.Header.LoadEnd, rep.Header.Finished.Sub(rep.Header.Started).Round(1e9))
}

func nums(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = Num(v)
	}
	return strings.Join(s, " / ")
}

// Markdown writes the table as a Markdown table, for the README.
func Markdown(w io.Writer, rep Report) {
	fmt.Fprintln(w, "| "+strings.Join(columns, " | ")+" |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|:---:|")
	for _, r := range rep.Rows {
		fmt.Fprintln(w, "| "+strings.Join(r.Cells(), " | ")+" |")
	}
}

// CSVHeader names the CSV columns: the table's, then the raw medians and
// every run (space-separated) for spreadsheets.
var CSVHeader = []string{"id", "row", "ordo", "reference", "ratio", "goal", "met", "unit",
	"ordo_median", "reference_median", "ratio_median", "ordo_runs", "reference_runs", "not_run"}

// WriteCSV writes one line per row.
func WriteCSV(w io.Writer, rep Report) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	runs := func(vs []float64) string {
		s := make([]string, len(vs))
		for i, v := range vs {
			s[i] = f(v)
		}
		return strings.Join(s, " ")
	}
	for _, r := range rep.Rows {
		c := r.Cells()
		cw.Write([]string{r.ID, c[0], c[1], c[2], c[3], c[4], c[5], r.Unit,
			f(r.OrdoMedian()), f(r.RefMedian()), f(r.Ratio()), runs(r.Ordo), runs(r.Ref), r.NotRun})
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the whole report, every run included, indented.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// SaveAll writes the CSV, JSON and PNG chart next to each other: base.csv,
// base.json, base.png; it returns the paths written.
func SaveAll(base string, rep Report) ([]string, error) {
	var paths []string
	for _, out := range []struct {
		ext   string
		write func(io.Writer, Report) error
	}{{".csv", WriteCSV}, {".json", WriteJSON}, {".png", WriteChart}} {
		p := base + out.ext
		f, err := os.Create(p)
		if err != nil {
			return paths, err
		}
		err = out.write(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return paths, fmt.Errorf("%s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
