package store

import (
	"encoding/binary"
	"sort"
)

// The channel index: per channel, its committed seqs in ascending order.
//
// It used to be one []uint64 per channel, grown by append: every doubling
// copied the whole history (a 10M-message channel held 80 MB, peaked at
// three times that while growing, and left the copies to the GC). A
// seqList is a chain of chunks instead. The open chunk grows up to
// chunkLen seqs (so a channel with a handful of messages costs a handful
// of words); a full chunk is sealed, never copied again, and stored
// compactly: a run of consecutive seqs (one busy channel) as its first
// seq alone, anything else as 32-bit offsets from its first seq. Sealed
// chunks are immutable, so a checkpoint snapshots them by reference.
const chunkLen = 1024

type seqChunk struct {
	first uint64
	n     uint32
	offs  []uint32 // seq k = first + offs[k]; nil: a run (first + k)
	wide  []uint64 // instead of offs when the chunk spans >= 2^32 seqs
}

func (c *seqChunk) at(k int) uint64 {
	switch {
	case c.wide != nil:
		return c.wide[k]
	case c.offs != nil:
		return c.first + uint64(c.offs[k])
	}
	return c.first + uint64(k)
}

func (c *seqChunk) last() uint64 { return c.at(int(c.n) - 1) }

// sealChunk stores seqs (ascending, non-empty) compactly.
func sealChunk(seqs []uint64) seqChunk {
	c := seqChunk{first: seqs[0], n: uint32(len(seqs))}
	span := seqs[len(seqs)-1] - seqs[0]
	switch {
	case span == uint64(len(seqs)-1):
		// a run
	case span <= 0xffffffff:
		c.offs = make([]uint32, len(seqs))
		for i, s := range seqs {
			c.offs[i] = uint32(s - c.first)
		}
	default:
		c.wide = append([]uint64(nil), seqs...)
	}
	return c
}

type seqList struct {
	sealed []seqChunk
	open   []uint64 // the open chunk (< chunkLen seqs)
	n      int      // seqs held in all
}

// add appends seq; one it holds already (an entry applied again after a
// restart from a checkpoint) is ignored.
func (l *seqList) add(seq uint64) {
	if l.n > 0 && seq <= l.last() {
		return
	}
	l.open = append(l.open, seq)
	l.n++
	if len(l.open) == chunkLen {
		l.sealed = append(l.sealed, sealChunk(l.open))
		l.open = l.open[:0] // (reused: sealChunk copied what it kept)
	}
}

// insert adds seq where it belongs (a repaired message below the last
// one). It rebuilds the list: repairs are rare, and sealed chunks are
// immutable (a checkpoint may hold them).
func (l *seqList) insert(seq uint64) {
	if l.n == 0 || seq > l.last() {
		l.add(seq)
		return
	}
	i := l.search(seq)
	if i < l.n && l.at(i) == seq {
		return
	}
	all := l.rangeSeqs(0, ^uint64(0), -1, false)
	all = append(all[:i], append([]uint64{seq}, all[i:]...)...)
	*l = seqList{}
	for _, s := range all {
		l.add(s)
	}
}

func (l *seqList) last() uint64 {
	if k := len(l.open); k > 0 {
		return l.open[k-1]
	}
	if k := len(l.sealed); k > 0 {
		return l.sealed[k-1].last()
	}
	return 0
}

// at is the i-th seq of the list (0 <= i < n).
func (l *seqList) at(i int) uint64 {
	sealedN := l.n - len(l.open)
	if i >= sealedN {
		return l.open[i-sealedN]
	}
	// Every sealed chunk is chunkLen long except after trimFront, when
	// the first may be shorter.
	if len(l.sealed) > 0 {
		head := int(l.sealed[0].n)
		if i < head {
			return l.sealed[0].at(i)
		}
		i -= head
		return l.sealed[1+i/chunkLen].at(i % chunkLen)
	}
	return 0
}

// search is the position of the first seq >= s (n if none).
func (l *seqList) search(s uint64) int {
	return sort.Search(l.n, func(i int) bool { return l.at(i) >= s })
}

