package consensus

import "testing"

func ents(term uint64, lo, hi uint64) []Entry {
	var out []Entry
	for i := lo; i <= hi; i++ {
		out = append(out, Entry{Index: i, Term: term})
	}
	return out
}

// persist applies a handed-out unstable state to storage, as a caller would.
func persist(t *testing.T, s *MemoryStorage, l *nodeLog) {
	t.Helper()
	tr, es, gen := l.handOut()
	if tr > 0 {
		s.Truncate(tr)
	}
	if err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	l.stableTo(gen)
}

// A truncation that hits entries of the Ready being persisted turns into a
// TruncateFrom of the next Ready; one that hits only unhanded entries does
// not.
func TestUnstableTruncationAcrossReady(t *testing.T) {
	s := NewMemoryStorage()
	l := newNodeLog(s, 0, 0, ConfState{Voters: []NodeID{1}})
	l.reqs.init()
	l.append(ents(1, 1, 3)...)
	persist(t, s, l)
	l.append(ents(1, 4, 6)...)
	tr, es, gen := l.handOut() // Ready in flight: 4..6
	if tr != 0 || len(es) != 3 {
		t.Fatalf("handOut = %d, %d entries", tr, len(es))
	}
	// While it is persisted, a new leader's entries conflict at 5.
	l.truncateAndAppend(ents(2, 5, 7))
	if es[1].Term != 1 {
		t.Fatal("the handed-out Ready was modified in place")
	}
	s.Append(es) // the caller persists the old Ready, then Advances
	l.stableTo(gen)
	if l.stableIndex() != 3 {
		t.Fatalf("stable index %d, want 3 (4.. must be rewritten)", l.stableIndex())
	}
	tr, es, _ = l.handOut()
	if tr != 4 || es[0].Index != 4 || es[len(es)-1].Index != 7 || es[1].Term != 2 {
		t.Fatalf("next Ready truncates from %d with %v", tr, es)
	}
	persist(t, s, l)
	if got, _ := s.Term(5); got != 2 || s.LastIndex() != 7 || !l.stable() {
		t.Fatalf("storage term(5)=%d last=%d", got, s.LastIndex())
	}

	// Conflict below the unstable part: truncation of persisted entries.
	l.truncateAndAppend(ents(3, 2, 2))
	tr, es, _ = l.handOut()
	if tr != 2 || len(es) != 1 || l.lastIndex() != 2 {
		t.Fatalf("truncate=%d entries=%v last=%d", tr, es, l.lastIndex())
	}
}

func TestReqTrackerRecomputesAfterTruncate(t *testing.T) {
	var r reqTracker
	r.init()
	for i, req := range []uint64{1, 2, 5, 9} {
		r.observe(&Entry{Index: uint64(i + 1), Origin: 7, ReqID: req})
	}
	r.compact(2) // 1, 2 committed
	r.truncate(3)
	if got := r.max[7]; got != 2 {
		t.Fatalf("max after truncating 3.. = %d, want 2", got)
	}
	if !r.duplicate(&Proposal{Origin: 7, ReqID: 2}) || r.duplicate(&Proposal{Origin: 7, ReqID: 5}) {
		t.Fatal("dedup after truncation is wrong")
	}
}
