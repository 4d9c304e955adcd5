package scale

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// History is one channel's log on one node, as XRANGE returns it.
type History struct {
	Seqs     []uint64
	Payloads []string
}

// NodeHistory is a node's history, or why it could not be read.
type NodeHistory struct {
	Node int
	History
	Err error
}

// CheckResult is what Check found.
type CheckResult struct {
	Violations []string
	// Duplicates are extra copies of messages that had an ambiguous
	// attempt: the client retried without knowing whether the first try
	// committed, so a second copy is the client's doing, not ordo's.
	Duplicates int
	Entries    int // entries in the reference (first) history
}

// OK reports whether there was no violation.
func (r CheckResult) OK() bool { return len(r.Violations) == 0 }

// maxListed bounds how many payloads one violation names.
const maxListed = 5

// Check verifies that the nodes hold one correct history of a channel
// that only the harness published to, with ledger as the record of
// every publish (keyed by payload). The first node is the reference
// (callers put the leader first). Each of these is a violation:
//   - a history that cannot be read;
//   - sequence numbers that are not exactly 1..K (a gap, a duplicate or
//     an out-of-order seq): with one channel the global sequence is the
//     channel's, so it has no holes;
//   - a node whose history differs from the reference's (other seqs,
//     other payloads, fewer or more entries);
//   - an acknowledged message missing;
//   - a message present more often than its attempts could have
//     committed it (a duplicate nobody can explain by a retry after an
//     ambiguous error), present although every attempt was refused, or
//     never published at all.
func Check(nodes []NodeHistory, ledger map[string]Record) CheckResult {
	var res CheckResult
	if len(nodes) == 0 {
		res.Violations = append(res.Violations, "no node to check")
		return res
	}
	v := func(format string, args ...any) {
		res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
	}
	var readable []NodeHistory
	for _, n := range nodes {
		if n.Err != nil {
			v("node %d: history unreadable: %v", n.Node, n.Err)
			continue
		}
		if len(n.Seqs) != len(n.Payloads) {
			v("node %d: %d seqs but %d payloads", n.Node, len(n.Seqs), len(n.Payloads))
			continue
		}
		readable = append(readable, n)
	}
	if len(readable) == 0 {
		return res
	}
	ref := readable[0]
	res.Entries = len(ref.Seqs)
	for _, n := range readable {
		if msg := seqProblem(n.Seqs); msg != "" {
			v("node %d: %s", n.Node, msg)
		}
	}
	for _, n := range readable[1:] {
		if msg := divergence(ref, n); msg != "" {
			v("node %d diverges from node %d: %s", n.Node, ref.Node, msg)
		}
	}
	// Payload checks per node, grouped by problem so that one message
	// missing everywhere is one line naming the nodes, not fifteen.
	missing := map[string][]int{}
	extra := map[string][]int{}
	for _, n := range readable {
		count := map[string]int{}
		for _, p := range n.Payloads {
			count[p]++
		}
		for p, r := range ledger {
			if r.Acked && count[p] == 0 {
				missing[p] = append(missing[p], n.Node)
			}
		}
		for p, c := range count {
			r, known := ledger[p]
			switch {
			case !known:
				key := fmt.Sprintf("%q was never published (%d copies)", p, c)
				extra[key] = append(extra[key], n.Node)
			case c > r.MayCommit():
				key := fmt.Sprintf("%q appears %d times but its attempts (%d, %d ambiguous, acked=%v) can explain %d",
					p, c, r.Attempts, r.Ambiguous, r.Acked, r.MayCommit())
				extra[key] = append(extra[key], n.Node)
			case c > 1 && n.Node == ref.Node:
				res.Duplicates += c - 1
			}
		}
	}
	if len(missing) > 0 {
		v("%d acknowledged messages missing: %s", len(missing), listGrouped(missing))
	}
	for _, k := range sortedKeys(extra) {
		v("%s on nodes %v", k, extra[k])
	}
	return res
}

// seqProblem describes the first way seqs differ from 1..K ("" if none):
// a duplicate or a step backwards first (the worse news), then a history
// that does not start at 1, then a gap.
func seqProblem(seqs []uint64) string {
	for i := 1; i < len(seqs); i++ {
		switch {
		case seqs[i] == seqs[i-1]:
			return fmt.Sprintf("duplicate seq %d at entry %d", seqs[i], i+1)
		case seqs[i] < seqs[i-1]:
			return fmt.Sprintf("seq %d after %d at entry %d: out of order", seqs[i], seqs[i-1], i+1)
		}
	}
	if len(seqs) > 0 && seqs[0] != 1 {
		return fmt.Sprintf("history starts at seq %d, not 1", seqs[0])
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			return fmt.Sprintf("gap: seq %d follows %d at entry %d (seqs must be 1..%d without holes)", seqs[i], seqs[i-1], i+1, len(seqs))
		}
	}
	return ""
}

// divergence describes how n's history differs from ref's ("" if it
// does not).
func divergence(ref, n NodeHistory) string {
	for i := 0; i < min(len(ref.Seqs), len(n.Seqs)); i++ {
		if ref.Seqs[i] != n.Seqs[i] || ref.Payloads[i] != n.Payloads[i] {
			return fmt.Sprintf("at entry %d: seq %d %q vs seq %d %q", i+1,
				n.Seqs[i], n.Payloads[i], ref.Seqs[i], ref.Payloads[i])
		}
	}
	switch {
	case len(n.Seqs) < len(ref.Seqs):
		return fmt.Sprintf("%d entries, %d behind (last seq %s vs %s)", len(n.Seqs), len(ref.Seqs)-len(n.Seqs), last(n.Seqs), last(ref.Seqs))
	case len(n.Seqs) > len(ref.Seqs):
		return fmt.Sprintf("%d entries, %d more than the reference (last seq %s vs %s)", len(n.Seqs), len(n.Seqs)-len(ref.Seqs), last(n.Seqs), last(ref.Seqs))
	}
	return ""
}

// Same reports whether every readable history equals the first one; for
// polling until followers have applied what the leader has.
func Same(nodes []NodeHistory) bool {
	for _, n := range nodes {
		if n.Err != nil || !slices.Equal(n.Seqs, nodes[0].Seqs) || !slices.Equal(n.Payloads, nodes[0].Payloads) {
			return false
		}
	}
	return true
}

func last(s []uint64) string {
	if len(s) == 0 {
		return "none"
	}
	return strconv.FormatUint(s[len(s)-1], 10)
}

func listGrouped(m map[string][]int) string {
	keys := sortedKeys(m)
	var parts []string
	for i, k := range keys {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("... and %d more", len(keys)-maxListed))
			break
		}
		parts = append(parts, fmt.Sprintf("%q on nodes %v", k, m[k]))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func itoa(n int) string { return strconv.Itoa(n) }
