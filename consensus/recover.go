package consensus

import (
	"errors"
	"math"
	"slices"
)

// Damaged is not absent (Protocol-Aware Recovery, Alagappan et al., FAST
// 2018).
//
// A record that fails its checksum, or an acknowledged tail that a crash
// took with it (the log is shorter than HardState.Acked), is not a
// position the node never had: it once held an entry there, maybe one a
// majority needed to commit. Treating it as absent lets a damaged
// majority outvote the one intact copy. So the node keeps such positions
// as held: its log proper ends before the first of them (nothing after
// it is applied, served to followers or acknowledged), but it reports
// them in elections (its vote carries heldEnd, not lastIndex) and to
// the coordinator that fetches its log (MsgSyncResp.Faulty, with their
// terms where known). Intact records after a damaged one stay on disk as
// spare copies until a leader's entries replace them.
//
// A leader whose synchronised history has held positions recovers them
// before anything is synchronised or sequenced (syncRecovering): it asks
// every member (MsgRecover, every heartbeat) for intact copies. A copy is
// taken when its term is the position's known term, or — term unknown —
// when the member vouches for it: the position is within its commit index
// (committed entries are the same in every log), or its log holds the
// next position of the history whose term is known (log matching). A
// position that a majority of voters do not hold (no entry there, or
// one of another term; a node that lost its hard state never says so)
// was never committed, and neither was anything after it: the history
// ends before it. When every voter has answered and some positions have
// neither a copy nor such a majority, those entries are lost: the leader
// says exactly which (Status.Lost and an error line) and sequences
// nothing, never renumbering; an operator decides. Once every position is
// recovered (or cut), the leader appends the copies, waits until they
// are durable (followers then drop their own spare copies for them), and
// synchronises as usual.
//
// Followers need nothing new: the leader's appends start right after
// their log proper, and fill their held positions like any entries.

// maxRecoverWindow bounds the positions one MsgRecover covers.
const maxRecoverWindow = 1 << 16

// initHeld sets up the held positions at startup from the damaged records
// the caller found (Config.Faulty) and how far the log reached
// (HardState.Acked). Damaged records beyond Acked were never acknowledged
// (a torn write): they and everything after them are dropped.
func (l *nodeLog) initHeld(faulty []Faulty, hs HardState) {
	s := l.storage
	first, last := s.FirstIndex(), s.LastIndex()
	bad := map[uint64]uint64{}
	var idx []uint64
	for _, f := range faulty {
		if f.Index >= first && f.Index <= last {
			if _, dup := bad[f.Index]; !dup {
				idx = append(idx, f.Index)
			}
			bad[f.Index] = f.Term
		}
	}
	// A record of another term than the one this node acknowledged at its
	// position (the hard state's acked term runs) is a leftover of another
	// history — a leader keeps its own records as spare copies while it
	// recovers a history fetched from a peer, and may crash then — not
	// the log it acknowledged: held like a damaged record, never served.
	// Log matching makes such records a suffix: look from the end.
	for i := min(last, hs.Acked); i >= first && i > 0 && hs.MustReach != math.MaxUint64; i-- {
		want := ackedTermOf(hs, i)
		if _, isBad := bad[i]; isBad {
			continue
		}
		if t, err := s.Term(i); want == 0 || err != nil || t == want {
			break
		}
		idx = append(idx, i)
		bad[i] = want
	}
	slices.Sort(idx)
	acked := hs.Acked
	if hs.MustReach == math.MaxUint64 {
		// The hard state was lost: how far this node acknowledged is
		// unknown, so no damaged record can be taken for a torn write.
		acked = max(acked, last)
	}
	var torn uint64 // first damaged record beyond Acked (0: none)
	var h uint64    // first damaged record at or below Acked (0: none)
	for _, i := range idx {
		if i > acked {
			torn = i
			break
		}
		if h == 0 {
			h = i
		}
	}
	end := last // how far the intact-or-held log reaches
	if torn > 0 {
		end = torn - 1
	}
	u := &l.u
	if h == 0 {
		if torn > 0 {
			u.offset, u.truncate = torn, torn // a torn write: drop it
			u.gen++
		}
		if acked <= end {
			return
		}
	}
	logEnd := end
	if h > 0 {
		logEnd = h - 1
	}
	heldEnd := max(acked, end)
	if heldEnd <= logEnd {
		return
	}
	if h > 0 {
		// Records from h on stay as spare copies.
		u.offset, u.truncate = h, 0
		l.spare = h
		l.damaged = map[uint64]bool{}
		for _, i := range idx {
			l.damaged[i] = true
		}
	}
	terms := make([]uint64, heldEnd-logEnd)
	for i := logEnd + 1; i <= heldEnd; i++ {
		var t uint64
		switch tb, isBad := bad[i]; {
		case i <= end && isBad:
			t = tb
		case i <= end:
			if v, err := s.Term(i); err == nil {
				t = v
			} else {
				l.damaged[i] = true
			}
		}
		if t == 0 && i <= acked {
			t = ackedTermOf(hs, i)
		}
		terms[i-logEnd-1] = t
	}
	// Terms never decrease along a log: an unknown run between two equal
	// known terms has that term.
	prev, _ := l.storageTerm(logEnd)
	for k := 0; k < len(terms); {
		if terms[k] != 0 {
			prev = terms[k]
			k++
			continue
		}
		j := k
		for j < len(terms) && terms[j] == 0 {
			j++
		}
		if j < len(terms) && prev != 0 && terms[j] == prev {
			for x := k; x < j; x++ {
				terms[x] = prev
			}
		}
		k = j
	}
	l.held = terms
}

