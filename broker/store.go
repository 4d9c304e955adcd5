package broker

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// store is a node's message log: the WAL on disk, a cache of recent
// entries (live readers never touch the disk), and a per-channel index of
// committed sequence numbers so that reading one channel's history never
// scans the others'. It implements consensus.Storage.
type store struct {
	log *wal.Log

	mu          sync.RWMutex
	cache       *entryRing          // the most recent entries
	byChannel   map[string][]uint64 // committed seqs per channel, ascending
	applied     uint64              // highest committed entry indexed
	newData     chan struct{}       // closed when entries are applied
	corrupt     []uint64            // damaged records a lone node kept (ascending)
	maxOwnReqID uint64              // highest ReqID this node's publishes used, seen at load
	// The term of entry FirstIndex()-1 after retention or a reset (0 if
	// unknown), so the core can still match the log's boundary.
	baseIndex, baseTerm uint64
}

const (
	cacheMaxEntries = 1 << 14
	cacheMaxBytes   = 32 << 20
)

func newStore(l *wal.Log) *store {
	return &store{
		log:       l,
		byChannel: map[string][]uint64{},
		newData:   make(chan struct{}),
		cache:     newEntryRing(cacheMaxEntries, cacheMaxBytes),
	}
}

// FirstIndex implements consensus.Storage.
func (s *store) FirstIndex() uint64 { return s.log.FirstIndex() }

// LastIndex implements consensus.Storage.
func (s *store) LastIndex() uint64 { return s.log.LastIndex() }

// Entries implements consensus.Storage.
func (s *store) Entries(lo, hi uint64, maxBytes int) ([]consensus.Entry, error) {
	if lo < s.log.FirstIndex() {
		return nil, consensus.ErrCompacted
	}
	if last := s.log.LastIndex(); hi > last+1 {
		hi = last + 1
	}
	var out []consensus.Entry
	size := 0
	for i := lo; i < hi; i++ {
		e, err := s.entry(i)
		if err != nil {
			return out, err
		}
		size += len(e.Data)
		if len(out) > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// Term implements consensus.Storage.
func (s *store) Term(i uint64) (uint64, error) {
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
func (s *store) entry(i uint64) (consensus.Entry, error) {
	s.mu.RLock()
	if e, ok := s.cache.get(i); ok {
		s.mu.RUnlock()
		return e, nil
	}
	s.mu.RUnlock()
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
	e, err := decodeEntry(i, rec)
	if err != nil {
		return e, fmt.Errorf("entry %d: %w", i, err)
	}
	return e, nil
}

// append persists entries (one write, one fsync) and caches them.
func (s *store) append(es []consensus.Entry) error {
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
		arena = encodeEntry(arena, &es[i])
		recs[i] = arena[start:len(arena):len(arena)]
	}
	if err := s.log.Append(es[0].Index, recs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.cache.push(e)
	}
	return nil
}

// truncateFrom removes entries >= i (an uncommitted divergent tail).
func (s *store) truncateFrom(i uint64) error {
	if i <= s.log.LastIndex() {
		if err := s.log.TruncateBack(i - 1); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.truncateFrom(i)
	return nil
}

// index records committed messages in the channel index and wakes
// blocked readers.
func (s *store) index(ms []*message) {
	if len(ms) == 0 {
		return
	}
	s.mu.Lock()
	for _, m := range ms {
		ch := string(m.Channel)
		s.byChannel[ch] = append(s.byChannel[ch], m.Seq)
	}
	s.applied = ms[len(ms)-1].Seq
	close(s.newData)
	s.newData = make(chan struct{})
	s.mu.Unlock()
}

// setApplied advances the applied mark past entries that carry no message.
func (s *store) setApplied(i uint64) {
	s.mu.Lock()
	if i > s.applied {
		s.applied = i
	}
	s.mu.Unlock()
}

// waitCh returns a channel closed at the next apply.
func (s *store) waitCh() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.newData
}

// channelSeqs returns the committed seqs of a channel within [lo, hi].
func (s *store) channelSeqs(ch string, lo, hi uint64) []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seqs := s.byChannel[ch]
	i := sort.Search(len(seqs), func(k int) bool { return seqs[k] >= lo })
	j := sort.Search(len(seqs), func(k int) bool { return seqs[k] > hi })
	if i >= j {
		return nil
	}
	return seqs[i:j:j]
}

// firstSince returns the first cached index sequenced at or after ms (the
// cache's first index if even that one is younger: conservative).
func (s *store) firstSince(ms int64) uint64 {
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

func (s *store) isCorrupt(i uint64) bool {
	return s.corruptIn(i, i) != 0
}

// corruptIn returns a damaged record's seq within [lo, hi], or 0. Its
// channel is unknowable, so a read spanning it fails rather than silently
// skipping a message that may have been on the reader's channel.
func (s *store) corruptIn(lo, hi uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.corrupt), func(k int) bool { return s.corrupt[k] >= lo })
	if i < len(s.corrupt) && s.corrupt[i] <= hi {
		return s.corrupt[i]
	}
	return 0
}

