package scale

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Median of ds (0 if empty); the mean of the middle two for an even count.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Max of ds (0 if empty).
func Max(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// FailoverTimes are the kill-to-acknowledged-publish times.
func (r *Report) FailoverTimes() []time.Duration {
	out := make([]time.Duration, len(r.Failovers))
	for i, f := range r.Failovers {
		out[i] = f.Publish
	}
	return out
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

// CatchUpTimes are the restarted peers' catch-up times, and the peer
// that took longest.
func (r *Report) CatchUpTimes() (ds []time.Duration, slowest int) {
	for _, c := range r.CatchUps {
		if len(ds) == 0 || c.Took > slices.Max(ds) {
			slowest = c.Peer
		}
		ds = append(ds, c.Took)
	}
	return ds, slowest
}

// Format prints the summary table.
func (r *Report) Format(w io.Writer) {
	fmt.Fprintln(w, "[scale] ===== summary =====")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "[scale] %s\t%s\n", k, fmt.Sprintf(format, args...))
	}
	row("peers", "%d (+1 joined, 1 left)", r.Peers)
	row("messages", "published %d, acknowledged %d, uncertain %d", r.Published, r.Acked, r.Uncertain)
	row("retries", "%d", r.Retries)
	if r.Errors != "" {
		row("failed attempts", "%s", r.Errors)
	}
	row("duplicates", "%d (copies after an uncertain retry; not violations)", r.Duplicates)
	row("history", "%d entries, seqs 1..%d", r.Entries, r.Entries)
	row("formation", "%s (%d peers joined through peer 1)", ms(r.Formation), r.Peers-1)
	var kills []string
	for _, f := range r.Failovers {
		kills = append(kills, fmt.Sprintf("%d→%d term %d→%d %s", f.Killed, f.NewLeader, f.OldTerm, f.NewTerm, ms(f.Publish)))
	}
	row("elections", "%d leader kills: %s", r.Elections(), strings.Join(kills, "; "))
	row("failover", "median %s, max %s (kill -9 until a PUBLISH is acknowledged)", ms(Median(r.FailoverTimes())), ms(Max(r.FailoverTimes())))
	if cu, slowest := r.CatchUpTimes(); len(cu) > 0 {
		row("catch-up", "max %s (peer %d) over %d restarts, median %s (restart until its history equals the leader's)",
			ms(Max(cu)), slowest, len(cu), ms(Median(cu)))
	} else {
		row("catch-up", "-")
	}
	row("join", "voter after %s, caught up after %s", ms(r.Join), ms(r.JoinCatchUp))
	row("terms", "%d→%d, unexpected elections %d, \"Leader timeout!\" logged %d times", r.FirstTerm, r.LastTerm, r.UnexpectedTerms, r.LeaderTimeouts)
	row("runtime", "%s", r.Runtime.Round(100*time.Millisecond))
	if len(r.Violations) == 0 {
		row("violations", "none")
	} else {
		row("violations", "%d", len(r.Violations))
	}
	tw.Flush()
	for _, v := range r.Violations {
		fmt.Fprintf(w, "[scale]   - %s\n", v)
	}
}
