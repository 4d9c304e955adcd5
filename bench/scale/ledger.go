package scale

import (
	"sort"
	"strings"
	"sync"
)

// Outcome is what one PUBLISH attempt tells the client about its message.
type Outcome int

const (
	// Acked: the message is committed.
	Acked Outcome = iota
	// Refused: the broker said the message was not sequenced
	// (-CLUSTERDOWN, -TRYAGAIN ... not sequenced) or it never reached a
	// node (dial failed): it must not appear because of this attempt.
	Refused
	// Ambiguous: the outcome is unknown (-TRYAGAIN ... may or may not be
	// delivered, a connection lost after the request left, an unexpected
	// error): this attempt may or may not have committed a copy.
	Ambiguous
)

// Record is everything the harness did with one message (one unique
// payload).
type Record struct {
	Payload   string
	Attempts  int  // PUBLISH attempts, any outcome
	Ambiguous int  // attempts whose outcome is unknown
	Acked     bool // one attempt was acknowledged
}

// MayCommit is how many copies of the message the attempts may have
// committed: one for the acknowledged attempt, one for each ambiguous
// one. Refused attempts commit nothing: ordo said so.
func (r Record) MayCommit() int {
	n := r.Ambiguous
	if r.Acked {
		n++
	}
	return n
}

// Ledger records every message the harness published and how each
// attempt ended. It is safe for concurrent use by the publishers.
type Ledger struct {
	mu     sync.Mutex
	recs   map[string]*Record
	errors map[string]int // error kind -> attempts that ended with it
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{recs: map[string]*Record{}, errors: map[string]int{}}
}

// Note records one attempt to publish payload. kind names the error of
// a failed attempt, for the summary ("" for an acknowledged one).
func (l *Ledger) Note(payload string, o Outcome, kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recs[payload]
	if r == nil {
		r = &Record{Payload: payload}
		l.recs[payload] = r
	}
	r.Attempts++
	switch o {
	case Acked:
		r.Acked = true
	case Ambiguous:
		r.Ambiguous++
	}
	if kind != "" {
		l.errors[kind]++
	}
}

// Snapshot copies the records, keyed by payload.
func (l *Ledger) Snapshot() map[string]Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Record, len(l.recs))
	for p, r := range l.recs {
		out[p] = *r
	}
	return out
}

// Counts summarises the ledger: messages tried, acknowledged, with at
// least one ambiguous attempt, and attempts beyond the first (retries).
func (l *Ledger) Counts() (published, acked, uncertain, retries int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		published++
		retries += r.Attempts - 1
		if r.Acked {
			acked++
		}
		if r.Ambiguous > 0 {
			uncertain++
		}
	}
	return
}

// Errors describes the failed attempts by kind, most frequent first
// ("" if none).
func (l *Ledger) Errors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := make([]string, 0, len(l.errors))
	for k := range l.errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if l.errors[kinds[i]] != l.errors[kinds[j]] {
			return l.errors[kinds[i]] > l.errors[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(" x")
		b.WriteString(itoa(l.errors[k]))
	}
	return b.String()
}
