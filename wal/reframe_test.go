package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ordo-broker/ordo/wal/waltest"
)

// A damaged length prefix in the middle of the log, in an older segment or
// in the last one, takes neither the records after it nor its own index:
// Open finds the next record by its index-seeded checksum and re-frames.
// Only the prefix hit: the record is whole again. Prefix and record hit:
// that one index reads as corrupt (damaged, not absent), nothing else.
func TestDamagedLengthPrefixIsReframed(t *testing.T) {
	for _, seg := range []struct {
		name string
		seg  int
	}{{"older segment", 2}, {"last segment", -1}} {
		for _, alsoRecord := range []bool{false, true} {
			name := seg.name + "/prefix only"
			if alsoRecord {
				name = seg.name + "/prefix and record"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				l := mustOpen(t, dir, Options{SegmentSize: 2000})
				appendRange(t, l, 1, 300, 4)
				mustClose(t, l)
				if n := len(segNames(t, dir)); n < 4 {
					t.Fatalf("only %d segments", n)
				}
				if alsoRecord { // (first: it needs the framing intact)
					if _, err := waltest.FlipRecordBit(dir, seg.seg, 0.4); err != nil {
						t.Fatal(err)
					}
				}
				k, err := waltest.FlipLengthPrefix(dir, seg.seg, 0.4)
				if err != nil {
					t.Fatal(err)
				}
				l = mustOpen(t, dir, Options{SegmentSize: 2000})
				defer l.Close()
				if r := l.Repaired(); r.DroppedBytes != 0 {
					t.Fatalf("Open cut %+v: the records after the damage are not a torn tail", r)
				}
				rs := l.Reframed()
				if len(rs) != 1 || rs[0].From != k || rs[0].To != k || rs[0].Restored == alsoRecord {
					t.Fatalf("Reframed = %v, want index %d, restored %v", rs, k, !alsoRecord)
				}
				if l.LastIndex() != 300 {
					t.Fatalf("LastIndex = %d, want 300", l.LastIndex())
				}
				for i := uint64(1); i <= 300; i++ {
					got, err := l.Read(i)
					if i == k && alsoRecord {
						if asCorrupt(t, err).Index != k {
							t.Fatalf("Read(%d): %v", i, err)
						}
						continue
					}
					if err != nil || !bytes.Equal(got, payload(i)) {
						t.Fatalf("Read(%d) = %q, %v", i, got, err)
					}
				}
				appendRange(t, l, 301, 310, 3)
				if got, err := l.Read(310); err != nil || !bytes.Equal(got, payload(310)) {
					t.Fatalf("Read(310) after append = %q, %v", got, err)
				}
			})
		}
	}
}

// Several records in a row lost their framing: the resync looks past them
// to the next intact record; each of them reads as corrupt.
func TestDamagedRunIsReframed(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 2000})
	appendRange(t, l, 1, 300, 4)
	mustClose(t, l)
	segs, err := waltest.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := waltest.Frames(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	// Zero three whole frames in the middle of the second segment.
	a, b := fs[3], fs[5]
	data, _ := os.ReadFile(segs[1].Path)
	clear(data[a.Offset : b.Offset+b.Prefix+b.Size])
	if err := os.WriteFile(segs[1].Path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{SegmentSize: 2000})
	defer l.Close()
	for i := uint64(1); i <= 300; i++ {
		got, err := l.Read(i)
		if i >= a.Index && i <= b.Index {
			if asCorrupt(t, err).Index != i {
				t.Fatalf("Read(%d): %v", i, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, payload(i)) {
			t.Fatalf("Read(%d) = %q, %v", i, got, err)
		}
	}
}

// A torn tail is still a torn tail: nothing verifies after the damage.
func TestTornTailIsNotReframed(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 2000})
	appendRange(t, l, 1, 300, 4)
	mustClose(t, l)
	first, err := waltest.CutTail(dir, 50)
	if err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{SegmentSize: 2000})
	defer l.Close()
	if len(l.Reframed()) != 0 || l.Repaired().DroppedBytes == 0 {
		t.Fatalf("reframed %v, repaired %v", l.Reframed(), l.Repaired())
	}
	checkRange(t, l, 1, first-1)
	if _, err := os.Stat(filepath.Join(dir, segmentName(1)+".TEMP")); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}
