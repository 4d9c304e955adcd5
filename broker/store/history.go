package store

import (
	"errors"

	"github.com/ordo-broker/ordo/consensus"
)

// Messages reads committed messages seqs (ascending) into out, in the same
// order, nil where retention dropped one (consensus.ErrCompacted from
// Message). A run of seqs that lies close together in the log is read
// with one Scan (one lock and one pass per segment) rather than one Read
// per message: several readers walking the log at once would otherwise
// evict each other's segments from the log's small segment cache on every
// read. Any failure of the batch read falls back to Message per seq, which
// reports it exactly, with the seq it failed at.
func (s *Store) Messages(seqs []uint64, out []*Message) (failed uint64, err error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	idx := make([]uint64, len(seqs))
	s.mu.RLock()
	for k, seq := range seqs {
		idx[k] = s.runs.index(seq)
	}
	s.mu.RUnlock()
	lo, hi := idx[0], idx[len(idx)-1]
	if hi >= lo && hi-lo < 4*uint64(len(seqs))+64 && s.scanMessages(seqs, idx, out) {
		return 0, nil
	}
	for k, seq := range seqs {
		m, err := s.Message(seq)
		if errors.Is(err, consensus.ErrCompacted) {
			out[k] = nil
			continue
		}
		if err != nil {
			return seq, err
		}
		out[k] = m
	}
	return 0, nil
}

// scanMessages reads seqs, at log indexes idx, with one Scan; false if
// anything was amiss (the caller then reads one by one).
func (s *Store) scanMessages(seqs, idx []uint64, out []*Message) bool {
	lo, hi := idx[0], idx[len(idx)-1]
	if lo < s.log.FirstIndex() {
		return false
	}
	k := 0
	err := s.log.Scan(lo, hi, func(i uint64, rec []byte) error { // (hi inclusive)
		if k == len(seqs) {
			return errStop
		}
		if i != idx[k] {
			return nil // another channel's entry
		}
		e, err := DecodeEntry(i, rec)
		if err != nil || e.Type != consensus.EntryNormal || e.Seq != seqs[k] {
			return errStop
		}
		m, err := EntryMessage(&e)
		if err != nil {
			return errStop
		}
		out[k] = m
		k++
		return nil
	})
	return (err == nil || err == errStop) && k == len(seqs)
}

var errStop = errors.New("stop")
