package wal

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

var (
	metaSeed  = flag.Int64("wal.seed", 0, "run TestMetamorphic with only this seed")
	metaSeeds = flag.Int("wal.seeds", 6, "number of seeds TestMetamorphic runs")
	metaOps   = flag.Int("wal.ops", 300, "operations per seed in TestMetamorphic")
)

// model is what the log should hold: records[i] is at index first+i.
type model struct {
	first   uint64
	records [][]byte
}

func (m *model) last() uint64 { return m.first + uint64(len(m.records)) - 1 }

func (m *model) truncateBack(index uint64) { m.records = m.records[:index+1-m.first] }

func (m *model) truncateFront(index uint64) {
	m.records = m.records[index-m.first:]
	m.first = index
}

// TestMetamorphic runs seeded random operation sequences — appends,
// truncations, resets, retention, reopen and crashes that tear the last
// segment — against an in-memory model. A failure names its seed; replay it
// with -wal.seed=N.
func TestMetamorphic(t *testing.T) {
	seeds := []int64{*metaSeed}
	if *metaSeed == 0 {
		seeds = nil
		for s := 1; s <= *metaSeeds; s++ {
			seeds = append(seeds, int64(s))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runMetamorphic(t, seed, *metaOps) })
	}
}

func runMetamorphic(t *testing.T, seed int64, ops int) {
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	opts := Options{SegmentSize: 100 + rng.Intn(900), NoSync: rng.Intn(3) == 0}
	if rng.Intn(2) == 0 {
		opts.RetainBytes = int64(500 + rng.Intn(3000))
	}
	t.Logf("seed %d: %+v", seed, opts)
	l := mustOpen(t, dir, opts)
	defer func() { l.Close() }()
	m := &model{first: 1}

	randPayload := func() []byte {
		b := make([]byte, rng.Intn(80))
		rng.Read(b)
		return b
	}
	between := func(lo, hi uint64) uint64 { return lo + uint64(rng.Int63n(int64(hi-lo+1))) }
	reopen := func() {
		mustClose(t, l)
		l = mustOpen(t, dir, opts)
	}

	for op := 0; op < ops; op++ {
		var what string
		switch p := rng.Intn(100); {
		case p < 45:
			n := 1 + rng.Intn(16)
			recs := make([][]byte, n)
			for i := range recs {
				recs[i] = randPayload()
			}
			what = fmt.Sprintf("Append(%d, %d records)", m.last()+1, n)
			if err := l.Append(m.last()+1, recs); err != nil {
				t.Fatalf("op %d %s: %v", op, what, err)
			}
			m.records = append(m.records, recs...)
		case p < 53:
			index := between(m.first-1, m.last())
			what = fmt.Sprintf("TruncateBack(%d)", index)
			if err := l.TruncateBack(index); err != nil {
				t.Fatalf("op %d %s: %v", op, what, err)
			}
			m.truncateBack(index)
		case p < 61:
			index := between(m.first, m.last()+1)
			what = fmt.Sprintf("TruncateFront(%d)", index)
			if err := l.TruncateFront(index); err != nil {
				t.Fatalf("op %d %s: %v", op, what, err)
			}
			m.truncateFront(index)
		case p < 65:
			lo := uint64(1)
			if m.first > 20 {
				lo = m.first - 20
			}
			next := between(lo, m.last()+20)
			what = fmt.Sprintf("Reset(%d)", next)
			if err := l.Reset(next); err != nil {
				t.Fatalf("op %d %s: %v", op, what, err)
			}
			m.first, m.records = next, nil
		case p < 70:
			keepFrom := between(m.first, m.last()+1)
			what = fmt.Sprintf("ApplyRetention(keepFrom %d)", keepFrom)
			got, err := l.ApplyRetention(time.Now(), keepFrom)
			if err != nil || got < m.first || got > max(m.first, keepFrom) {
				t.Fatalf("op %d %s = %d, %v; first was %d", op, what, got, err, m.first)
			}
			if got != m.first && segNames(t, dir)[0] != segmentName(got) {
				t.Fatalf("op %d %s = %d: not a segment boundary (%v)", op, what, got, segNames(t, dir))
			}
			m.truncateFront(got)
		case p < 78:
			what = "reopen"
			reopen()
			if r := l.Repaired(); r.DroppedBytes != 0 {
				t.Fatalf("op %d: clean reopen repaired %v", op, r)
			}
		case p < 88:
			what = crash(t, rng, l, m)
			l = mustOpen(t, dir, opts)
		case p < 90:
			what = "Verify"
			if err := l.Verify(); err != nil {
				t.Fatalf("op %d: Verify: %v", op, err)
			}
		default:
			what = "Sync"
			if err := l.Sync(); err != nil {
				t.Fatalf("op %d: Sync: %v", op, err)
			}
		}
		checkModel(t, l, m, rng, fmt.Sprintf("op %d %s", op, what))
	}
	reopen()
	checkModel(t, l, m, rng, "final reopen")
}

// crash closes the log and damages the end of the last segment file the way
// a crash during a write could: cut at a random offset, or followed by zeros
// or garbage. It updates the model to what Open must recover.
func crash(t *testing.T, rng *rand.Rand, l *Log, m *model) string {
	mustClose(t, l)
	path := lastSegPath(t, l.dir)
	segFirst, _ := strconv.ParseUint(filepath.Base(path), 10, 64)
	data, ends := frames(t, path)
	if rng.Intn(3) > 0 || len(data) == 0 {
		cut := rng.Intn(len(data) + 1)
		if err := os.Truncate(path, int64(cut)); err != nil {
			t.Fatal(err)
		}
		k := 0
		for k < len(ends) && ends[k] <= cut {
			k++
		}
		if last := segFirst + uint64(k) - 1; last < m.last() {
			m.truncateBack(last)
		}
		return fmt.Sprintf("crash cutting %s at %d of %d", filepath.Base(path), cut, len(data))
	}
	junk := make([]byte, 1+rng.Intn(40))
	if rng.Intn(2) == 0 {
		rng.Read(junk)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(junk)
	f.Close()
	return fmt.Sprintf("crash appending %d junk bytes to %s", len(junk), filepath.Base(path))
}

func checkModel(t *testing.T, l *Log, m *model, rng *rand.Rand, after string) {
	t.Helper()
	if l.FirstIndex() != m.first || l.LastIndex() != m.last() {
		t.Fatalf("after %s: log [%d, %d], model [%d, %d]", after, l.FirstIndex(), l.LastIndex(), m.first, m.last())
	}
	checkMirror(t, l)
	for k := 0; k < 3 && len(m.records) > 0; k++ {
		i := m.first + uint64(rng.Intn(len(m.records)))
		if got, err := l.Read(i); err != nil || !bytes.Equal(got, m.records[i-m.first]) {
			t.Fatalf("after %s: Read(%d) = %x, %v; want %x", after, i, got, err, m.records[i-m.first])
		}
	}
	n := 0
	err := l.Scan(m.first, math.MaxUint64, func(i uint64, rec []byte) error {
		if want := m.records[i-m.first]; !bytes.Equal(rec, want) {
			return fmt.Errorf("Scan %d = %x, want %x", i, rec, want)
		}
		n++
		return nil
	})
	if err != nil || n != len(m.records) {
		t.Fatalf("after %s: Scan read %d of %d: %v", after, n, len(m.records), err)
	}
}
