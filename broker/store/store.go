// Package store is a node's message log: the write-ahead log on disk (any
// Log; wal.Log in production), a cache of recent entries so live readers
// and follower catch-up rarely touch the disk, and a per-channel index of
// committed sequence numbers so that reading one channel's history never
// scans the others'. It promises:
//   - Append returns only once the entries are durable (unless the Log
//     was opened without sync) and readable;
//   - the channel index holds exactly the committed messages that were
//     indexed, in sequence order, and Wait channels are closed at every
//     index so blocked readers wake up;
//   - a damaged record is never served: reads of it return an error, and
//     CorruptIn reports it for any range that spans it.
//
// The record format and the hard-state file are defined here too
// (record.go, hardstate.go).
package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// viewScanner is implemented by wal.Log (Log.ScanView).
type viewScanner interface {
	ScanView(lo, hi uint64, fn func(index uint64, rec []byte) error) error
}

// Log is the durable record log under a Store: dense indexes, records
// checksummed, Append durable when it returns. *wal.Log implements it.
type Log interface {
	FirstIndex() uint64
	LastIndex() uint64
	Append(first uint64, records [][]byte) error
	Read(index uint64) ([]byte, error)
	Scan(lo, hi uint64, fn func(index uint64, rec []byte) error) error
	TruncateBack(index uint64) error
	Reset(next uint64) error
	ApplyRetention(now time.Time, keepFrom uint64) (newFirst uint64, err error)
	Size() int64
	Segments() int
	Close() error
}

var _ Log = (*wal.Log)(nil)

// Store is a node's message log. It implements consensus.Storage. All
// methods are safe for concurrent use.
type Store struct {
	log Log

	mu        sync.RWMutex
	cache     *entryRing          // the most recent entries
	byChannel map[string]*seqList // committed seqs per channel (chanindex.go)
	runs      seqRuns             // seq <-> index (seqs.go)
	applied   uint64              // highest committed index applied
	newData   chan struct{}       // closed when entries are applied
	corrupt   []uint64            // damaged records kept in place (ascending)
	faults    []Fault             // what Load found damaged, with terms where certain
	// Damaged at load below the applied point: their messages were never
	// put into the channel index. When a repair re-appends one, it is
	// indexed (not delivered again: it was applied before the damage).
	unindexed   []uint64
	maxOwnReqID uint64 // highest ReqID this node's publishes used, seen at load
	// The term of entry FirstIndex()-1 after retention or a reset (0 if
	// unknown), so the core can still match the log's boundary.
	baseIndex, baseTerm uint64

	reads backgroundReads // see catchup.go
	pins  readPins        // see pins.go

	sum     summary       // of the applied prefix, for the core (summary.go)
	pending []pendingMark // appended, not yet applied

	// Checkpoints (checkpoint.go) and their background verification
	// (verify.go).
	ck       Checkpoints // nil: none
	ckEvery  uint64
	ckUpto   uint64 // applied index of the last checkpoint saved or loaded
	indexed  uint64 // the channel index holds the messages up to here (> applied after a checkpoint)
	ckBusy   bool
	ckInline bool
	ckWG     sync.WaitGroup
	closed   bool
	verify   verifier
}

const (
	cacheMaxEntries = 1 << 14
	cacheMaxBytes   = 32 << 20
)

// New returns a store over l; call Load to index what l already holds.
func New(l Log) *Store { return NewSized(l, cacheMaxEntries) }

// NewSized is New with a cache of at most cacheEntries recent entries.
func NewSized(l Log, cacheEntries int) *Store {
	return &Store{
		log:       l,
		byChannel: map[string]*seqList{},
		newData:   make(chan struct{}),
		cache:     newEntryRing(cacheEntries, cacheMaxBytes),
		ckEvery:   CheckpointEvery,
	}
}

// UseCheckpoints makes Load start from the checkpoint in c when it
// describes the log, and saves one every `every` applied entries (0:
// CheckpointEvery) and at Close. Call it before Load. With inline, the
// periodic checkpoints are written by SetApplied itself rather than in
// the background (for the simulation: its schedules must replay alike).
func (s *Store) UseCheckpoints(c Checkpoints, every uint64, inline bool) {
	s.ck, s.ckEvery, s.ckInline = c, every, inline
	if every == 0 {
		s.ckEvery = CheckpointEvery
	}
}

