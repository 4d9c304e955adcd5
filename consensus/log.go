package consensus

import "slices"

// nodeLog is the node's view of the log: the caller's persisted Storage
// plus the unstable entries not yet known to be persisted.
//
// Invariant: every entry with Index < u.offset is in Storage (or in a Ready
// the caller is persisting); entries >= u.offset live in u.entries. When
// u.truncate > 0 it equals u.offset and Storage may still hold stale
// entries >= u.truncate, which the caller removes in the next Ready. When
// u.reset > 0 the whole of Storage is stale: the caller restarts it empty
// at u.reset (== u.offset) in the next Ready. The core therefore never
// reads Storage at or above u.offset, nor at all while a reset is pending.
//
// Retention: Storage may start after index 1. Entries before FirstIndex
// are committed (the caller only drops committed entries), and the term
// of FirstIndex-1 may be unknown (Storage.Term returns ErrCompacted).
// Everything below treats an unknown term as "cannot compare": the
// committed prefix is trusted without it (it is the same in every
// legitimate log), and anything else falls back to a reset.
type nodeLog struct {
	storage Storage
	u       unstable

	// runs records where each term starts in the log, from the first
	// index held at startup on: it answers the terms of entries the
	// caller has since dropped by retention (Storage rarely keeps them).
	runs []termRun

	committed uint64 // highest index known committed (<= lastIndex)
	applying  uint64 // last index handed out in Ready.Committed
	applied   uint64 // last index the caller acknowledged via Advance

	reqs reqTracker
	conf confTracker // configurations in the log; Seq numbering (membership.go)

	// applyWait: reading committed entries to apply returned
	// ErrReadPending; do not ask again until ReadReady (or a heartbeat
	// interval), so HasReady does not spin.
	applyWait bool

	// Damaged is not absent (recover.go). held lists the terms (0:
	// unknown) of the positions after the log that this node held but
	// cannot read: lastIndex()+1 .. lastIndex()+len(held). When spare > 0
	// (== u.offset, u.entries empty) Storage still holds records from
	// spare on: intact copies among them (not in damaged) can be served
	// to a recovering leader. They are removed (TruncateFrom = spare) as
	// soon as anything is appended at spare or the held positions are
	// given up.
	held    []uint64
	spare   uint64
	damaged map[uint64]bool
}

// termRun: the entries from start up to the next run's start have term.
type termRun struct{ start, term uint64 }

type unstable struct {
	offset    uint64
	entries   []Entry
	truncate  uint64 // see nodeLog
	reset     uint64 // see nodeLog
	resetTerm uint64 // term of entry reset-1 (0: unknown)
	gen       uint64 // bumped whenever truncate or reset is (re)set
	handed    int    // entries[:handed] are in the Ready being persisted
	spareCut  uint64 // the pending truncation drops spare records from here (tests)
}

func newNodeLog(s Storage, committed, applied uint64, cs ConfState) *nodeLog {
	l := &nodeLog{storage: s}
	l.conf.init(cs)
	l.u.offset = s.LastIndex() + 1
	l.committed = min(max(committed, applied), l.lastIndex())
	if f := s.FirstIndex(); f > 1 {
		// Everything before retention was committed, and applied: what
		// the caller no longer holds cannot be handed out again.
		l.committed = max(l.committed, f-1)
		applied = max(applied, f-1)
	}
	l.applying, l.applied = applied, applied
	return l
}

func (l *nodeLog) firstIndex() uint64 {
	if l.u.reset > 0 {
		return l.u.reset
	}
	return l.storage.FirstIndex()
}

func (l *nodeLog) lastIndex() uint64 { return l.u.offset + uint64(len(l.u.entries)) - 1 }

// stableIndex is the last index known persisted (and valid).
func (l *nodeLog) stableIndex() uint64 { return l.u.offset - 1 }

// stable reports whether nothing is waiting to be persisted.
func (l *nodeLog) stable() bool { return l.durable() && len(l.u.entries) == 0 }

// durable reports whether the persisted log holds no stale entries: no
// truncation or reset is pending, so it is a prefix of the core's log.
func (l *nodeLog) durable() bool { return l.u.truncate == 0 && l.u.reset == 0 }

