package store

import (
	"sync"

	"github.com/ordo-broker/ordo/consensus"
)

// Read pins. A long history read (XRANGE over a million entries) is sent
// in chunks while it reads the log, after its reply's header announced
// the entry count; retention dropping entries it has yet to read would
// leave the reply short. A pin keeps retention from dropping messages
// from a seq on until it is released.
type readPins struct {
	mu   sync.Mutex // held across Retain, so a pin never races a drop
	seqs map[uint64]int
}

// PinReads keeps retention from dropping messages at or after seq until
// unpin is called, and returns the lowest seq still held at or after seq
// (retention may have dropped some before the pin).
func (s *Store) PinReads(seq uint64) (held uint64, unpin func()) {
	p := &s.pins
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seqs == nil {
		p.seqs = map[uint64]int{}
	}
	p.seqs[seq]++
	s.mu.RLock()
	fi := s.log.FirstIndex()
	first := s.runs.seq(fi)
	if e, ok := s.cache.get(fi); ok && e.Type != consensus.EntryNormal {
		first++ // (a membership entry: its Seq is the message before it)
	}
	s.mu.RUnlock()
	var once sync.Once
	return max(seq, first), func() {
		once.Do(func() {
			p.mu.Lock()
			if p.seqs[seq]--; p.seqs[seq] <= 0 {
				delete(p.seqs, seq)
			}
			p.mu.Unlock()
		})
	}
}

// pinnedIndex is the lowest log index a pin holds, or 0 (p.mu held).
func (s *Store) pinnedIndex() uint64 {
	var low uint64
	for seq := range s.pins.seqs {
		if low == 0 || seq < low {
			low = seq
		}
	}
	if low == 0 {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.runs.index(low)
}

// Pins is the number of reads holding retention back.
func (s *Store) Pins() int {
	s.pins.mu.Lock()
	defer s.pins.mu.Unlock()
	n := 0
	for _, k := range s.pins.seqs {
		n += k
	}
	return n
}
