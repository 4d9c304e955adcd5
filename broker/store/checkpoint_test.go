package store

import (
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// The chunked channel index behaves as the plain sorted slice it
// replaced: adds, range reads, trims, and a checkpoint round trip, for
// runs (one busy channel), sparse seqs and huge gaps.
func TestSeqListMatchesSlice(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 200; round++ {
		var l seqList
		var want []uint64
		seq := uint64(rng.Intn(10) + 1)
		n := rng.Intn(5000)
		dense := round%10 == 0
		if dense {
			n = 100_000 // one busy channel: all runs, a few bytes per chunk
		}
		for i := 0; i < n; i++ {
			switch r := rng.Intn(4); {
			case dense:
				seq++
			case r == 0:
				seq += uint64(rng.Intn(50)) + 1
			case r == 1:
				if rng.Intn(100) == 0 {
					seq += 1 << 33 // wider than 32-bit offsets
				}
				seq++
			default:
				seq++
			}
			l.add(seq)
			want = append(want, seq)
			if rng.Intn(2000) == 0 && len(want) > 0 {
				cut := want[rng.Intn(len(want))]
				l.trimFront(cut)
				k, _ := slices.BinarySearch(want, cut)
				want = want[k:]
			}
		}
		check := func(l *seqList, what string) {
			t.Helper()
			if l.n != len(want) {
				t.Fatalf("round %d %s: n %d, want %d", round, what, l.n, len(want))
			}
			if got := l.rangeSeqs(0, math.MaxUint64, -1, false); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("round %d %s: all seqs differ", round, what)
			}
			if len(want) > 0 {
				if l.last() != want[len(want)-1] {
					t.Fatalf("round %d %s: last %d, want %d", round, what, l.last(), want[len(want)-1])
				}
				lo, hi := want[rng.Intn(len(want))]-uint64(rng.Intn(2)), want[rng.Intn(len(want))]
				var sub []uint64
				for _, s := range want {
					if s >= lo && s <= hi {
						sub = append(sub, s)
					}
				}
				if got := l.rangeSeqs(lo, hi, -1, false); !slices.Equal(got, sub) {
					t.Fatalf("round %d %s: [%d, %d]: %d seqs, want %d", round, what, lo, hi, len(got), len(sub))
				}
				if c := rng.Intn(5); len(sub) > c {
					if got := l.rangeSeqs(lo, hi, c, false); !slices.Equal(got, sub[:c]) {
						t.Fatalf("round %d %s: first %d of [%d, %d]: %v", round, what, c, lo, hi, got)
					}
					if got := l.rangeSeqs(lo, hi, c, true); !slices.Equal(got, sub[len(sub)-c:]) {
						t.Fatalf("round %d %s: last %d of [%d, %d]: %v", round, what, c, lo, hi, got)
					}
				}
			}
		}
		check(&l, "built")
		d := &decoder{b: appendSeqList(nil, l.sealed, l.open)}
		back := readSeqList(d)
		if d.err != nil || len(d.b) != 0 {
			t.Fatalf("round %d: decode: %v, %d bytes left", round, d.err, len(d.b))
		}
		check(&back, "decoded")
	}
}

