package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// inspected is what Inspect handed to its callback.
type inspected struct {
	good map[uint64][]byte
	bad  []uint64
	in   Inspection
}

func inspect(t *testing.T, dir string) inspected {
	t.Helper()
	r := inspected{good: map[uint64][]byte{}}
	next := uint64(0)
	var err error
	r.in, err = Inspect(dir, func(i uint64, p []byte, bad *CorruptError) error {
		if i < next {
			t.Fatalf("Inspect gave index %d after %d", i, next-1)
		}
		next = i + 1
		if bad != nil {
			if bad.Index != i || p != nil {
				t.Fatalf("index %d: CorruptError for %d, payload %q", i, bad.Index, p)
			}
			r.bad = append(r.bad, i)
			return nil
		}
		r.good[i] = bytes.Clone(p)
		return nil
	})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	return r
}

// snapshot is every file of dir with its content, to prove Inspect
// changed nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func sameFiles(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Fatalf("Inspect changed the directory: %d files, was %d", len(after), len(before))
	}
	for name, b := range before {
		if after[name] != b {
			t.Fatalf("Inspect changed %s", name)
		}
	}
}

func TestInspectReadsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 400})
	appendRange(t, l, 1, 70, 3)
	mustClose(t, l)
	before := snapshot(t, dir)
	r := inspect(t, dir)
	sameFiles(t, dir, before)
	if r.in.FirstIndex != 1 || r.in.LastIndex != 70 || r.in.Segments < 3 || len(r.bad) > 0 || r.in.TornTail.DroppedBytes != 0 || len(r.in.Unreadable) > 0 {
		t.Fatalf("clean log inspected as %+v, bad %v", r.in, r.bad)
	}
	for i := uint64(1); i <= 70; i++ {
		if !bytes.Equal(r.good[i], payload(i)) {
			t.Fatalf("record %d = %q, want %q", i, r.good[i], payload(i))
		}
	}
}

func TestInspectEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	r := inspect(t, dir)
	if r.in.FirstIndex != 1 || r.in.LastIndex != 0 || r.in.Segments != 0 {
		t.Fatalf("empty directory: %+v", r.in)
	}
	if _, err := Inspect(filepath.Join(dir, "nosuch"), nil); !os.IsNotExist(err) {
		t.Fatalf("missing directory: err = %v, want not-exist", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Inspect created %d files", len(entries))
	}
}

// A flipped bit in an old segment and one in the last segment are both
// reported, each at its index, and every other record is still read.
func TestInspectReportsDamageAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 400})
	appendRange(t, l, 1, 70, 1)
	mustClose(t, l)
	names := segNames(t, dir)
	first := filepath.Join(dir, names[0])
	data, ends := frames(t, first)
	data[ends[2]-1] ^= 0x40 // the last byte of record 3
	if err := os.WriteFile(first, data, 0o640); err != nil {
		t.Fatal(err)
	}
	last := lastSegPath(t, dir)
	data, ends = frames(t, last)
	data[ends[0]-1] ^= 0x40 // the first record of the last segment, not its last
	if err := os.WriteFile(last, data, 0o640); err != nil {
		t.Fatal(err)
	}
	lastFirst := mustIndex(t, filepath.Base(last))

	before := snapshot(t, dir)
	r := inspect(t, dir)
	sameFiles(t, dir, before)
	if len(r.bad) != 2 || r.bad[0] != 3 || r.bad[1] != lastFirst {
		t.Fatalf("damaged records reported: %v, want [3 %d]", r.bad, lastFirst)
	}
	if len(r.good) != 68 || r.in.LastIndex != 70 {
		t.Fatalf("%d good records, last index %d; want 68 and 70", len(r.good), r.in.LastIndex)
	}
	if r.in.TornTail.DroppedBytes != 0 {
		t.Fatalf("damage before the last valid record is not a torn tail: %+v", r.in.TornTail)
	}
}

