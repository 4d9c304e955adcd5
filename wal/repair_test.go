package wal

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// buildTorn writes records 1..n-1, then record n alone, into a closed log and
// returns the dir, the segment file holding n (which must be the last file)
// and its size before and after n was appended.
func buildTorn(t *testing.T, opts Options, n uint64) (dir, seg string, before, after int64) {
	dir = t.TempDir()
	l := mustOpen(t, dir, opts)
	appendRange(t, l, 1, n-1, 4)
	seg = lastSegPath(t, dir)
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(n, [][]byte{payload(n)}); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if got := lastSegPath(t, dir); got != seg {
		t.Fatalf("record %d started a new segment (%s); pick another n", n, got)
	}
	fj, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, seg, fi.Size(), fj.Size()
}

func TestTornTailEveryOffset(t *testing.T) {
	layouts := map[string]struct {
		opts Options
		n    uint64
	}{
		"one segment":   {Options{}, 40},
		"many segments": {Options{SegmentSize: 400}, 70},
	}
	for name, lay := range layouts {
		t.Run(name, func(t *testing.T) {
			base, seg, before, after := buildTorn(t, lay.opts, lay.n)
			if name == "many segments" && len(segNames(t, base)) < 3 {
				t.Fatalf("only %d segments", len(segNames(t, base)))
			}
			for cut := before; cut < after; cut++ {
				dir := copyDir(t, base)
				path := filepath.Join(dir, filepath.Base(seg))
				if err := os.Truncate(path, cut); err != nil {
					t.Fatal(err)
				}
				l := mustOpen(t, dir, lay.opts)
				if r := l.Repaired(); r.DroppedBytes != cut-before || (cut > before) != (r.Segment == path) {
					t.Fatalf("cut at %d: report %+v, want %d bytes of %s", cut, r, cut-before, path)
				}
				if fi, err := os.Stat(path); err != nil || fi.Size() != before {
					t.Fatalf("cut at %d: file is %d bytes, want %d", cut, fi.Size(), before)
				}
				checkRange(t, l, 1, lay.n-1)
				appendRange(t, l, lay.n, lay.n+2, 3)
				checkRange(t, l, 1, lay.n+2)
				mustClose(t, l)
			}
		})
	}
}

func TestTornTailGarbage(t *testing.T) {
	badCRC := appendRecord(nil, 31, []byte("never acknowledged"))
	badCRC[0] ^= 1
	frame := binary.AppendUvarint(nil, uint64(len(badCRC)))
	frame = append(frame, badCRC...)
	random := make([]byte, 100)
	rand.New(rand.NewSource(1)).Read(random)
	cases := []struct {
		name    string
		garbage []byte
		records int // complete invalid frames reported
	}{
		{"zeros", make([]byte, 16), 16},
		{"random", random, -1},
		{"record failing its CRC", frame, 1},
		{"half a uvarint", []byte{0x80}, 0},
		{"frame longer than the file", binary.AppendUvarint(nil, 1<<40), 0},
		{"wrong index", append(binary.AppendUvarint(nil, 10), appendRecord(nil, 32, []byte("hello"))...), 1},
	}
	base, seg, _, size := buildTorn(t, Options{}, 30)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := filepath.Join(dir, filepath.Base(seg))
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.garbage)
			f.Close()
			l := mustOpen(t, dir, Options{})
			r := l.Repaired()
			if r.DroppedBytes != int64(len(tc.garbage)) || (tc.records >= 0 && r.DroppedRecords != tc.records) {
				t.Fatalf("report %+v, want %d bytes, %d records", r, len(tc.garbage), tc.records)
			}
			if fi, _ := os.Stat(path); fi.Size() != size {
				t.Fatalf("file is %d bytes, want %d", fi.Size(), size)
			}
			checkRange(t, l, 1, 30)
			mustClose(t, l)
		})
	}
}

func TestWholeLastSegmentGarbage(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 50, 1)
	mustClose(t, l)
	names := segNames(t, dir)
	// Make sure the last segment holds records, then overwrite it.
	lastName := names[len(names)-1]
	lastFirst, _ := strconv.ParseUint(lastName, 10, 64)
	if lastFirst > 50 {
		lastName = names[len(names)-2]
		os.Remove(filepath.Join(dir, names[len(names)-1]))
		lastFirst, _ = strconv.ParseUint(lastName, 10, 64)
	}
	garbage := make([]byte, 150)
	rand.New(rand.NewSource(2)).Read(garbage)
	garbage[0] = 0x7f  // a complete frame of 127 garbage bytes,
	garbage[128] = 100 // then a partial one
	if err := os.WriteFile(filepath.Join(dir, lastName), garbage, 0o640); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, tiny)
	if r := l.Repaired(); r.DroppedBytes != 150 || r.DroppedRecords != 1 {
		t.Fatalf("report %+v, want 150 bytes, 1 record", r)
	}
	checkRange(t, l, 1, lastFirst-1)
	appendRange(t, l, lastFirst, 60, 2)
	checkRange(t, l, 1, 60)
	mustClose(t, l)
	l = mustOpen(t, dir, tiny)
	checkRange(t, l, 1, 60)
	mustClose(t, l)

	// The only segment is garbage: an empty log that still starts at its name.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segmentName(42)), garbage, 0o640); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, tiny)
	checkRange(t, l, 42, 41)
	mustClose(t, l)
}

