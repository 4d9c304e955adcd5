package store

import (
	"os"
	"slices"
	"testing"

	"github.com/ordo-broker/ordo/wal"
	"github.com/ordo-broker/ordo/wal/waltest"
)

// faultLog writes entries 1..n (term 1 up to index 100, term 2 after) into
// a WAL in a fresh directory, closes it, and returns the directory.
func faultLog(t *testing.T, n uint64) string {
	t.Helper()
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	st := New(l)
	es := entriesFrom(1, n)
	for i := range es {
		if es[i].Index > 100 {
			es[i].Term = 2
		}
	}
	if err := st.Append(es); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func reload(t *testing.T, dir string, commit uint64) (*Store, []uint64) {
	t.Helper()
	l, err := wal.Open(dir, wal.Options{SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	st := New(l)
	t.Cleanup(func() { st.Close() })
	_, corrupt, err := st.Load(commit, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st, corrupt
}

// Every class of damage in the middle of the log: the damaged index is
// reported (faulty at i, with its term where certain), the log keeps its
// length and every other entry, nothing is truncated.
func TestLoadReportsFaultsInPlace(t *testing.T) {
	cases := []struct {
		name   string
		damage func(dir string) (uint64, error)
		term   uint64 // the term Faults must report
	}{
		{"flipped bit, term certain", func(dir string) (uint64, error) { return waltest.FlipRecordBit(dir, 1, 0.5) }, 1},
		{"flipped bit at a term change", func(dir string) (uint64, error) {
			// Find the segment holding index 101 (the first of term 2).
			segs, _ := waltest.Segments(dir)
			k := 0
			for k+1 < len(segs) && segs[k+1].First <= 101 {
				k++
			}
			fs, _ := waltest.Frames(segs[k])
			at := float64(101-segs[k].First) / float64(len(fs))
			return waltest.FlipRecordBit(dir, k, at+0.5/float64(len(fs)))
		}, 0},
		{"flipped length prefix and bit", func(dir string) (uint64, error) {
			if _, err := waltest.FlipRecordBit(dir, -1, 0.3); err != nil {
				return 0, err
			}
			return waltest.FlipLengthPrefix(dir, -1, 0.3)
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := faultLog(t, 200)
			bad, err := c.damage(dir)
			if err != nil {
				t.Fatal(err)
			}
			st, corrupt := reload(t, dir, 200)
			if !slices.Equal(corrupt, []uint64{bad}) {
				t.Fatalf("corrupt = %v, want [%d]", corrupt, bad)
			}
			if f := st.Faults(); len(f) != 1 || f[0] != (Fault{bad, c.term}) {
				t.Fatalf("Faults = %v, want [{%d %d}]", f, bad, c.term)
			}
			if st.LastIndex() != 200 {
				t.Fatalf("LastIndex = %d, want 200: the log must keep its length", st.LastIndex())
			}
			for i := uint64(1); i <= 200; i++ {
				if i == bad {
					continue
				}
				es, err := st.Entries(i, i+1, 0)
				if err != nil || len(es) != 1 || es[0].ReqID != i {
					t.Fatalf("Entries(%d) = %v, %v", i, es, err)
				}
			}
			if got := st.CorruptIn(1, 200); got != bad {
				t.Fatalf("CorruptIn = %d, want %d", got, bad)
			}
			if n := st.ChannelLen("c"); n != 199 {
				t.Fatalf("channel index holds %d, want 199", n)
			}

			// The repair: cut from the damaged index, append the intact
			// copies (a peer's). The repaired message is indexed again.
			if err := st.TruncateFrom(bad); err != nil {
				t.Fatal(err)
			}
			es := entriesFrom(bad, 201-bad)
			for i := range es {
				es[i].Seq = es[i].Index // (the core fills it in)
			}
			for i := range es {
				if es[i].Index > 100 {
					es[i].Term = 2
				}
			}
			if err := st.Append(es); err != nil {
				t.Fatal(err)
			}
			if got := st.CorruptIn(1, 200); got != 0 {
				t.Fatalf("CorruptIn after repair = %d", got)
			}
			if seqs := st.ChannelSeqs("c", 1, 200); len(seqs) != 200 || !slices.IsSorted(seqs) {
				t.Fatalf("channel index after repair holds %d seqs", len(seqs))
			}
			m, err := st.Message(bad)
			if err != nil || m.Seq != bad {
				t.Fatalf("Message(%d) after repair: %v %v", bad, m, err)
			}
		})
	}
}

// A cut tail is cut (a torn write, as far as the log can tell); the hard
// state's acknowledged point decides whether it was more than that.
func TestLoadAfterCutTail(t *testing.T) {
	dir := faultLog(t, 200)
	first, err := waltest.CutTail(dir, 300)
	if err != nil {
		t.Fatal(err)
	}
	st, corrupt := reload(t, dir, 200)
	if len(corrupt) != 0 || st.LastIndex() != first-1 {
		t.Fatalf("corrupt %v, LastIndex %d, want none and %d", corrupt, st.LastIndex(), first-1)
	}
}

// Records missing from a finished segment: each missing index is faulty,
// the segments after it keep their entries.
func TestLoadAfterSegmentCutShort(t *testing.T) {
	dir := faultLog(t, 200)
	segs, err := waltest.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := waltest.Frames(segs[1])
	if err := truncateFile(segs[1].Path, int64(fs[len(fs)-3].Offset)); err != nil {
		t.Fatal(err)
	}
	st, corrupt := reload(t, dir, 200)
	want := []uint64{fs[len(fs)-3].Index, fs[len(fs)-2].Index, fs[len(fs)-1].Index}
	if !slices.Equal(corrupt, want) || st.LastIndex() != 200 {
		t.Fatalf("corrupt %v, LastIndex %d, want %v and 200", corrupt, st.LastIndex(), want)
	}
}

func truncateFile(path string, size int64) error { return os.Truncate(path, size) }

// A repaired message below a channel's last seq goes where it belongs in
// the chunked index (across sealed chunks too), once.
func TestSeqListInsert(t *testing.T) {
	var l seqList
	var want []uint64
	for s := uint64(1); s <= 3*chunkLen; s++ {
		if s%500 != 0 {
			l.add(s)
			want = append(want, s)
		}
	}
	for _, s := range []uint64{1500, 500, 3 * chunkLen, 1500, 1} {
		l.insert(s)
		if k, found := slices.BinarySearch(want, s); !found {
			want = slices.Insert(want, k, s)
		}
	}
	if got := l.rangeSeqs(0, ^uint64(0), -1, false); !slices.Equal(got, want) || l.n != len(want) {
		t.Fatalf("after inserts: %d seqs (n %d), want %d; equal %v", len(got), l.n, len(want), slices.Equal(got, want))
	}
}