// Close saves a checkpoint (unless the last one is current, or damage
// was found) and closes the log.
func (s *Store) Close() error {
	s.stopVerify()
	s.mu.Lock()
	s.closed = true
	var ck *checkpoint
	if s.ck != nil && !s.verify.damaged && s.applied > s.ckUpto && s.applied >= s.indexed && s.applied >= s.log.FirstIndex() {
		ck = s.snapshot()
	}
	s.mu.Unlock()
	s.ckWG.Wait()
	if ck != nil {
		_ = s.saveCheckpoint(ck) // (without one the next start scans the log)
	}
	return s.log.Close()
}

// Size is the log's size on disk in bytes.
func (s *Store) Size() int64 { return s.log.Size() }

// Segments is the number of the log's segment files.
func (s *Store) Segments() int { return s.log.Segments() }

// MaxOwnReqID is the highest ReqID of origin self's entries seen by Load.
func (s *Store) MaxOwnReqID() uint64 { return s.maxOwnReqID }

// SetBase records the term of entry index (= FirstIndex()-1) after
// retention or a reset, so Term can still answer for it.
func (s *Store) SetBase(index, term uint64) {
	s.mu.Lock()
	s.baseIndex, s.baseTerm = index, term
	s.mu.Unlock()
}

// Base returns what SetBase, Retain or ResetTo recorded.
func (s *Store) Base() (index, term uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.baseIndex, s.baseTerm
}

// FirstIndex implements consensus.Storage.
func (s *Store) FirstIndex() uint64 { return s.log.FirstIndex() }

// LastIndex implements consensus.Storage.
func (s *Store) LastIndex() uint64 { return s.log.LastIndex() }