// corruptLog writes 1..100 in tiny segments, closes it, and calls damage
// with the path of the segment file holding index k and the [start, end)
// byte range of k's frame in it.
func corruptLog(t *testing.T, k uint64, damage func(path string, start, end int)) string {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 100, 3)
	mustClose(t, l)
	var segFirst uint64
	var name string
	for _, n := range segNames(t, dir) {
		if f, _ := strconv.ParseUint(n, 10, 64); f <= k {
			segFirst, name = f, n
		}
	}
	path := filepath.Join(dir, name)
	_, ends := frames(t, path)
	pos := int(k - segFirst)
	start := 0
	if pos > 0 {
		start = ends[pos-1]
	}
	damage(path, start, ends[pos])
	return dir
}

func flipByte(t *testing.T, path string, at int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x04
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestFlippedBitInOlderSegment(t *testing.T) {
	const k = 23
	dir := corruptLog(t, k, func(path string, _, end int) { flipByte(t, path, end-1) })
	if path := lastSegPath(t, dir); filepath.Base(path) <= segmentName(k) {
		t.Fatal("damaged segment is the last one")
	}
	l := mustOpen(t, dir, tiny)
	defer l.Close()
	if r := l.Repaired(); r.DroppedBytes != 0 {
		t.Fatalf("damage in an old segment was repaired: %+v", r)
	}
	if _, err := l.Read(k); asCorrupt(t, err).Index != k {
		t.Fatalf("Read(%d): %v", k, err)
	}
	for i := uint64(1); i <= 100; i++ {
		if got, err := l.Read(i); i != k && (err != nil || !bytes.Equal(got, payload(i))) {
			t.Fatalf("Read(%d) = %q, %v", i, got, err)
		}
	}
	if err := l.Verify(); asCorrupt(t, err).Index != k {
		t.Fatalf("Verify: %v, want index %d", err, k)
	}
	var seen uint64
	err := l.Scan(1, math.MaxUint64, func(i uint64, _ []byte) error { seen = i; return nil })
	if asCorrupt(t, err).Index != k || seen != k-1 {
		t.Fatalf("Scan stopped after %d with %v, want after %d with corruption at %d", seen, err, k-1, k)
	}
	// What the cluster layer does: cut before the damage, refill.
	if err := l.TruncateBack(k - 1); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, k, 100, 10)
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 100)
}

// A damaged record in the last segment that is followed by valid records is
// damage in the middle, not a torn write: Open must not cut it.
func TestFlippedBitInLastSegmentIsNotRepaired(t *testing.T) {
	l0 := mustOpen(t, t.TempDir(), Options{})
	appendRange(t, l0, 1, 20, 5)
	mustClose(t, l0)
	path := lastSegPath(t, l0.dir)
	_, ends := frames(t, path)
	flipByte(t, path, ends[9]-1) // record 10
	l := mustOpen(t, l0.dir, Options{})
	defer l.Close()
	if r := l.Repaired(); r.DroppedBytes != 0 {
		t.Fatalf("repaired %+v", r)
	}
	if _, err := l.Read(10); asCorrupt(t, err).Index != 10 {
		t.Fatal(err)
	}
	if got, err := l.Read(20); err != nil || !bytes.Equal(got, payload(20)) {
		t.Fatalf("Read(20) = %q, %v", got, err)
	}
	if err := l.Verify(); asCorrupt(t, err).Index != 10 {
		t.Fatalf("Verify: %v", err)
	}
}

// Records missing from the middle of an older segment (its file cut
// short): the next segment's name says how many it held, so the missing
// indexes read as corrupt, each one, and every index after them keeps its
// record. The cluster layer can refill them in place or cut there.
func TestRecordsMissingInOlderSegment(t *testing.T) {
	const k = 30
	dir := corruptLog(t, k, func(path string, start, _ int) {
		os.Truncate(path, int64(start)) // k and everything after it in the segment
	})
	l := mustOpen(t, dir, tiny)
	defer l.Close()
	if ce := asCorrupt(t, l.Verify()); ce.Index != k {
		t.Fatalf("Verify reported %d, want %d", ce.Index, k)
	}
	rs := l.Reframed()
	if len(rs) != 1 || rs[0].From != k || rs[0].Restored {
		t.Fatalf("Reframed = %v, want one unrestored run from %d", rs, k)
	}
	for i := uint64(1); i <= 100; i++ {
		got, err := l.Read(i)
		switch {
		case i >= rs[0].From && i <= rs[0].To:
			if asCorrupt(t, err).Index != i {
				t.Fatalf("Read(%d): %v", i, err)
			}
		case err != nil || !bytes.Equal(got, payload(i)):
			t.Fatalf("Read(%d) = %q, %v", i, got, err)
		}
	}
	if err := l.TruncateBack(k - 1); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, k, 100, 7)
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 100)
}
