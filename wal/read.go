package wal

import (
	"errors"
	"fmt"

	twal "github.com/tidwall/wal"
)

// A Scan or Verify holds the lock for at most this many records or bytes at
// a time, so appends are not starved.
const (
	chunkRecords = 256
	chunkBytes   = 1 << 20
)

// Read returns the record at index. It returns ErrNotFound outside
// [FirstIndex, LastIndex] and a *CorruptError if the record is damaged.
func (l *Log) Read(index uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return nil, err
	}
	p, err := l.read(index)
	if err != nil {
		return nil, err
	}
	return clone(p), nil
}

// Scan calls fn for each record from lo to hi in order; hi is capped at
// LastIndex() as of the call, so Scan(lo, math.MaxUint64, fn) reads to the
// end. fn may keep rec. fn runs without the log's lock held (it may call the
// log), and the lock is taken once per chunk of records, so appends proceed
// during a long scan.
//
// lo must be in [FirstIndex, LastIndex+1] (LastIndex+1: nothing to read),
// else ErrNotFound. Scan stops at the first error: fn's, returned as is; a
// *CorruptError for a damaged record (fn has seen every record before it);
// ErrNotFound if a truncation removed the next record meanwhile.
func (l *Log) Scan(lo, hi uint64, fn func(index uint64, rec []byte) error) error {
	hi, err := l.scanRange(lo, hi)
	if err != nil {
		return err
	}
	var recs [][]byte
	for next := lo; next <= hi; {
		recs = recs[:0]
		err := l.chunk(next, hi, false, func(_ uint64, p []byte) { recs = append(recs, clone(p)) })
		for i, rec := range recs {
			if ferr := fn(next+uint64(i), rec); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
		if len(recs) == 0 { // cannot happen; never spin
			return fmt.Errorf("wal: scan made no progress at %d", next)
		}
		next += uint64(len(recs))
	}
	return nil
}

// scanRange checks a scan's start against the log as of now and caps
// its end at LastIndex.
func (l *Log) scanRange(lo, hi uint64) (uint64, error) {
	l.mu.Lock()
	err := l.usable()
	first, last := l.first.Load(), l.last.Load()
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if lo < first || lo > last+1 {
		return 0, fmt.Errorf("%w: Scan from %d outside [%d, %d]", ErrNotFound, lo, first, last+1)
	}
	return min(hi, last), nil
}

// ScanView is Scan without a copy of each record: rec aliases the log's
// buffers and is valid only during fn, which runs with the log's lock
// held (it must not call the log), a chunk of records at a time. For a
// reader that keeps nothing of the records (a startup index scan): a
// copy of every record was half of what such a scan allocated.
func (l *Log) ScanView(lo, hi uint64, fn func(index uint64, rec []byte) error) error {
	hi, err := l.scanRange(lo, hi)
	if err != nil {
		return err
	}
	for next := lo; next <= hi; {
		var ferr error
		read := uint64(0)
		err := l.chunk(next, hi, false, func(i uint64, p []byte) {
			if ferr == nil {
				ferr = fn(i, p)
				read++
			}
		})
		if ferr != nil {
			return ferr
		}
		if err != nil {
			return err
		}
		if read == 0 { // cannot happen; never spin
			return fmt.Errorf("wal: scan made no progress at %d", next)
		}
		next += read
	}
	return nil
}

// Verify reads every record and returns the first problem: a *CorruptError
// (errors.As gives its Index) for the oldest damaged record, else nil or the
// error that stopped it. Damage to a length prefix can make tidwall/wal
// reject the whole segment file; then the segment's first index is
// reported. It reads the whole log; run it at startup or when Read has
// reported corruption, not routinely.
func (l *Log) Verify() error { return l.VerifyRange(0, ^uint64(0)) }

// VerifyRange is Verify for the records in [lo, hi] (clamped to the log),
// taking the lock one chunk at a time: a node verifies what it did not
// read at startup in the background, while it serves.
func (l *Log) VerifyRange(lo, hi uint64) error {
	l.mu.Lock()
	err := l.usable()
	next, hi := max(lo, l.first.Load()), min(hi, l.last.Load())
	l.mu.Unlock()
	for err == nil && next <= hi {
		read := false
		err = l.chunk(next, hi, true, func(i uint64, _ []byte) { next, read = i+1, true })
		if !read && err == nil { // truncated meanwhile: nothing left
			break
		}
	}
	return err
}

// chunk reads records from lo towards hi under the lock, passing each
// verified payload (valid only during the call) to fn, and stops after
// chunkRecords records or chunkBytes bytes. With clamp, indexes that a
// truncation removed meanwhile are skipped instead of reported.
func (l *Log) chunk(lo, hi uint64, clamp bool, fn func(index uint64, p []byte)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if clamp {
		lo, hi = max(lo, l.first.Load()), min(hi, l.last.Load())
	}
	n := 0
	for i := lo; i <= hi && n < chunkBytes && i-lo < chunkRecords; i++ {
		p, err := l.read(i)
		if err != nil {
			return err
		}
		fn(i, p)
		n += len(p)
	}
	return nil
}

// read returns the verified payload at index, aliasing tidwall's buffers:
// valid only while mu is held.
func (l *Log) read(index uint64) (payload []byte, err error) {
	if first, last := l.first.Load(), l.last.Load(); index < first || index > last {
		return nil, fmt.Errorf("%w: %d outside [%d, %d]", ErrNotFound, index, first, last)
	}
	defer func() {
		// tidwall indexes its per-segment entry table without a bounds
		// check: an older segment whose framing is damaged so that it parses
		// into fewer entries than its successor's name implies panics here.
		if r := recover(); r != nil {
			payload, err = nil, &CorruptError{index, fmt.Sprintf("segment has too few records (%v)", r)}
		}
	}()
	rec, err := l.tl.Read(index)
	switch {
	case errors.Is(err, twal.ErrCorrupt):
		return nil, &CorruptError{index, "segment file framing is damaged"}
	case errors.Is(err, twal.ErrNotFound):
		return nil, fmt.Errorf("%w: %d", ErrNotFound, index)
	case err != nil:
		return nil, fmt.Errorf("wal: read %d: %w", index, err)
	}
	return decodeRecord(index, rec)
}

func clone(p []byte) []byte {
	c := make([]byte, len(p))
	copy(c, p)
	return c
}
