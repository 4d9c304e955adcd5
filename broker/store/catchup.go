package store

import (
	"fmt"

	"github.com/ordo-broker/ordo/consensus"
)

// Background catch-up reads. A follower that lags far behind needs entries
// the cache no longer holds; reading them from the log on the replica's
// loop would stall its ticks, heartbeats and votes for as long as the read
// takes (a million messages: seconds). Instead Entries starts one
// background read of a chunk and answers consensus.ErrReadPending; the
// chunk is kept in memory, and the core retries once told (onRead).
//
// A chunk is read with one sequential Scan of the segment files (one lock
// and one pass per run of records), not one lookup per entry. While the
// core is served from a chunk, the chunk after it is read ahead, so a
// catching-up follower's pipeline does not stall on every chunk boundary
// for the length of a read.
//
// On a follower, the last two batches Append persisted that the cache
// cannot hold are kept as chunks (store.go): applying them reads no disk.
//
// The chunks are forgotten when the log is truncated or reset (a read that
// raced such a change is discarded by its generation), so they never serve
// an entry the log no longer holds.

// readAhead is how many times the core's batch size one background read
// fetches, so that a catching-up follower's pipeline rarely waits.
const readAhead = 4

// readBudget is what one background read fetches (entryCost bytes) for
// batches of maxBytes: readAhead batches, at most maxRead.
func readBudget(maxBytes int) int {
	if maxBytes <= 0 {
		return maxRead
	}
	return min(readAhead*maxBytes, maxRead)
}

const maxRead = 8 << 20

type backgroundReads struct {
	spawn   func(func()) // runs a read; nil: Entries reads synchronously
	onRead  func()       // called when a read is done
	reading bool
	gen     uint64            // bumped by forget
	chunk   []consensus.Entry // the chunk being served: contiguous entries
	ahead   []consensus.Entry // the chunk read ahead, right after chunk
	failAt  uint64            // a read from failAt failed with err
	err     error
}

// SetAsyncReads makes Entries read what memory lacks in the background:
// spawn runs a read (e.g. on a new goroutine; a simulation queues it),
// and onRead is called after it is done (from the read). Call it after
// the core is built: NewNode needs synchronous answers.
func (s *Store) SetAsyncReads(spawn func(func()), onRead func()) {
	s.mu.Lock()
	s.reads.spawn, s.reads.onRead = spawn, onRead
	s.mu.Unlock()
}

// holds reports whether contiguous entries c hold index i.
func holds(c []consensus.Entry, i uint64) bool {
	return len(c) > 0 && i >= c[0].Index && i < c[0].Index+uint64(len(c))
}

// memEntry returns entry i if the cache or a background read holds it.
func (s *Store) memEntry(i uint64) (consensus.Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.cache.get(i); ok {
		return e, true
	}
	for _, c := range [2][]consensus.Entry{s.reads.chunk, s.reads.ahead} {
		if holds(c, i) {
			return c[i-c[0].Index], true
		}
	}
	return consensus.Entry{}, false
}

// fromChunk serves [lo, hi) from the background reads, up to maxBytes,
// without copying: a chunk is never changed once installed (a newer read
// replaces it), so the slice stays valid while messages that carry it
// wait to be encoded. It returns nil if no chunk holds lo. Serving from
// the chunk read ahead makes it the current one; serving from the current
// one starts reading the next ahead.
func (s *Store) fromChunk(lo, hi uint64, maxBytes int) []consensus.Entry {
	s.mu.Lock()
	r := &s.reads
	if !holds(r.chunk, lo) && holds(r.ahead, lo) {
		r.chunk, r.ahead = r.ahead, nil
	}
	c := r.chunk
	if !holds(c, lo) {
		s.mu.Unlock()
		return nil
	}
	s.readAheadLocked(c, maxBytes)
	s.mu.Unlock()
	c = c[lo-c[0].Index:]
	n, size := 0, 0
	for n < len(c) && uint64(n) < hi-lo {
		size += entryCost(&c[n])
		if n > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		n++
	}
	return c[:n:n]
}