// ackedTermOf is the term of entry i <= hs.Acked as the hard state's term
// runs tell (0: unknown).
func ackedTermOf(hs HardState, i uint64) uint64 {
	if i == hs.Acked && hs.AckedTerm != 0 {
		return hs.AckedTerm
	}
	runs := append([]TermRun{{hs.AckedTermStart, hs.AckedTerm}}, hs.AckedPrev[:]...)
	for _, r := range runs {
		if r.Term == 0 || r.Start == 0 {
			return 0
		}
		if i >= r.Start {
			return r.Term
		}
	}
	return 0
}

func (l *nodeLog) storageTerm(i uint64) (uint64, bool) {
	if i == 0 {
		return 0, true
	}
	t, err := l.storage.Term(i)
	return t, err == nil
}

// recovery is a leader's state while it recovers its history's held
// positions [from, end].
type recovery struct {
	from, end uint64
	got       []Entry // got[i-from]: a verified copy (Index 0: none yet)
	answers   map[NodeID]recAnswer
	lost      []uint64
	accepted  map[uint64]bool // lost positions an operator gave up (AcceptLoss)
	// membership: positions a member knows held a membership entry
	membership map[uint64]bool
	syncIndex  uint64 // once recovered: the history's end
	done       bool   // copies appended; waiting for them to be durable
}

type recAnswer struct {
	lo   uint64
	held []uint64 // position lo+k: recAbsent, recHasCopy, or 0 (held, no usable copy)
}

// Per-position answers in a MsgRecoverResp summary (Terms).
const (
	recAbsent  = 1 // the member does not hold the position (no entry, or another term)
	recHasCopy = 2 // it holds a copy the leader can take (sent now or in a later round)
	// recMembership: held, no usable copy, and the member knows a
	// membership entry was there. Its loss cannot be accepted: an
	// EntryLost counts as a message, and members that know better would
	// number the messages after it differently.
	recMembership = 3
)

func (r *recovery) has(i uint64) bool { return r.got[i-r.from].Index != 0 }

// noteAnswer keeps a member's summary answer (m.Terms from m.Index) and
// the positions it knows held a membership entry.
func (r *recovery) noteAnswer(id NodeID, m Message) {
	r.answers[id] = recAnswer{lo: m.Index, held: m.Terms}
	for k, v := range m.Terms {
		if v == recMembership {
			r.membership[m.Index+uint64(k)] = true
		}
	}
}

// startRecovery: the history [1, syncIndex] has held positions after the
// log proper.
func (n *Node) startRecovery(syncIndex uint64) {
	from := n.log.lastIndex() + 1
	n.sync = syncRecovering
	n.rec = &recovery{from: from, end: syncIndex, got: make([]Entry, syncIndex-from+1), answers: map[NodeID]recAnswer{},
		membership: map[uint64]bool{}}
	n.logf(LevelWarn, compStorage, "History up to seq_no=%d has %d damaged positions from seq_no=%d: recovering them from intact copies before sequencing",
		syncIndex, syncIndex-from+1, n.log.conf.seq(from-1)+1)
	n.queryRecovery()
}

