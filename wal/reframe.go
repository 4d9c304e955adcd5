package wal

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Damage to a length prefix breaks the framing of everything after it in
// its segment: tidwall/wal then rejects the whole file (or, in the last
// segment, Open's tail repair would take the rest for a torn write and cut
// it). But the records after it are intact, and because each record's
// checksum is seeded with its index, the next one can be found again by
// trying every offset after the damage: a frame there that verifies as
// record i+1 (or a few further on) is where the damaged record ended.
// Open rewrites the damaged frame's prefix so the file frames again:
// when only the prefix was hit, the record verifies again (Restored);
// otherwise it stays in place failing its checksum, so a reader gets a
// *CorruptError for exactly that index — damaged, not absent — and every
// index after it keeps its record.
//
// A finished segment also knows how many records it holds (the next
// file's name is its successor's first index): if no record can be
// found after the damage, its remaining indexes are framed as empty
// (failing) records, so the indexes of the segments after it stay right.

// maxGap is how many consecutive damaged records a resync looks past.
const maxGap = 8

// Reframe is one damaged frame Open rewrote.
type Reframe struct {
	Segment string `json:"segment"` // file name
	// The indexes whose framing was rebuilt.
	From uint64 `json:"from_index"`
	To   uint64 `json:"to_index"`
	// Restored: the records verify again (only framing was damaged).
	// Otherwise they fail their checksum: Read reports each as corrupt.
	Restored bool `json:"restored"`
}

func (r Reframe) String() string {
	what := "left as damaged records"
	if r.Restored {
		what = "restored"
	}
	return fmt.Sprintf("segment %s: framing of indexes %d..%d rebuilt, %s", r.Segment, r.From, r.To, what)
}