// testLog appends n messages over three channels (with a membership
// entry and two terms), committing and applying them as the replica does.
func fillStore(t *testing.T, st *Store, from, n uint64, term uint64) {
	t.Helper()
	chans := []string{"a", "b", "c"}
	for i := from; i < from+n; i++ {
		e := consensus.Entry{Index: i, Seq: i, Term: term, Origin: consensus.NodeID(1 + i%2), ReqID: i, Time: int64(i)}
		if i%1000 == 500 {
			e.Type, e.Seq, e.Origin, e.ReqID = consensus.EntryMembership, 0, 1, 0
			e.Data = []byte{2}
		} else {
			e.Data = EncodeMessage(&Message{Channel: []byte(chans[i%3]), Payload: []byte("x")})
		}
		if err := st.Append([]consensus.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	// Apply everything (Index + SetApplied, as replica.apply does).
	var ms []*Message
	for i := from; i < from+n; i++ {
		e, err := st.entry(i)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == consensus.EntryNormal {
			m, err := EntryMessage(&e)
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
	}
	st.Index(ms)
	st.SetApplied(from + n - 1)
}

// view is everything Load rebuilds, to compare a checkpointed load with a
// full scan.
type view struct {
	Seqs    map[string][]uint64
	Last    map[string]uint64
	SeqOf   []uint64
	Summary consensus.PrefixSummary
	Applied uint64
	MaxOwn  uint64
}

func viewOf(st *Store) view {
	v := view{Seqs: map[string][]uint64{}, Last: map[string]uint64{}, Applied: st.Applied(), MaxOwn: st.MaxOwnReqID()}
	for _, ch := range []string{"a", "b", "c", "none"} {
		v.Seqs[ch] = st.ChannelSeqs(ch, 0, math.MaxUint64)
		v.Last[ch] = st.LastChannelSeq(ch)
	}
	for i := st.FirstIndex(); i <= st.LastIndex(); i += 97 {
		v.SeqOf = append(v.SeqOf, st.SeqOf(i))
	}
	v.Summary, _ = st.PrefixSummary()
	return v
}

func openStore(t *testing.T, dir string, ck bool, commit uint64) (*Store, error) {
	t.Helper()
	l, err := wal.Open(dir, wal.Options{SegmentSize: 64 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := New(l)
	if ck {
		st.UseCheckpoints(DirDisk(dir), 0, false)
	}
	_, _, err = st.Load(commit, true, 1)
	return st, err
}

// filledCheckpointedDir is a store directory with n messages, closed
// cleanly (so it holds a checkpoint).
func filledCheckpointedDir(t *testing.T, n uint64) string {
	t.Helper()
	dir := t.TempDir()
	st, err := openStore(t, dir, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, st, 1, n, 1)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A restart from a checkpoint rebuilds exactly what a full scan does —
// with entries appended after the checkpoint, after retention, and from a
// stale checkpoint (the log truncated and refilled differently) — and
// Load reads only what follows the checkpoint.
func TestCheckpointLoadMatchesScan(t *testing.T) {
	dir := filledCheckpointedDir(t, 5000)
	if _, err := os.Stat(filepath.Join(dir, IndexFile)); err != nil {
		t.Fatalf("no checkpoint after a clean close: %v", err)
	}
	compare := func(what string, commit uint64, wantSkipped bool) *Store {
		t.Helper()
		scan, err := openStore(t, dir, false, commit)
		if err != nil {
			t.Fatal(err)
		}
		want := viewOf(scan)
		scan.log.Close()
		got, err := openStore(t, dir, true, commit)
		if err != nil {
			t.Fatal(err)
		}
		if skipped := got.verify.hi != 0; skipped != wantSkipped {
			t.Fatalf("%s: checkpoint used %v, want %v", what, skipped, wantSkipped)
		}
		if g := viewOf(got); !reflect.DeepEqual(g, want) {
			t.Fatalf("%s: checkpointed load differs from a scan:\n got %+v\nwant %+v", what, g.Summary, want.Summary)
		}
		return got
	}
	st := compare("clean restart", 5000, true)
	// More entries, a new term, a crash (no checkpoint at close): the
	// old checkpoint plus the tail.
	fillStore(t, st, 5001, 3000, 2)
	st.log.Close()
	st = compare("checkpoint plus tail", 8000, true)
	// Retention after the checkpoint.
	st.log.Close()
	l, err := wal.Open(dir, wal.Options{SegmentSize: 64 << 10, RetainBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ApplyRetention(time.Now(), 6000); err != nil || l.FirstIndex() == 1 {
		t.Fatalf("retention: first %d, %v", l.FirstIndex(), err)
	}
	l.Close()
	st = compare("after retention", 8000, true)
	// The log truncated below the checkpoint and refilled in another
	// term: the checkpoint is stale.
	first := st.FirstIndex()
	st.log.Close()
	l, _ = wal.Open(dir, wal.Options{SegmentSize: 64 << 10})
	if err := l.TruncateBack(first + 1000); err != nil {
		t.Fatal(err)
	}
	l.Close()
	st, err = openStore(t, dir, false, first+1000)
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, st, first+1001, 7000-1001, 3)
	st.log.Close() // (no new checkpoint: the old one names index 8000)
	compare("stale checkpoint", 7000+first-1, false).Close()
}

// Damage in the part a checkpoint let Load skip is found by the
// background verification, which deletes the checkpoint, so the next load
// scans and reports it as before.
func TestBackgroundVerifyFindsDamage(t *testing.T) {
	dir := filledCheckpointedDir(t, 5000)
	// Flip a byte in the middle of the first segment.
	segs, _ := filepath.Glob(filepath.Join(dir, "0*"))
	slices.Sort(segs)
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(t, dir, true, 5000)
	if err != nil {
		t.Fatalf("load from checkpoint read the damaged record: %v", err)
	}
	found := make(chan error, 1)
	st.StartVerify(func(err error) { found <- err })
	select {
	case err := <-found:
		if !errors.Is(err, wal.ErrCorrupt) {
			t.Fatalf("verification reported %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("background verification did not report the damaged record")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, IndexFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint still there after damage was found (or rewritten at close): %v", err)
	}
	st, err = openStore(t, dir, true, 5000)
	if !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("load after the damage was found: %v, want the corrupt record", err)
	}
	st.log.Close()
}

// A damaged or truncated checkpoint file is ignored (full scan), never
// trusted and never a reason to fail.
func TestDamagedCheckpointFallsBack(t *testing.T) {
	dir := filledCheckpointedDir(t, 3000)
	path := filepath.Join(dir, IndexFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{good[:len(good)/2], append(slices.Clone(good[:20]), good[21:]...), []byte("junk")} {
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := openStore(t, dir, true, 3000)
		if err != nil {
			t.Fatal(err)
		}
		if st.verify.hi != 0 {
			t.Fatal("a damaged checkpoint was used")
		}
		if n := st.ChannelLen("a"); n != 1000-1 {
			t.Fatalf("channel a: %d messages after the fallback scan", n)
		}
		st.log.Close()
	}
}