// queryRecovery asks every member (and this node's own spare records) for
// the positions not recovered yet.
func (n *Node) queryRecovery() {
	r := n.rec
	if r == nil || r.done {
		return
	}
	lo := r.from
	for lo <= r.end && (r.has(lo) || r.accepted[lo]) {
		lo++
	}
	if lo > r.end {
		n.advanceRecovery()
		return
	}
	hi := min(r.end, lo+maxRecoverWindow-1)
	q := Message{Type: MsgRecover, Index: lo, Terms: slices.Clone(n.log.held[lo-r.from : hi-r.from+1])}
	for i := r.end; i > hi; i-- {
		if t, ok := n.log.termAt(i); ok {
			q.LastIndex, q.LastTerm = i, t
			break
		}
	}
	for _, id := range n.replicaIDs {
		q.To = id
		n.send(q)
	}
	// Our own spare records are copies too.
	for _, m := range n.recoverAnswer(q, true) {
		if len(m.Entries) > 0 {
			n.takeCopies(m.Entries)
		} else {
			r.noteAnswer(n.id, m)
		}
	}
	n.advanceRecovery()
}

// handleRecover answers a recovering leader: the intact copies this node
// can vouch for, and which positions it does not hold.
func (n *Node) handleRecover(m Message) {
	for _, r := range n.recoverAnswer(m, false) {
		r.To = m.From
		n.send(r)
	}
}

// (self: the leader's own spare records, checked against the history's
// known terms only: its held terms are the history's, not its own.)
func (n *Node) recoverAnswer(q Message, self bool) []Message {
	k := len(q.Terms)
	lo := q.Index
	// next[j]: the first position after lo+j whose term the leader knows.
	nextIdx, nextTerm := make([]uint64, k), make([]uint64, k)
	ai, at := q.LastIndex, q.LastTerm
	for j := k - 1; j >= 0; j-- {
		nextIdx[j], nextTerm[j] = ai, at
		if q.Terms[j] != 0 {
			ai, at = lo+uint64(j), q.Terms[j]
		}
	}
	hsLost := n.mustReach == math.MaxUint64
	myEnd := n.log.heldEnd()
	absent := make([]uint64, k) // (recAbsent, recHasCopy or 0 per position)
	var out []Message
	var run []Entry
	flush := func() {
		if len(run) > 0 {
			out = append(out, Message{Type: MsgRecoverResp, Index: run[0].Index - 1, Entries: run})
			run = nil
		}
	}
	budget := n.cfg.MaxBatchBytes
	rd := intactReader{n: n}
	for j := 0; j < k; j++ {
		i, t := lo+uint64(j), q.Terms[j]
		mt, known := n.log.termAt(i)
		if !hsLost && (i > myEnd || (t != 0 && known && mt != t)) {
			absent[j] = recAbsent
		}
		if i > myEnd {
			flush()
			continue
		}
		e, ok, pending := rd.get(i, lo+uint64(k))
		if pending {
			// Being read in the background: maybe a copy; the leader asks
			// again (and must not call the position lost meanwhile).
			absent[j] = recHasCopy
			flush()
			continue
		}
		if ok {
			switch {
			case t != 0:
				ok = e.Term == t
			case i <= n.log.committed:
			case nextIdx[j] != 0 && !self:
				nt, nk := n.log.termAt(nextIdx[j])
				ok = nk && nt == nextTerm[j]
			default:
				ok = false
			}
		}
		if !ok {
			if absent[j] == 0 && n.log.conf.isMembership(i) {
				absent[j] = recMembership
			}
			flush()
			continue
		}
		absent[j] = recHasCopy
		if budget <= 0 {
			flush()
			continue
		}
		run = append(run, e)
		budget -= len(e.Data) + 1
	}
	flush()
	return append(out, Message{Type: MsgRecoverResp, Index: lo, Terms: absent, LastIndex: myEnd, Commit: n.log.committed})
}