// term returns the term of entry i; ok is false if i is unknown (beyond
// the log or compacted away).
func (l *nodeLog) term(i uint64) (uint64, bool) {
	if i == 0 {
		return 0, true
	}
	if i >= l.u.offset {
		if k := i - l.u.offset; k < uint64(len(l.u.entries)) {
			return l.u.entries[k].Term, true
		}
		return 0, false
	}
	if l.u.reset > 0 {
		if i == l.u.reset-1 && l.u.resetTerm != 0 {
			return l.u.resetTerm, true
		}
		return 0, false
	}
	t, err := l.storage.Term(i)
	if err != nil {
		return l.runTerm(i)
	}
	return t, true
}

// noteTerm records that entry index has term (entries are noted in order).
func (l *nodeLog) noteTerm(index, term uint64) {
	if k := len(l.runs); k > 0 && l.runs[k-1].term == term {
		return
	}
	if len(l.runs) >= 1024 { // one per term change; forget the oldest
		l.runs = append(l.runs[:0], l.runs[512:]...)
	}
	l.runs = append(l.runs, termRun{index, term})
}

func (l *nodeLog) runTerm(i uint64) (uint64, bool) {
	if len(l.runs) == 0 || i < l.runs[0].start || i > l.lastIndex() {
		return 0, false
	}
	j := len(l.runs) - 1
	for l.runs[j].start > i {
		j--
	}
	return l.runs[j].term, true
}