func (s *store) channelLen(ch string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byChannel[ch])
}

func (s *store) lastChannelSeq(ch string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if seqs := s.byChannel[ch]; len(seqs) > 0 {
		return seqs[len(seqs)-1]
	}
	return 0
}

func (s *store) appliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// message reads committed message seq (from the cache or the WAL).
func (s *store) message(seq uint64) (*message, error) {
	e, err := s.entry(seq)
	if err != nil {
		return nil, err
	}
	return entryMessage(&e)
}

// retain applies the WAL's retention and forgets index entries for the
// messages it dropped. keepFrom bounds what may go (entries not yet
// applied everywhere are kept).
func (s *store) retain(now time.Time, keepFrom uint64) (uint64, error) {
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
	for ch, seqs := range s.byChannel {
		i := sort.Search(len(seqs), func(k int) bool { return seqs[k] >= first })
		if i == len(seqs) {
			delete(s.byChannel, ch)
		} else if i > 0 {
			s.byChannel[ch] = append([]uint64(nil), seqs[i:]...)
		}
	}
	return first, nil
}

// load indexes the committed prefix of the WAL at startup and returns the
// number of entries read. With stopAtCorrupt, the first record that
// fails its checksum ends the scan with its error (a cluster member then
// truncates there and refetches from peers); otherwise damaged records are
// skipped, remembered in corrupt, and never served.
func (s *store) load(commit uint64, stopAtCorrupt bool, self consensus.NodeID) (loaded int, corrupt []uint64, err error) {
	last := s.log.LastIndex()
	if commit > last {
		commit = last
	}
	var batch []*message
	from := s.log.FirstIndex()
	for from <= last {
		err = s.log.Scan(from, last+1, func(i uint64, rec []byte) error {
			from = i + 1
			e, err := decodeEntry(i, rec)
			if err != nil {
				return &wal.CorruptError{Index: i, Reason: err.Error()}
			}
			loaded++
			if e.Origin == self && e.ReqID > s.maxOwnReqID {
				s.maxOwnReqID = e.ReqID
			}
			if i > commit || e.Type != consensus.EntryNormal {
				return nil
			}
			m, err := entryMessage(&e)
			if err != nil {
				return &wal.CorruptError{Index: i, Reason: err.Error()}
			}
			m.Payload = nil // the index needs only channel and seq
			batch = append(batch, m)
			if len(batch) == 4096 {
				s.index(batch)
				batch = batch[:0]
			}
			return nil
		})
		var ce *wal.CorruptError
		if err == nil || stopAtCorrupt || !errors.As(err, &ce) {
			break
		}
		corrupt = append(corrupt, ce.Index)
		from, err = ce.Index+1, nil
	}
	s.index(batch)
	s.setApplied(commit)
	s.mu.Lock()
	s.corrupt = corrupt
	s.mu.Unlock()
	return loaded, corrupt, err
}

// resetTo discards the whole log and restarts it empty at next: the leader
// no longer holds what this node lacks (retention), so it continues from
// the leader's first retained entry. History before next is gone here too.
func (s *store) resetTo(next, prevTerm uint64) error {
	if err := s.log.Reset(next); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseIndex, s.baseTerm = next-1, prevTerm
	s.cache.reset()
	s.byChannel = map[string][]uint64{}
	s.corrupt = nil
	if s.applied < next-1 {
		s.applied = next - 1
	}
	return nil
}