// reframeSegments repairs the framing of every segment in dir (see
// above) and returns what it rewrote. A directory with an interrupted
// truncation pending is left alone (tidwall finishes it first; the next
// Open reframes).
func reframeSegments(dir string) ([]Reframe, error) {
	files, err := listSegmentFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.kind != "" {
			return nil, nil
		}
	}
	var out []Reframe
	for k, f := range files {
		limit := uint64(0) // 0: the last segment, length unknown
		if k+1 < len(files) {
			limit = files[k+1].index
		}
		path := filepath.Join(dir, f.name)
		data, err := os.ReadFile(path)
		if err != nil {
			return out, err
		}
		if framesCleanly(data, f.index, limit) {
			continue
		}
		fixed, rs := reframe(data, f.index, limit)
		if len(rs) == 0 {
			continue
		}
		for i := range rs {
			rs[i].Segment = f.name
		}
		if err := ReplaceFile(path, fixed); err != nil {
			return out, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// framesCleanly reports whether data parses into whole frames, exactly
// limit-first of them if limit is known. (Checksums are not looked at: a
// record failing its own is reported by Read at its index.)
func framesCleanly(data []byte, first, limit uint64) bool {
	n, off := uint64(0), 0
	for off < len(data) {
		size, k := binary.Uvarint(data[off:])
		if k <= 0 || uint64(len(data)-off-k) < size {
			return false
		}
		off += k + int(size)
		n++
	}
	return limit == 0 || n == limit-first
}

// reframe rebuilds data's framing: intact frames are copied, each damaged
// run is re-framed up to where the next verifying record starts. In the
// last segment (limit 0) a damaged run with no verifying record after it
// is left as it is (Open's tail repair cuts it: a torn write).
func reframe(data []byte, first, limit uint64) ([]byte, []Reframe) {
	var rs []Reframe
	out := make([]byte, 0, len(data)+16)
	off, i := 0, first
	for off < len(data) && (limit == 0 || i < limit) {
		pend := -1 // where the frame at off ends, if it parses
		if size, n := binary.Uvarint(data[off:]); n > 0 && uint64(len(data)-off-n) >= size {
			pend = off + n + int(size)
			if _, err := decodeRecord(i, data[off+n:pend]); err == nil {
				out = append(out, data[off:pend]...)
				off, i = pend, i+1
				continue
			}
		}
		// Record i's frame is damaged: where does the next good one start?
		next, j := -1, uint64(0)
		if limit != 0 && i+1 == limit {
			next, j = len(data), limit // the segment's last record
		} else {
			next, j = findRecord(data, off+1, i+1, limit)
		}
		if next < 0 {
			if limit == 0 {
				break // a torn tail, or damage no record follows: Open cuts it
			}
			// Nothing verifies after it: the rest of the segment's indexes
			// are unknown, framed as empty records.
			out = append(out, make([]byte, limit-i)...)
			rs = append(rs, Reframe{From: i, To: limit - 1})
			off, i = len(data), limit
			break
		}
		if next == pend && j == i+1 {
			// Framed right, only its content is damaged: keep it as it is
			// (Read reports it).
			out = append(out, data[off:next]...)
			off, i = next, j
			continue
		}
		restored := false
		if j == i+1 {
			out, restored = appendRestored(out, data[off:next], i)
		}
		if !restored {
			out = appendFiller(out, data[off:next], int(j-i))
		}
		rs = append(rs, Reframe{From: i, To: j - 1, Restored: restored})
		off, i = next, j
	}
	if limit != 0 && i < limit { // the file ends early
		out = append(out, make([]byte, limit-i)...)
		rs = append(rs, Reframe{From: i, To: limit - 1})
		off = len(data)
	}
	if len(rs) == 0 {
		return data, nil
	}
	return append(out, data[off:]...), rs
}

// findRecord returns the first offset from from on where a frame verifies
// as one of the records want..want+maxGap-1 (below limit, if known), and
// that record's index; -1 if none does.
//
// Trying every offset costs a checksum over each candidate frame, and
// garbage is full of candidates claiming to run to the end of the file,
// so a first pass takes only candidates followed by something that looks
// like another frame (or the end of the file): nearly always where the
// next intact record is. Only if that finds nothing does a second pass
// try every candidate as want, within a budget of checksummed bytes.
func findRecord(data []byte, from int, want, limit uint64) (int, uint64) {
	hi := want + maxGap
	if limit != 0 {
		hi = min(hi, limit)
	}
	if o, j := scanFor(data, from, want, hi, true, math.MaxInt); o >= 0 {
		return o, j
	}
	return scanFor(data, from, want, want+1, false, searchBudget)
}

// searchBudget bounds the bytes the unfiltered pass checksums (about a
// tenth of a second).
const searchBudget = 256 << 20

func scanFor(data []byte, from int, want, hi uint64, chained bool, budget int) (int, uint64) {
	for o := from; o < len(data); o++ {
		size, n := binary.Uvarint(data[o:])
		if n <= 0 || size < headerLen || uint64(len(data)-o-n) < size {
			continue
		}
		rec := data[o+n : o+n+int(size)]
		if rec[4] != recordVersion {
			continue
		}
		if end := o + n + int(size); chained && end < len(data) {
			s2, n2 := binary.Uvarint(data[end:])
			if n2 <= 0 || s2 < headerLen || uint64(len(data)-end-n2) < s2 || data[end+n2+4] != recordVersion {
				continue
			}
		}
		for j := want; j < hi; j++ {
			if int(j-want) > o-from { // each skipped record takes a byte at least
				break
			}
			if budget -= len(rec); budget < 0 {
				return -1, 0
			}
			if _, err := decodeRecord(j, rec); err == nil {
				return o, j
			}
		}
	}
	return -1, 0
}

// appendRestored tries the frame the span must have had (a minimal
// uvarint length then the record): if the record verifies as index, only
// the prefix was damaged and the frame is whole again.
func appendRestored(out, span []byte, index uint64) ([]byte, bool) {
	for n := 1; n <= binary.MaxVarintLen64 && n < len(span); n++ {
		s := len(span) - n
		var b [binary.MaxVarintLen64]byte
		if binary.PutUvarint(b[:], uint64(s)) != n {
			continue
		}
		if _, err := decodeRecord(index, span[n:]); err == nil {
			out = append(out, b[:n]...)
			return append(out, span[n:]...), true
		}
	}
	return out, false
}

// appendFiller frames span as count records that fail their checksums:
// count-1 empty ones, then one holding the rest of span's bytes (kept for
// whoever looks at the file), its length written in as many bytes as
// needed to fill span exactly. Span holds at least count bytes.
func appendFiller(out, span []byte, count int) []byte {
	out = append(out, make([]byte, count-1)...)
	rest := span[count-1:]
	var tmp [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(tmp[:], uint64(len(rest)))
	// Go's Uvarint accepts padded encodings (0x80 continuation bytes).
	out = appendPaddedUvarint(out, uint64(len(rest)-n), n)
	return append(out, rest[n:]...)
}

// appendPaddedUvarint appends v as a uvarint of exactly n bytes (n at
// least its minimal length).
func appendPaddedUvarint(out []byte, v uint64, n int) []byte {
	for k := 0; k < n-1; k++ {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

// ReplaceFile atomically replaces path's content: a temporary file
// (NAME.TEMP; Open removes a segment's if a crash leaves it) is written,
// fsynced and renamed over it, then the directory is fsynced.
func ReplaceFile(path string, data []byte) error {
	tmp := path + ".TEMP"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	return err
}