// A torn tail is reported as what a node's Open would cut, and left in
// place.
func TestInspectReportsTornTailWithoutCutting(t *testing.T) {
	dir, seg, before, after := buildTorn(t, Options{}, 40)
	// Record 40 loses its last byte: a write cut short.
	if err := os.Truncate(seg, after-1); err != nil {
		t.Fatal(err)
	}
	files := snapshot(t, dir)
	r := inspect(t, dir)
	sameFiles(t, dir, files)
	if r.in.LastIndex != 39 || len(r.good) != 39 || len(r.bad) != 0 {
		t.Fatalf("torn log: last %d, %d good, bad %v", r.in.LastIndex, len(r.good), r.bad)
	}
	if r.in.TornFrom != 40 || r.in.TornTail.DroppedBytes != after-1-before || len(r.in.Unreadable) != 1 || r.in.Unreadable[0].From != 40 || r.in.Unreadable[0].To != 0 {
		t.Fatalf("torn tail reported as %+v", r.in)
	}
	// Open cuts exactly what Inspect said it would.
	l := mustOpen(t, dir, Options{})
	defer mustClose(t, l)
	if rep := l.Repaired(); rep.DroppedBytes != r.in.TornTail.DroppedBytes {
		t.Fatalf("Open cut %d bytes, Inspect predicted %d", rep.DroppedBytes, r.in.TornTail.DroppedBytes)
	}
}

// Broken framing in an old segment: its readable records are given, the
// rest reported with the indexes they should hold, and the next segment
// is read.
func TestInspectBrokenFramingInOldSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 400})
	appendRange(t, l, 1, 70, 1)
	mustClose(t, l)
	names := segNames(t, dir)
	first := filepath.Join(dir, names[0])
	next := mustIndex(t, names[1])
	data, ends := frames(t, first)
	// Record 5's length prefix now promises more than the file holds.
	data[ends[3]] = 0xff
	data[ends[3]+1] = 0x7f
	if err := os.WriteFile(first, data, 0o640); err != nil {
		t.Fatal(err)
	}
	// As Open would re-frame it: record 6 is found by its checksum, so
	// only record 5 is damaged.
	r := inspect(t, dir)
	if len(r.in.Unreadable) != 0 || len(r.in.Reframed) != 1 || r.in.Reframed[0].From != 5 || r.in.Reframed[0].To != 5 {
		t.Fatalf("unreadable %+v, reframed %+v", r.in.Unreadable, r.in.Reframed)
	}
	for i := uint64(1); i <= 70; i++ {
		_, ok := r.good[i]
		if want := i != 5; ok != want {
			t.Fatalf("record %d read: %v, want %v", i, ok, want)
		}
	}

	// Nothing verifiable after the damage: the rest of the segment is
	// framed as damaged records, one per index it should hold.
	clear(data[ends[3]:])
	if err := os.WriteFile(first, data, 0o640); err != nil {
		t.Fatal(err)
	}
	r = inspect(t, dir)
	if len(r.in.Reframed) != 1 || r.in.Reframed[0].From != 5 || r.in.Reframed[0].To != next-1 {
		t.Fatalf("reframed %+v, want indexes 5..%d", r.in.Reframed, next-1)
	}
	for i := uint64(1); i <= 70; i++ {
		_, ok := r.good[i]
		if want := i < 5 || i >= next; ok != want {
			t.Fatalf("record %d read: %v, want %v", i, ok, want)
		}
	}
}

// An interrupted front truncation (a START file) is shown as Open will
// finish it, and left pending.
func TestInspectPendingStart(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 400})
	appendRange(t, l, 1, 70, 1)
	mustClose(t, l)
	names := segNames(t, dir)
	second := filepath.Join(dir, names[1])
	if err := os.Rename(second, second+".START"); err != nil {
		t.Fatal(err)
	}
	r := inspect(t, dir)
	if r.in.Pending == "" || r.in.FirstIndex != mustIndex(t, names[1]) || r.in.LastIndex != 70 {
		t.Fatalf("pending START: %+v", r.in)
	}
	if _, err := os.Stat(filepath.Join(dir, names[0])); err != nil {
		t.Fatalf("Inspect removed the segment before START: %v", err)
	}
}

func mustIndex(t *testing.T, name string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(name[:segNameLen], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