// Entries implements consensus.Storage. What is not in memory is read
// from the log here, or, once SetAsyncReads was called, in the background
// (catchup.go): then Entries answers consensus.ErrReadPending.
func (s *Store) Entries(lo, hi uint64, maxBytes int) ([]consensus.Entry, error) {
	if lo < s.log.FirstIndex() {
		return nil, consensus.ErrCompacted
	}
	if last := s.log.LastIndex(); hi > last+1 {
		hi = last + 1
	}
	if lo >= hi {
		return nil, nil
	}
	if out := s.fromChunk(lo, hi, maxBytes); out != nil {
		return out, nil
	}
	out := make([]consensus.Entry, 0, min(hi-lo, 1024))
	size := 0
	for i := lo; i < hi; i++ {
		e, ok := s.memEntry(i)
		if !ok {
			if s.readLater(i, hi, maxBytes) {
				if len(out) > 0 {
					return out, nil // what memory holds now; the rest follows
				}
				return nil, consensus.ErrReadPending
			}
			var err error
			if e, err = s.entry(i); err != nil {
				return out, err
			}
		}
		size += entryCost(&e)
		if len(out) > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// Term implements consensus.Storage.
func (s *Store) Term(i uint64) (uint64, error) {
	if i == 0 {
		return 0, nil
	}
	if i < s.log.FirstIndex() {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if i == s.baseIndex && s.baseTerm != 0 {
			return s.baseTerm, nil
		}
		return 0, consensus.ErrCompacted
	}
	e, err := s.entry(i)
	return e.Term, err
}

// entry returns entry i from the cache or the WAL.
func (s *Store) entry(i uint64) (consensus.Entry, error) {
	if e, ok := s.memEntry(i); ok {
		return e, nil
	}
	rec, err := s.log.Read(i)
	if err != nil {
		if s.isCorrupt(i) {
			// A lone node keeps a damaged record in place: the core sees an
			// empty entry (never delivered: it decodes to no message), and
			// reads of its range report the damage.
			term := uint64(0)
			if i > s.log.FirstIndex() {
				term, _ = s.Term(i - 1)
			}
			return consensus.Entry{Index: i, Term: term, Type: consensus.EntryNormal}, nil
		}
		return consensus.Entry{}, err
	}
	e, err := DecodeEntry(i, rec)
	if err != nil {
		return e, fmt.Errorf("entry %d: %w", i, err)
	}
	return e, nil
}

// Append persists entries (one write, one fsync) and caches them.
func (s *Store) Append(es []consensus.Entry) error {
	if len(es) == 0 {
		return nil
	}
	// One allocation for the whole batch's records.
	size := 0
	for i := range es {
		size += len(es[i].Data) + 48
	}
	arena := make([]byte, 0, size)
	recs := make([][]byte, len(es))
	for i := range es {
		start := len(arena)
		arena = EncodeEntry(arena, &es[i])
		recs[i] = arena[start:len(arena):len(arena)]
	}
	if err := s.log.Append(es[0].Index, recs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range es {
		s.runs.note(&es[i])
		s.pending = append(s.pending, markOf(&es[i]))
	}
	cached := es
	if len(cached) > len(s.cache.buf) {
		// A catching-up follower persists batches of 100k entries and more;
		// the cache keeps only the last of them, and applying the batch
		// would read the rest back from the segment files. Serve it from
		// memory instead, as a background read's chunk (its entries never
		// change: the core hands a Ready's entries out for good).
		cached = cached[len(cached)-len(s.cache.buf):]
		s.reads.keepAppended(es[:len(es):len(es)])
	}
	for i := range cached {
		s.cache.push(cached[i])
	}
	if len(s.unindexed) > 0 && es[0].Index <= s.unindexed[len(s.unindexed)-1] {
		s.indexRepaired(es)
	}
	return nil
}

// TruncateFrom removes entries >= i: an uncommitted divergent tail, or
// the log from a damaged record on, to be appended again repaired.
func (s *Store) TruncateFrom(i uint64) error {
	if i <= s.log.LastIndex() {
		if err := s.log.TruncateBack(i - 1); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.truncateFrom(i)
	s.runs.truncate(i)
	s.dropPending(i)
	s.reads.forget()
	k, _ := slices.BinarySearch(s.corrupt, i)
	s.corrupt = s.corrupt[:k]
	return nil
}

// indexRepaired puts the repaired messages among es (appended at indexes
// that were damaged below the applied point) into the channel index.
// s.mu is held.
func (s *Store) indexRepaired(es []consensus.Entry) {
	for i := range es {
		e := &es[i]
		k, ok := slices.BinarySearch(s.unindexed, e.Index)
		if !ok {
			continue
		}
		s.unindexed = slices.Delete(s.unindexed, k, k+1)
		if e.Type != consensus.EntryNormal {
			continue
		}
		m, err := EntryMessage(e)
		if err != nil {
			continue // (never delivered either)
		}
		l := s.byChannel[string(m.Channel)]
		if l == nil {
			l = &seqList{}
			s.byChannel[string(m.Channel)] = l
		}
		l.insert(m.Seq)
	}
	close(s.newData)
	s.newData = make(chan struct{})
}

// Index records committed messages in the channel index and wakes
// blocked readers. (SetApplied then records how far the log is applied.)
func (s *Store) Index(ms []*Message) {
	if len(ms) == 0 {
		return
	}
	s.mu.Lock()
	for _, m := range ms {
		l := s.byChannel[string(m.Channel)] // (no allocation for the lookup)
		if l == nil {
			l = &seqList{}
			s.byChannel[string(m.Channel)] = l
		}
		l.add(m.Seq)
	}
	close(s.newData)
	s.newData = make(chan struct{})
	s.mu.Unlock()
}

// SetApplied records that the log is applied up to index i.
func (s *Store) SetApplied(i uint64) {
	s.mu.Lock()
	if i > s.applied {
		s.applied = i
		s.foldPending(i)
		s.maybeCheckpoint()
	}
	s.mu.Unlock()
}

// WaitCh returns a channel closed at the next apply.
func (s *Store) WaitCh() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.newData
}

// ChannelSeqs returns the committed seqs of a channel within [lo, hi]
// (a copy).
func (s *Store) ChannelSeqs(ch string, lo, hi uint64) []uint64 {
	return s.ChannelSeqsN(ch, lo, hi, -1, false)
}

// ChannelSeqsN is ChannelSeqs for at most count seqs (count < 0: all),
// the first ones or (fromEnd) the last: XRANGE ... COUNT 10 on a channel
// of millions copies ten.
func (s *Store) ChannelSeqsN(ch string, lo, hi uint64, count int, fromEnd bool) []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.byChannel[ch]; l != nil {
		return l.rangeSeqs(lo, hi, count, fromEnd)
	}
	return nil
}

// FirstSince returns the first cached index sequenced at or after ms (the
// cache's first index if even that one is younger: conservative).
func (s *Store) FirstSince(ms int64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.cache
	if r.n == 0 {
		return s.log.LastIndex() + 1
	}
	lo, hi := r.first, r.first+uint64(r.n) // binary search: times ascend
	for lo < hi {
		mid := lo + (hi-lo)/2
		if e, _ := r.get(mid); e.Time >= ms {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func (s *Store) isCorrupt(i uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := slices.BinarySearch(s.corrupt, i)
	return ok
}

// CorruptIn returns the seq of a damaged record within seqs [lo, hi], or
// 0. Its channel is unknowable, so a read spanning it fails rather than
// silently skipping a message that may have been on the reader's channel.
func (s *Store) CorruptIn(lo, hi uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.corrupt) == 0 {
		return 0
	}
	ilo, ihi := s.runs.index(lo), uint64(math.MaxUint64)
	if hi < math.MaxUint64 {
		ihi = s.runs.index(hi)
	}
	i := sort.Search(len(s.corrupt), func(k int) bool { return s.corrupt[k] >= ilo })
	if i < len(s.corrupt) && s.corrupt[i] <= ihi {
		return max(s.runs.seq(s.corrupt[i]), 1)
	}
	return 0
}

func (s *Store) ChannelLen(ch string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.byChannel[ch]; l != nil {
		return l.n
	}
	return 0
}

func (s *Store) LastChannelSeq(ch string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.byChannel[ch]; l != nil {
		return l.last()
	}
	return 0
}

func (s *Store) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Message reads committed message seq (from the cache or the WAL);
// consensus.ErrCompacted if retention dropped it.
func (s *Store) Message(seq uint64) (*Message, error) {
	s.mu.RLock()
	i := s.runs.index(seq)
	s.mu.RUnlock()
	e, err := s.entry(i)
	if err != nil && i < s.log.FirstIndex() {
		// (Checked after the read: retention or a log reset may have run
		// since the caller found seq in the channel index.)
		return nil, consensus.ErrCompacted
	}
	if err != nil {
		return nil, err
	}
	if e.Type != consensus.EntryNormal || e.Seq != seq {
		return nil, fmt.Errorf("seq %d: log index %d holds seq %d", seq, i, e.Seq)
	}
	return EntryMessage(&e)
}

// SeqOf is the sequence number of the message at log index i (for a
// membership entry: of the message before it).
func (s *Store) SeqOf(i uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.runs.seq(i)
}

// Retain applies the WAL's retention and forgets index entries for the
// messages it dropped. keepFrom bounds what may go (entries not yet
// applied everywhere are kept).
func (s *Store) Retain(now time.Time, keepFrom uint64) (uint64, error) {
	s.pins.mu.Lock()
	defer s.pins.mu.Unlock()
	if pinned := s.pinnedIndex(); pinned != 0 && pinned < keepFrom {
		keepFrom = pinned
	}
	before := s.log.FirstIndex()
	first, err := s.log.ApplyRetention(now, keepFrom)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if first > before {
		s.baseIndex, s.baseTerm = first-1, 0
		if e, ok := s.cache.get(first - 1); ok {
			s.baseTerm = e.Term
		}
	}
	if first > before {
		s.trimBefore(first)
	}
	return first, nil
}

// Fault is a damaged record Load found: its index, and its term if that is
// certain (0 if not) — the intact entries on both sides of the damaged run
// have the same term, and terms never decrease along the log.
type Fault struct {
	Index, Term uint64
}

// Faults returns what the last Load found damaged, in index order.
func (s *Store) Faults() []Fault {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.faults)
}

// Load indexes the committed prefix of the WAL at startup and returns the
// number of messages it holds. With stopAtCorrupt, the first record that
// fails its checksum ends the scan with its error; otherwise damaged
// records are skipped, remembered (corrupt, Faults), kept in place and
// never served: reads of a range spanning one fail, and a repair
// (TruncateFrom, then Append) puts the intact entry back.
//
// With a usable checkpoint (UseCheckpoints) only the records after it are
// read; the ones it covers are verified in the background (StartVerify).
// The hard state's commit is saved lazily, so it may lag the checkpoint:
// the entries between are then indexed already and applied again (as
// without a checkpoint; the index ignores seqs it holds), so subscribers
// see the same redeliveries after a crash either way.
func (s *Store) Load(commit uint64, stopAtCorrupt bool, self consensus.NodeID) (loaded int, corrupt []uint64, err error) {
	last := s.log.LastIndex()
	if commit > last {
		commit = last
	}
	var faults []Fault
	var prevTerm uint64 // term of the last intact entry
	openRun := 0        // faults[openRun:] wait for the next intact entry's term
	from := s.log.FirstIndex()
	if upto := s.restoreCheckpoint(); upto > 0 {
		s.runs.truncate(upto + 1) // (runs of entries appended after it)
		s.verify.lo, s.verify.hi = from, upto
		from = upto + 1
		for _, l := range s.byChannel {
			loaded += l.n
		}
		corrupt = slices.Clone(s.corrupt)
		for _, i := range corrupt {
			faults = append(faults, Fault{Index: i}) // (terms not kept)
		}
	}
	scan := s.log.Scan
	if v, ok := s.log.(viewScanner); ok {
		scan = v.ScanView // (no copy of each record: nothing is kept)
	}
	var m Message
	for from <= last {
		// (Nothing else uses the store before Load returns: the index is
		// built without its lock, and readers are woken once, below.)
		err = scan(from, last+1, func(i uint64, rec []byte) error {
			from = i + 1
			e, err := DecodeEntry(i, rec)
			if err != nil {
				return &wal.CorruptError{Index: i, Reason: err.Error()}
			}
			for ; openRun < len(faults); openRun++ {
				if prevTerm != 0 && prevTerm == e.Term {
					faults[openRun].Term = e.Term
				}
			}
			prevTerm = e.Term
			if e.Type == consensus.EntryNormal {
				loaded++ // (membership entries are not messages)
			}
			s.runs.note(&e)
			if mark := markOf(&e); i <= commit {
				s.sum.fold(&mark)
			} else {
				s.pending = append(s.pending, mark)
			}
			if i > commit || e.Type != consensus.EntryNormal {
				return nil
			}
			if err := DecodeMessage(e.Data, &m); err != nil {
				return &wal.CorruptError{Index: i, Reason: err.Error()}
			}
			l := s.byChannel[string(m.Channel)] // (no allocation for the lookup)
			if l == nil {
				l = &seqList{}
				s.byChannel[string(m.Channel)] = l
			}
			l.add(e.Seq)
			return nil
		})
		var ce *wal.CorruptError
		if err == nil || stopAtCorrupt || !errors.As(err, &ce) {
			break
		}
		corrupt = append(corrupt, ce.Index)
		faults = append(faults, Fault{Index: ce.Index})
		from, err = ce.Index+1, nil
	}
	s.mu.Lock()
	close(s.newData) // (wake readers: nothing waits yet, but keep the promise)
	s.newData = make(chan struct{})
	s.mu.Unlock()
	s.mu.Lock()
	s.corrupt, s.faults, s.unindexed = corrupt, faults, nil
	for _, i := range corrupt {
		if i <= commit {
			s.unindexed = append(s.unindexed, i)
		}
	}
	s.maxOwnReqID = s.sum.maxReq[self]
	for _, m := range s.pending {
		if m.origin == self && m.reqID > s.maxOwnReqID {
			s.maxOwnReqID = m.reqID
		}
	}
	if err != nil {
		s.verify.damaged = true // no checkpoint of a log about to be repaired
	}
	s.mu.Unlock()
	s.SetApplied(commit)
	return loaded, corrupt, err
}

// ResetTo discards the whole log and restarts it empty at next: the leader
// no longer holds what this node lacks (retention), so it continues from
// the leader's first retained entry. History before next is gone here too.
func (s *Store) ResetTo(next, prevTerm uint64) error {
	if err := s.log.Reset(next); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseIndex, s.baseTerm = next-1, prevTerm
	s.cache.reset()
	s.runs = nil
	s.reads.forget()
	s.byChannel = map[string]*seqList{}
	s.corrupt, s.unindexed = nil, nil
	s.sum, s.pending = summary{upto: next - 1}, nil
	if s.ck != nil {
		// The checkpoint describes the log just discarded.
		if err := s.ck.SaveIndex(nil); err != nil {
			return err
		}
		s.ckUpto = 0
	}
	if s.applied < next-1 {
		s.applied = next - 1
	}
	return nil
}