// intactReader reads this node's intact entries (its log, or spare
// records) for a recovery answer's consecutive positions, one Storage
// read per run rather than one per position: a store that reads in the
// background (ErrReadPending) then fetches the whole run at once. Read
// one position at a time, each read fetched one entry, and the rest of
// the answer waited for the next query (one heartbeat): a leader with one
// damaged record and a thousand intact ones after it took minutes.
type intactReader struct {
	n   *Node
	buf []Entry // contiguous entries read in this answer
}

// get returns the intact entry at i, reading up to hi (exclusive) ahead
// (pending: it is being read).
func (r *intactReader) get(i, hi uint64) (e Entry, ok, pending bool) {
	if b := r.buf; len(b) > 0 && i >= b[0].Index && i-b[0].Index < uint64(len(b)) {
		return b[i-b[0].Index], true, false
	}
	l := r.n.log
	var ents []Entry
	var err error
	switch {
	case i <= l.lastIndex():
		if i < l.firstIndex() {
			return Entry{}, false, false
		}
		ents, err = l.entries(i, min(hi, l.lastIndex()+1), r.n.cfg.MaxBatchBytes)
	case !l.isSpare(i):
		return Entry{}, false, false
	default:
		end := i + 1 // (a run of spare records: never a damaged one)
		for end < hi && l.isSpare(end) {
			end++
		}
		ents, err = l.storage.Entries(i, end, r.n.cfg.MaxBatchBytes)
	}
	if errors.Is(err, ErrReadPending) {
		return Entry{}, false, true
	}
	if err != nil || len(ents) == 0 || ents[0].Index != i {
		return Entry{}, false, false
	}
	r.buf = ents
	return ents[0], true, false
}

func (n *Node) handleRecoverResp(m Message) {
	r := n.rec
	if n.sync != syncRecovering || r == nil || r.done {
		return
	}
	if pr := n.prs[m.From]; pr != nil {
		pr.active, pr.lastContact = true, 0
	}
	if len(m.Entries) > 0 {
		n.takeCopies(m.Entries)
	} else if n.conf().IsMember(m.From) {
		// (A learner's answer counts for its copies, not for a majority.)
		r.noteAnswer(m.From, m)
	}
	n.advanceRecovery()
}

// takeCopies keeps the copies that fit the history's known terms (a copy
// of an unknown term was vouched for by its sender).
func (n *Node) takeCopies(ents []Entry) {
	r := n.rec
	for _, e := range ents {
		if e.Index < r.from || e.Index > r.end || r.has(e.Index) {
			continue
		}
		if t := n.log.held[e.Index-r.from]; t != 0 && t != e.Term {
			continue
		}
		r.got[e.Index-r.from] = e
	}
}

// absentCount counts the voters that said they do not hold position i,
// and those that answered for it; copy reports whether any member
// (this node included) holds a copy to take.
func (n *Node) absentCount(i uint64) (absent, answered int, copy bool) {
	for id, a := range n.rec.answers {
		if i < a.lo || i-a.lo >= uint64(len(a.held)) {
			continue
		}
		v := a.held[i-a.lo]
		copy = copy || v == recHasCopy
		if id == n.id || !n.isVoter(id) {
			continue
		}
		answered++
		if v == recAbsent {
			absent++
		}
	}
	return absent, answered, copy
}

// learnersAnswered: every learner said what it holds at position i. A
// learner's intact copy saves an entry as well as a voter's, so nothing
// is called lost before each has answered (a learner that stays away
// keeps the report back: remove it, CLUSTER REMOVE).
func (n *Node) learnersAnswered(i uint64) bool {
	for _, id := range n.conf().Learners {
		a, ok := n.rec.answers[id]
		if id != n.id && (!ok || i < a.lo || i-a.lo >= uint64(len(a.held))) {
			return false
		}
	}
	return true
}

