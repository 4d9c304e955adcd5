package store

import "github.com/ordo-broker/ordo/consensus"

// entryRing caches the most recent log entries (contiguous indexes) in a
// fixed array, so live readers and follower catch-up rarely touch the
// disk and appending never reallocates or copies the cache.
type entryRing struct {
	buf      []consensus.Entry
	head     int    // slot of the oldest entry
	n        int    // entries held
	first    uint64 // index of the oldest entry
	bytes    int
	maxBytes int
}

func newEntryRing(entries, maxBytes int) *entryRing {
	return &entryRing{buf: make([]consensus.Entry, entries), maxBytes: maxBytes}
}

func entryCost(e *consensus.Entry) int { return len(e.Data) + 64 }

func (r *entryRing) get(i uint64) (consensus.Entry, bool) {
	if r.n == 0 || i < r.first || i >= r.first+uint64(r.n) {
		return consensus.Entry{}, false
	}
	return r.buf[(r.head+int(i-r.first))%len(r.buf)], true
}

// push appends e; an entry that does not follow the last one restarts the
// cache at e.
func (r *entryRing) push(e consensus.Entry) {
	if r.n > 0 && e.Index != r.first+uint64(r.n) {
		r.reset()
	}
	if r.n == 0 {
		r.first = e.Index
	}
	for r.n > 0 && (r.n == len(r.buf) || r.bytes+entryCost(&e) > r.maxBytes) {
		r.popFront()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
	r.bytes += entryCost(&e)
}

func (r *entryRing) popFront() {
	e := &r.buf[r.head]
	r.bytes -= entryCost(e)
	*e = consensus.Entry{} // release the payload
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.first++
}

// truncateFrom forgets entries with index >= i.
func (r *entryRing) truncateFrom(i uint64) {
	for r.n > 0 && r.first+uint64(r.n) > i {
		slot := (r.head + r.n - 1) % len(r.buf)
		r.bytes -= entryCost(&r.buf[slot])
		r.buf[slot] = consensus.Entry{}
		r.n--
	}
}

func (r *entryRing) reset() {
	for r.n > 0 {
		r.popFront()
	}
	r.head = 0
}