// rangeSeqs returns a copy of the seqs within [lo, hi]: all of them if
// count < 0, else at most count, the first ones or (fromEnd) the last.
func (l *seqList) rangeSeqs(lo, hi uint64, count int, fromEnd bool) []uint64 {
	i := l.search(lo)
	j := l.n
	if hi != ^uint64(0) {
		j = i + sort.Search(l.n-i, func(k int) bool { return l.at(i+k) > hi })
	}
	if count >= 0 && j-i > count {
		if fromEnd {
			i = j - count
		} else {
			j = i + count
		}
	}
	if i >= j {
		return nil
	}
	out := make([]uint64, j-i)
	for k := range out {
		out[k] = l.at(i + k)
	}
	return out
}

// trimFront drops the seqs below s (retention).
func (l *seqList) trimFront(s uint64) {
	i := l.search(s)
	if i == 0 {
		return
	}
	if i == l.n {
		*l = seqList{}
		return
	}
	rest := make([]uint64, 0, chunkLen)
	k := i
	sealedN := l.n - len(l.open)
	var sealed []seqChunk
	if k < sealedN {
		// Rebuild the first kept chunk from its kept part; later chunks
		// are kept as they are.
		head := 0
		if len(l.sealed) > 0 {
			head = int(l.sealed[0].n)
		}
		ci, off := 0, k
		if k >= head {
			ci, off = 1+(k-head)/chunkLen, (k-head)%chunkLen
		}
		c := &l.sealed[ci]
		for x := off; x < int(c.n); x++ {
			rest = append(rest, c.at(x))
		}
		sealed = append(sealed, sealChunk(rest))
		sealed = append(sealed, l.sealed[ci+1:]...)
		l.sealed, l.n = sealed, l.n-i
		return
	}
	l.open = append(rest, l.open[k-sealedN:]...)
	l.sealed, l.n = nil, len(l.open)
}

// Checkpoint encoding of a seqList: count, chunks, then the open seqs.
// A chunk: n, first, kind (0 run, 1 offsets, 2 wide), then its values.

func appendSeqList(b []byte, sealed []seqChunk, open []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(sealed)))
	for i := range sealed {
		c := &sealed[i]
		b = binary.AppendUvarint(b, uint64(c.n))
		b = binary.AppendUvarint(b, c.first)
		switch {
		case c.wide != nil:
			b = append(b, 2)
			for _, s := range c.wide {
				b = binary.AppendUvarint(b, s)
			}
		case c.offs != nil:
			b = append(b, 1)
			prev := uint32(0)
			for _, o := range c.offs {
				b = binary.AppendUvarint(b, uint64(o-prev))
				prev = o
			}
		default:
			b = append(b, 0)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(open)))
	prev := uint64(0)
	for _, s := range open {
		b = binary.AppendUvarint(b, s-prev)
		prev = s
	}
	return b
}

func readSeqList(d *decoder) seqList {
	var l seqList
	nc := d.count(3)
	l.sealed = make([]seqChunk, 0, nc)
	for ; nc > 0 && d.err == nil; nc-- {
		n := d.uvarint()
		c := seqChunk{n: uint32(min(n, chunkLen)), first: d.uvarint()}
		if n == 0 || n > chunkLen || (len(l.sealed) > 0 && n != chunkLen) {
			d.fail()
			return l
		}
		switch d.byte() {
		case 0:
		case 1:
			c.offs = make([]uint32, c.n)
			prev := uint64(0)
			for k := range c.offs {
				prev += d.uvarint()
				if prev > 0xffffffff {
					d.fail()
				}
				c.offs[k] = uint32(prev)
			}
		case 2:
			c.wide = make([]uint64, c.n)
			for k := range c.wide {
				c.wide[k] = d.uvarint()
			}
		default:
			d.fail()
		}
		if len(l.sealed) > 0 && d.err == nil && c.first <= l.sealed[len(l.sealed)-1].last() {
			d.fail()
		}
		l.sealed = append(l.sealed, c)
		l.n += int(c.n)
	}
	no := d.count(1)
	if no >= chunkLen {
		d.fail()
		return l
	}
	l.open = make([]uint64, 0, no)
	prev := uint64(0)
	for ; no > 0 && d.err == nil; no-- {
		prev += d.uvarint()
		l.open = append(l.open, prev)
	}
	l.n += len(l.open)
	return l
}
