package consensus

// MemoryStorage is an in-memory Storage, for tests and simulations. The
// caller applies persisted Readies to it with Reset, Truncate and Append.
type MemoryStorage struct {
	first uint64  // index of ents[0]
	ents  []Entry // contiguous
	// prevTerm is the term of entry first-1 (0 when first == 1, or when
	// it is unknown: Term(first-1) then returns ErrCompacted).
	prevTerm uint64
}

// NewMemoryStorage returns an empty log starting at index 1.
func NewMemoryStorage() *MemoryStorage { return &MemoryStorage{first: 1} }

func (s *MemoryStorage) FirstIndex() uint64 { return s.first }

func (s *MemoryStorage) LastIndex() uint64 { return s.first + uint64(len(s.ents)) - 1 }

func (s *MemoryStorage) Term(i uint64) (uint64, error) {
	switch {
	case i+1 == s.first && (s.prevTerm != 0 || i == 0):
		return s.prevTerm, nil
	case i < s.first:
		return 0, ErrCompacted
	case i > s.LastIndex():
		return 0, ErrUnavailable
	}
	return s.ents[i-s.first].Term, nil
}

func (s *MemoryStorage) Entries(lo, hi uint64, maxBytes int) ([]Entry, error) {
	if lo < s.first {
		return nil, ErrCompacted
	}
	if hi > s.LastIndex()+1 || lo > hi {
		return nil, ErrUnavailable
	}
	ents := s.ents[lo-s.first : hi-s.first]
	size := 0
	for i := range ents {
		size += len(ents[i].Data)
		if i > 0 && size > maxBytes {
			ents = ents[:i]
			break
		}
	}
	return append([]Entry(nil), ents...), nil
}

// Truncate removes every entry with Index >= from.
func (s *MemoryStorage) Truncate(from uint64) {
	if from < s.first {
		from = s.first
	}
	if from <= s.LastIndex() {
		s.ents = s.ents[: from-s.first : from-s.first]
	}
}

// Append adds contiguous entries following the last one (after Truncate).
func (s *MemoryStorage) Append(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	if ents[0].Index != s.LastIndex()+1 {
		return ErrUnavailable
	}
	s.ents = append(s.ents, ents...)
	return nil
}

// Compact drops entries before index first (retention), keeping the term
// of entry first-1 aside.
func (s *MemoryStorage) Compact(first uint64) {
	if first <= s.first || first > s.LastIndex()+1 {
		return
	}
	s.prevTerm = s.ents[first-1-s.first].Term
	s.ents = append([]Entry(nil), s.ents[first-s.first:]...)
	s.first = first
}

// Reset discards every entry and restarts the log empty at index first
// (Ready.ResetLog); prevTerm is the term of entry first-1, 0 if unknown.
func (s *MemoryStorage) Reset(first, prevTerm uint64) {
	s.ents, s.first, s.prevTerm = nil, max(first, 1), prevTerm
}

// Clone returns an independent copy (entries' Data is shared, immutable).
func (s *MemoryStorage) Clone() *MemoryStorage {
	c := *s
	c.ents = append([]Entry(nil), s.ents...)
	return &c
}
