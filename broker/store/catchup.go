package store

import "github.com/ordo-broker/ordo/consensus"

// Background catch-up reads. A follower that lags far behind needs entries
// the cache no longer holds; reading them from the log on the replica's
// loop would stall its ticks, heartbeats and votes for as long as the read
// takes (a million messages: seconds). Instead Entries starts one
// background read of a chunk and answers consensus.ErrReadPending; the
// chunk is kept in memory, and the core retries once told (onRead).
//
// The chunk is forgotten when the log is truncated or reset (a read that
// raced such a change is discarded by its generation), so it never serves
// an entry the log no longer holds.

// readAhead is how many times the core's batch size one background read
// fetches, so that a catching-up follower's pipeline rarely waits.
const readAhead = 4

type backgroundReads struct {
	spawn   func(func()) // runs a read; nil: Entries reads synchronously
	onRead  func()       // called when a read is done
	reading bool
	gen     uint64            // bumped by forget
	chunk   []consensus.Entry // the last read: contiguous entries
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

// memEntry returns entry i if the cache or the last background read
// holds it.
func (s *Store) memEntry(i uint64) (consensus.Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.cache.get(i); ok {
		return e, true
	}
	if c := s.reads.chunk; len(c) > 0 && i >= c[0].Index && i < c[0].Index+uint64(len(c)) {
		return c[i-c[0].Index], true
	}
	return consensus.Entry{}, false
}

// fromChunk serves [lo, hi) from the last background read, up to
// maxBytes, without copying: a chunk is never changed once installed (a
// newer read replaces it), so the slice stays valid while messages that
// carry it wait to be encoded. It returns nil if the chunk lacks lo.
func (s *Store) fromChunk(lo, hi uint64, maxBytes int) []consensus.Entry {
	s.mu.RLock()
	c := s.reads.chunk
	s.mu.RUnlock()
	if len(c) == 0 || lo < c[0].Index || lo >= c[0].Index+uint64(len(c)) {
		return nil
	}
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
	gen, budget := r.gen, readAhead*maxBytes
	r.spawn(func() { s.readChunk(gen, lo, hi, budget) })
	return true
}

// readChunk reads entries [lo, hi) up to budget bytes and keeps them.
func (s *Store) readChunk(gen, lo, hi uint64, budget int) {
	chunk := make([]consensus.Entry, 0, min(hi-lo, 1<<15))
	var err error
	size := 0
	for i := lo; i < hi && (size < budget || budget <= 0 || len(chunk) == 0); i++ {
		var e consensus.Entry
		if e, err = s.entry(i); err != nil {
			break
		}
		size += entryCost(&e)
		chunk = append(chunk, e)
	}
	s.mu.Lock()
	r := &s.reads
	r.reading = false
	if r.gen == gen {
		if len(chunk) > 0 {
			r.chunk = chunk
		} else if err != nil {
			// Not again in the background: the retry reads lo itself and
			// hands the error to the core.
			r.failAt, r.err = lo, err
		}
	}
	onRead := r.onRead
	s.mu.Unlock()
	onRead()
}

// forget drops the chunk and invalidates a running read (s.mu held).
func (r *backgroundReads) forget() {
	r.gen++
	r.chunk, r.err = nil, nil
}