// readAheadLocked starts reading the entries after chunk c unless a read
// is running, they are read already, or the cache holds them (s.mu held).
func (s *Store) readAheadLocked(c []consensus.Entry, maxBytes int) {
	r := &s.reads
	next := c[len(c)-1].Index + 1
	if r.spawn == nil || r.reading || r.ahead != nil || next > s.log.LastIndex() {
		return
	}
	if _, ok := s.cache.get(next); ok {
		return
	}
	r.reading = true
	gen, hi, budget := r.gen, s.log.LastIndex()+1, readBudget(maxBytes)
	r.spawn(func() { s.readChunk(gen, next, hi, budget) })
}

// readLater starts a background read of entries from lo (up to hi and
// readAhead batches of maxBytes) unless one is running. It reports false
// when the caller must read lo itself: reads are synchronous, or the
// background read of lo failed (the caller's read then returns the error).
func (s *Store) readLater(lo, hi uint64, maxBytes int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.reads
	if r.spawn == nil {
		return false
	}
	if r.err != nil && r.failAt == lo {
		r.err = nil
		return false
	}
	if r.reading {
		return true // the core retries after the running read
	}
	r.reading = true
	gen, budget := r.gen, readBudget(maxBytes)
	r.spawn(func() { s.readChunk(gen, lo, hi, budget) })
	return true
}

// readChunk reads entries [lo, hi) up to budget bytes with one sequential
// scan and keeps them: as the chunk read ahead if it follows the current
// one, else as the current one.
func (s *Store) readChunk(gen, lo, hi uint64, budget int) {
	chunk, err := s.scanEntries(lo, hi, budget)
	s.mu.Lock()
	r := &s.reads
	r.reading = false
	if r.gen == gen {
		switch {
		case len(chunk) > 0 && len(r.chunk) > 0 && r.chunk[len(r.chunk)-1].Index+1 == lo:
			r.ahead = chunk
		case len(chunk) > 0:
			r.chunk, r.ahead = chunk, nil
		case err != nil:
			// Not again in the background: the retry reads lo itself and
			// hands the error to the core.
			r.failAt, r.err = lo, err
		}
	}
	onRead := r.onRead
	s.mu.Unlock()
	onRead()
}

// scanEntries reads entries [lo, hi), at least one, until their cost
// reaches budget (<= 0: no limit). It returns what it read before an
// error along with the error.
func (s *Store) scanEntries(lo, hi uint64, budget int) ([]consensus.Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	var chunk []consensus.Entry
	size := 0
	err := s.log.Scan(lo, hi-1, func(i uint64, rec []byte) error { // (hi inclusive; rec is ours)
		e, err := DecodeEntry(i, rec)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if chunk == nil {
			// Sized once, from the first entry: growing a slice of 50k
			// entries by append copied it over and over (a quarter of a
			// catching-up node's CPU in a profile).
			n := uint64(1 << 10)
			if budget > 0 {
				n = uint64(budget/entryCost(&e)) + 1
			}
			chunk = make([]consensus.Entry, 0, min(hi-lo, n))
		}
		chunk = append(chunk, e)
		if size += entryCost(&e); budget > 0 && size >= budget {
			return errStop
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	return chunk, err
}

// keepAppended keeps es, just appended, as a chunk, along with the
// batch before it (the one being applied meanwhile) if es follows it.
func (r *backgroundReads) keepAppended(es []consensus.Entry) {
	follows := func(c []consensus.Entry) bool {
		return len(c) > 0 && c[len(c)-1].Index+1 == es[0].Index
	}
	switch {
	case follows(r.ahead):
		r.chunk, r.ahead = r.ahead, es
	case follows(r.chunk):
		r.ahead = es
	default:
		r.chunk, r.ahead = es, nil
	}
}

// forget drops the chunks and invalidates a running read (s.mu held).
func (r *backgroundReads) forget() {
	r.gen++
	r.chunk, r.ahead, r.err = nil, nil, nil
}