func (l *nodeLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

func (l *nodeLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// entries returns entries [lo, hi), at least one if lo < hi, stopping once
// maxBytes of Data is reached.
func (l *nodeLog) entries(lo, hi uint64, maxBytes int) ([]Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	var out []Entry
	size := 0
	if lo < l.u.offset {
		if l.u.reset > 0 {
			return nil, ErrCompacted
		}
		sh := min(hi, l.u.offset)
		ents, err := l.storage.Entries(lo, sh, maxBytes)
		if err != nil {
			return nil, err
		}
		if len(ents) == 0 {
			return nil, ErrCompacted
		}
		if uint64(len(ents)) < sh-lo || sh == hi {
			return ents, nil
		}
		for i := range ents {
			size += len(ents[i].Data)
		}
		out = ents[:len(ents):len(ents)]
		lo = sh
	}
	if out == nil && lo >= l.u.offset {
		// One allocation, not one per doubling (appends of a busy leader
		// run to hundreds of entries).
		end := l.u.offset + uint64(len(l.u.entries))
		if n := min(hi, end) - min(lo, end); n > 0 {
			out = make([]Entry, 0, n)
		}
	}
	for i := lo; i < hi; i++ {
		k := i - l.u.offset
		if k >= uint64(len(l.u.entries)) {
			break
		}
		e := l.u.entries[k]
		if len(out) > 0 && size+len(e.Data) > maxBytes {
			break
		}
		size += len(e.Data)
		out = append(out, e)
	}
	return out, nil
}

// findConflict returns the index of the first entry of ents that is not in
// the log (different term or beyond the end), or 0 if all are.
func (l *nodeLog) findConflict(ents []Entry) uint64 {
	for i := range ents {
		if !l.matchTerm(ents[i].Index, ents[i].Term) {
			return ents[i].Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <=
// term (and that term). Both sides of a divergence use it to skip a whole
// term of mismatching entries per round trip (log matching: equal
// (Index, Term) means equal prefixes).
func (l *nodeLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	index = min(index, l.lastIndex())
	for index > 0 {
		t, ok := l.term(index)
		if !ok {
			break
		}
		if t <= term {
			return index, t
		}
		index--
	}
	t, _ := l.term(index)
	return index, t
}

// maybeAppend appends ents after (prev, prevTerm) if the log matches there,
// truncating a conflicting uncommitted tail. It returns the last index now
// known to match the sender's log.
//
// The sender is a legitimate leader (or the most advanced log of one's
// election), so its log holds the committed prefix: entries up to
// l.committed are skipped unchecked, and a prev within the committed
// prefix matches even if its term is unknown here (retention).
func (l *nodeLog) maybeAppend(prev, prevTerm uint64, ents []Entry) (uint64, bool) {
	if c := l.committed; prev < c {
		skip := min(c-prev, uint64(len(ents)))
		ents = ents[skip:]
		prev, prevTerm = c, 0
	} else if prev == c && prevTerm != 0 {
		if t, ok := l.term(prev); ok && t != prevTerm {
			return 0, false // a committed entry differs: not a safe history
		}
	} else if prev > c && !l.matchTerm(prev, prevTerm) {
		return 0, false
	}
	lastNew := prev + uint64(len(ents))
	if ci := l.findConflict(ents); ci != 0 {
		if ci <= l.committed {
			// A committed entry would change: the sender is not a
			// legitimate leader of a safe history. Refuse.
			return 0, false
		}
		l.truncateAndAppend(ents[ci-prev-1:])
	}
	return lastNew, true
}

// matchesAt reports whether the log holds the sender's entry (i, t), where
// the sender holds the committed prefix (a leader, or the most advanced
// log of an election): within our committed prefix it does; beyond it a
// zero t (unknown term) does not match.
func (l *nodeLog) matchesAt(i, t uint64) bool {
	if i <= l.committed { // (even below our first index: never reset backwards)
		return true
	}
	return (t != 0 || i == 0) && l.matchTerm(i, t)
}

// resetTo discards the whole log: it restarts empty after index (committed
// elsewhere and no longer available from the sender), whose term is term
// (0 if unknown). Entries before index+1 are never handed out here.
func (l *nodeLog) resetTo(index, term uint64, cs ConfState) {
	l.reqs.truncate(l.committed + 1) // uncommitted marks are gone with the log
	l.held, l.spare, l.damaged = nil, 0, nil
	l.conf.reset(cs)
	u := &l.u
	u.entries = nil
	u.offset = index + 1
	u.reset = index + 1
	u.resetTerm = term
	u.truncate = 0
	u.gen++
	u.handed = 0
	l.runs = l.runs[:0]
	if term != 0 {
		l.runs = append(l.runs, termRun{index, term})
	}
	l.committed = max(l.committed, index)
	l.applying = max(l.applying, index)
	l.applied = max(l.applied, index)
	l.reqs.compact(index)
}

// append adds entries at the end of the log, stamping their Seq. They take
// the place of held (damaged) positions, and of the spare records.
func (l *nodeLog) append(ents ...Entry) {
	if len(ents) == 0 {
		return
	}
	l.dropSpares()
	l.held = l.held[min(len(ents), len(l.held)):]
	if len(l.held) == 0 {
		l.held = nil
	}
	k := len(l.u.entries)
	if need := k + len(ents); need > cap(l.u.entries) {
		// Double: a catching-up follower appends batches of thousands of
		// entries while one Ready is persisted, and append's growth of
		// large slices (1.25x) copied the whole unstable tail every few
		// batches (half its CPU in a profile of a 1M catch-up).
		grown := make([]Entry, k, 2*need)
		copy(grown, l.u.entries)
		l.u.entries = grown
	}
	l.u.entries = append(l.u.entries, ents...)
	for i := range l.u.entries[k:] {
		e := &l.u.entries[k+i]
		l.conf.observe(e)
		e.Seq = l.conf.seq(e.Index)
		l.reqs.observe(e)
		l.noteTerm(e.Index, e.Term)
	}
}

// truncateAndAppend replaces everything from ents[0].Index on with ents.
// Entries that start right after the log proper only append: they take
// the place of held positions one by one (append). Truncating there cut
// every held position at the first append, so a node refilled by a
// leader that died half-way no longer knew how far its log had reached,
// and a committed entry whose only other copy went with that leader was
// taken for never written (simulation seed 50605).
func (l *nodeLog) truncateAndAppend(ents []Entry) {
	if after := ents[0].Index; after <= l.lastIndex() {
		l.truncateTo(after)
	}
	l.append(ents...)
}

// truncateTo removes every entry with index >= from (an uncommitted tail).
func (l *nodeLog) truncateTo(from uint64) {
	if from > l.lastIndex() {
		l.cutHeld(from - 1)
		return
	}
	l.held = nil
	if l.spare > 0 {
		// (from <= lastIndex < spare: the physical truncation below covers
		// the spare records.)
		l.spare, l.damaged = 0, nil
	}
	if from <= l.committed {
		// Every caller bounds the truncation by the commit index, whatever
		// peers send; dropping a committed entry would lose a publish.
		invariant("truncating the log from seq_no=" + u64s(from) + ", at or below the commit index " + u64s(l.committed))
	}
	u := &l.u
	l.reqs.truncate(from)
	l.conf.truncate(from)
	k := len(l.runs)
	for k > 0 && l.runs[k-1].start >= from {
		k--
	}
	l.runs = l.runs[:k]
	if u.reset > 0 {
		// The next Ready rewrites the log from the reset point anyway.
		from = max(from, u.offset)
		u.entries = u.entries[: from-u.offset : from-u.offset]
		u.gen++
		u.handed = 0
		return
	}
	switch {
	case from >= u.offset && int(from-u.offset) >= u.handed:
		// Only entries not yet handed to the caller change.
		u.entries = u.entries[:from-u.offset]
	case from > u.offset:
		// Entries of the Ready in flight change: rewrite from offset.
		kept := make([]Entry, from-u.offset, from-u.offset+8)
		copy(kept, u.entries)
		u.entries = kept
		u.truncate = u.offset
		u.gen++
		u.handed = 0
	default:
		u.entries = nil
		u.offset = from
		u.truncate = from
		u.gen++
		u.handed = 0
	}
}

// dropSpares schedules the removal of the spare records (TruncateFrom).
func (l *nodeLog) dropSpares() {
	if l.spare == 0 {
		return
	}
	u := &l.u
	u.truncate = l.spare // (== u.offset, u.entries empty)
	u.spareCut = l.spare
	u.gen++
	u.handed = 0
	l.spare, l.damaged = 0, nil
}

// cutHeld gives up the held positions after end (an uncommitted tail);
// once none is left the spare records go too.
func (l *nodeLog) cutHeld(end uint64) {
	last := l.lastIndex()
	if end < last+uint64(len(l.held)) {
		if end <= last {
			l.held = nil
		} else {
			l.held = l.held[:end-last]
		}
	}
	if len(l.held) == 0 {
		l.held = nil
		l.dropSpares()
	}
}

// heldEnd is how far this node's log reaches, damaged positions included:
// the position it reports in elections.
func (l *nodeLog) heldEnd() uint64 { return l.lastIndex() + uint64(len(l.held)) }

// termAt is term extended to the held positions (ok false: unknown).
func (l *nodeLog) termAt(i uint64) (uint64, bool) {
	if last := l.lastIndex(); i > last {
		if k := i - last - 1; k < uint64(len(l.held)) && l.held[k] != 0 {
			return l.held[k], true
		}
		return 0, false
	}
	return l.term(i)
}

// heldEndTerm is the term of entry heldEnd (0 if unknown).
func (l *nodeLog) heldEndTerm() uint64 {
	t, _ := l.termAt(l.heldEnd())
	return t
}

// ackedRuns returns the term runs ending at heldEnd, latest first (zero:
// unknown), from memory only (HasReady calls it).
func (l *nodeLog) ackedRuns() (out [4]TermRun) {
	last := l.lastIndex()
	k := 0
	// The held positions, backwards.
	for h := len(l.held); h > 0 && k < len(out); {
		t := l.held[h-1]
		if t == 0 {
			return out
		}
		j := h - 1
		for j > 0 && l.held[j-1] == t {
			j--
		}
		if r := len(l.runs); j == 0 && r > 0 && l.runs[r-1].start <= last && l.runs[r-1].term == t {
			break // (the run continues into the log)
		}
		out[k] = TermRun{last + 1 + uint64(j), t}
		k++
		h = j
	}
	for r := len(l.runs) - 1; r >= 0 && k < len(out); r-- {
		if l.runs[r].start > last {
			continue
		}
		out[k] = TermRun{l.runs[r].start, l.runs[r].term}
		k++
	}
	return out
}

// isSpare reports whether Storage holds an intact spare record at i.
func (l *nodeLog) isSpare(i uint64) bool {
	return l.spare > 0 && i >= l.spare && i <= l.heldEnd() && !l.damaged[i] && i <= l.storage.LastIndex()
}

// spareFrom makes the log end at p without losing its records after p:
// they become spare copies (a recovering leader's own, see recover.go).
func (l *nodeLog) spareFrom(p uint64) {
	u := &l.u
	if p >= l.lastIndex() {
		return
	}
	if p+1 >= u.offset || u.truncate > 0 || u.reset > 0 {
		l.truncateTo(p + 1) // nothing durable to keep (or a rewrite pending)
		return
	}
	l.reqs.truncate(p + 1)
	l.conf.truncate(p + 1)
	k := len(l.runs)
	for k > 0 && l.runs[k-1].start > p {
		k--
	}
	l.runs = l.runs[:k]
	l.held = nil
	if l.spare == 0 {
		l.damaged = nil
	}
	l.spare = p + 1
	u.entries = nil
	u.offset = p + 1
	u.gen++
	u.handed = 0
}

// clean reports whether the persisted log is exactly a prefix of the
// core's log: nothing stale to remove, no spare records.
func (l *nodeLog) clean() bool { return l.durable() && l.spare == 0 }

func (l *nodeLog) commitTo(i uint64) bool {
	i = min(i, l.lastIndex())
	if i <= l.committed {
		return false
	}
	l.committed = i
	l.reqs.compact(i)
	l.conf.commit(i)
	return true
}

// nextCommitted returns the committed, persisted entries not yet handed out.
func (l *nodeLog) hasNextCommitted() bool {
	return !l.applyWait && l.applyBound() > l.applying
}

// applyBound is the last index that may be handed out to apply: committed
// and persisted, and not before the log reaches the configuration anchor
// (after a lost tail, the membership entries up to it are needed for Seq).
func (l *nodeLog) applyBound() uint64 {
	if l.stableIndex() < l.conf.anchor {
		return 0
	}
	return min(l.committed, l.stableIndex())
}

func (l *nodeLog) nextCommitted(maxBytes int) ([]Entry, error) {
	hi := l.applyBound()
	if hi <= l.applying {
		return nil, nil
	}
	ents, err := l.entries(l.applying+1, hi+1, maxBytes)
	if err == nil && len(ents) > 0 {
		ents = slices.Clone(ents) // (Storage's slice: Seq is ours to set)
		for i := range ents {
			ents[i].Seq = l.conf.seq(ents[i].Index)
		}
	}
	return ents, err
}

// handOut marks the unstable state as given to the caller in a Ready.
func (l *nodeLog) handOut() (truncate uint64, ents []Entry, gen uint64) {
	u := &l.u
	u.handed = len(u.entries)
	return u.truncate, u.entries[:len(u.entries):len(u.entries)], u.gen
}

// stableTo records that the caller persisted a Ready handed out at gen.
func (l *nodeLog) stableTo(gen uint64) {
	u := &l.u
	if gen == u.gen {
		u.truncate = 0
		u.reset = 0
		u.spareCut = 0
		u.offset += uint64(u.handed)
		u.entries = u.entries[u.handed:]
		if len(u.entries) == 0 {
			u.entries = nil
		}
	}
	u.handed = 0
}

// reqTracker maintains, per origin, the highest ReqID present in the log.
// Leaders append a proposal only if its ReqID is above that, so ReqIDs of
// one origin increase along any log; a truncated tail is therefore undone
// by popping its marks, and committed marks fold into base.
type reqTracker struct {
	base      map[NodeID]uint64 // over entries <= baseIndex (committed)
	baseIndex uint64
	tail      []reqMark // entries > baseIndex, in index order
	max       map[NodeID]uint64
}

type reqMark struct {
	index  uint64
	origin NodeID
	req    uint64
}

func (t *reqTracker) init() {
	t.base = map[NodeID]uint64{}
	t.max = map[NodeID]uint64{}
}

func (t *reqTracker) observe(e *Entry) {
	if e.ReqID == 0 {
		return
	}
	if e.Index <= t.baseIndex {
		t.base[e.Origin] = max(t.base[e.Origin], e.ReqID)
	} else {
		t.tail = append(t.tail, reqMark{e.Index, e.Origin, e.ReqID})
	}
	t.max[e.Origin] = max(t.max[e.Origin], e.ReqID)
}

// truncate forgets entries >= from and recomputes max from what remains —
// a retried proposal whose first copy was in the discarded tail must be
// accepted again.
func (t *reqTracker) truncate(from uint64) {
	k := len(t.tail)
	for k > 0 && t.tail[k-1].index >= from {
		k--
	}
	if k == len(t.tail) {
		return
	}
	t.tail = t.tail[:k]
	clear(t.max)
	for o, r := range t.base {
		t.max[o] = r
	}
	for _, m := range t.tail {
		t.max[m.origin] = max(t.max[m.origin], m.req)
	}
}

func (t *reqTracker) compact(upto uint64) {
	k := 0
	for k < len(t.tail) && t.tail[k].index <= upto {
		m := t.tail[k]
		t.base[m.origin] = max(t.base[m.origin], m.req)
		k++
	}
	if k > 0 {
		t.tail = append(t.tail[:0], t.tail[k:]...)
	}
	t.baseIndex = max(t.baseIndex, upto)
}

// duplicate reports whether a proposal is already in the log (or was
// superseded by a later ReqID of its origin).
func (t *reqTracker) duplicate(p *Proposal) bool {
	return p.ReqID != 0 && p.ReqID <= t.max[p.Origin]
}