// advanceRecovery finishes the recovery once every position below the
// first one a majority does not hold has a copy (or its loss was
// accepted); otherwise it reports the positions every voter answered for
// and none holds intact.
func (n *Node) advanceRecovery() {
	r := n.rec
	if r == nil || r.done {
		return
	}
	cut := r.end + 1
	q := n.quorum()
	var missing []uint64
	for i := r.from; i <= r.end; i++ {
		if a, _, _ := n.absentCount(i); a >= q {
			cut = i
			break
		}
		if !r.has(i) && !r.accepted[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		if cut <= r.end {
			n.logf(LevelWarn, compStorage, "Damaged positions from seq_no=%d on were never committed (a majority does not hold them): the history ends before them",
				n.log.conf.seq(cut-1)+1)
		}
		got := r.got[:cut-r.from]
		r.fillLost(got, n.log.lastTerm(), n.log.held)
		n.log.cutHeld(cut - 1)
		n.log.append(got...)
		r.done, r.syncIndex, r.lost = true, cut-1, nil
		n.logf(LevelInfo, compStorage, "Recovered the history's damaged positions up to seq_no=%d from intact copies", n.log.conf.seq(cut-1))
		n.maybeRecovered()
		return
	}
	var lost []uint64
	voters := len(n.voters()) - 1
	for _, i := range missing {
		if _, answered, copy := n.absentCount(i); answered >= voters && !copy && n.learnersAnswered(i) {
			lost = append(lost, i)
		}
	}
	if !slices.Equal(lost, r.lost) {
		r.lost = lost
		if len(lost) > 0 {
			n.logf(LevelError, compStorage, "Entries lost: no member holds an intact copy of log index %v (from seq_no=%d); not sequencing until an operator decides (bring back a copy, or CLUSTER ACCEPT-LOSS)",
				lost, n.log.conf.seq(lost[0]-1)+1)
		}
	}
}

// fillLost puts an EntryLost in each accepted position of got (the
// recovered positions r.from.. in order). Its term is the position's
// known term (held) or else its predecessor's: terms never decrease
// along a log, and the predecessor's is at most the true one.
func (r *recovery) fillLost(got []Entry, prevTerm uint64, held []uint64) {
	for k := range got {
		i := r.from + uint64(k)
		if r.accepted[i] && got[k].Index == 0 {
			t := prevTerm
			if k < len(held) && held[k] != 0 {
				t = held[k]
			}
			got[k] = Entry{Index: i, Term: t, Type: EntryLost}
		}
		prevTerm = got[k].Term
	}
}

// Errors of AcceptLoss.
var (
	ErrNothingLost  = errors.New("consensus: no lost entries to accept (only a leader halted on lost entries has them)")
	ErrLossMismatch = errors.New("consensus: the log indexes given are not the ones lost")
	// ErrLostMembership: a lost position held a membership change; it
	// cannot be given up like a message (see recMembership).
	ErrLostMembership = errors.New("consensus: a lost log index held a membership change, which cannot be given up: bring back an intact copy")
)

// AcceptLoss is an operator's decision for a leader halted on lost
// entries (Status.Lost): give up exactly those positions and go on
// sequencing. Each becomes an EntryLost entry, which keeps the message's
// index and sequence number (nothing is renumbered) and carries nothing
// to deliver. lost must equal Status.Lost, so that a decision taken on an
// older report does not give up more. A leader change before the entries
// commit starts the recovery over (and may need the decision again).
func (n *Node) AcceptLoss(lost []uint64) error {
	r := n.rec
	if n.role != Leader || n.sync != syncRecovering || r == nil || r.done || len(r.lost) == 0 {
		return ErrNothingLost
	}
	if !slices.Equal(lost, r.lost) {
		return ErrLossMismatch
	}
	for _, i := range lost {
		if r.membership[i] || n.log.conf.isMembership(i) {
			return ErrLostMembership
		}
	}
	if r.accepted == nil {
		r.accepted = map[uint64]bool{}
	}
	for _, i := range lost {
		r.accepted[i] = true
	}
	n.logf(LevelError, compStorage, "Loss accepted by the operator: log index %v (from seq_no=%d) stay gone under their numbers; sequencing resumes",
		lost, n.log.conf.seq(lost[0]-1)+1)
	r.lost = nil
	n.advanceRecovery()
	return nil
}

// maybeRecovered: once the recovered copies are durable here, synchronise
// followers to the history (their own spare copies may go then).
func (n *Node) maybeRecovered() {
	if r := n.rec; r != nil && r.done && n.sync == syncRecovering && n.log.stable() && n.log.clean() {
		n.rec = nil
		n.startSync(r.syncIndex)
	}
}
