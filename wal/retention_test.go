package wal

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func segFirsts(t *testing.T, dir string) []uint64 {
	var out []uint64
	for _, n := range segNames(t, dir) {
		f, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			t.Fatalf("unexpected file %s", n)
		}
		out = append(out, f)
	}
	return out
}

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 200, RetainBytes: 1000}
	l := mustOpen(t, dir, opts)
	appendRange(t, l, 1, 300, 5)

	// The floor: nothing at or above keepFrom goes.
	firsts := segFirsts(t, dir)
	got, err := l.ApplyRetention(time.Now(), 0)
	if err != nil || got != 1 {
		t.Fatalf("ApplyRetention(keepFrom 0) = %d, %v; want nothing dropped", got, err)
	}
	keepFrom := firsts[5] + 1 // inside segment 5: segments 0..4 may go
	got, err = l.ApplyRetention(time.Now(), keepFrom)
	if err != nil || got != firsts[5] {
		t.Fatalf("ApplyRetention(keepFrom %d) = %d, %v; want %d", keepFrom, got, err, firsts[5])
	}
	checkRange(t, l, firsts[5], 300)

	// Without a binding floor: drop oldest segments until <= RetainBytes.
	segs, _ := statSegments(dir)
	var total int64
	for _, s := range segs {
		total += s.size
	}
	k := 0
	for ; k < len(segs)-1 && total > opts.RetainBytes; k++ {
		total -= segs[k].size
	}
	got, err = l.ApplyRetention(time.Now(), l.LastIndex()+1)
	if err != nil || got != segs[k].first {
		t.Fatalf("ApplyRetention = %d, %v; want %d", got, err, segs[k].first)
	}
	if l.Size() > opts.RetainBytes {
		t.Fatalf("Size %d > RetainBytes %d", l.Size(), opts.RetainBytes)
	}
	checkRange(t, l, got, 300)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	checkRange(t, l, got, 300)
	mustClose(t, l)
}

func TestRetentionNeverDropsLastSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentSize: 200, RetainBytes: 1})
	defer l.Close()
	appendRange(t, l, 1, 100, 3)
	last := segFirsts(t, dir)
	got, err := l.ApplyRetention(time.Now(), math.MaxUint64)
	if err != nil || got != last[len(last)-1] {
		t.Fatalf("ApplyRetention = %d, %v; want %d", got, err, last[len(last)-1])
	}
	if n := len(segNames(t, dir)); n != 1 {
		t.Fatalf("%d segments left, want 1", n)
	}
	checkRange(t, l, got, 100)
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 200, RetainAge: time.Hour}
	l := mustOpen(t, dir, opts)
	appendRange(t, l, 1, 100, 3)
	now := time.Now()
	firsts := segFirsts(t, dir)
	for i, f := range firsts {
		mt := now.Add(-time.Minute)
		if i < 3 {
			mt = now.Add(-2 * time.Hour)
		}
		if err := os.Chtimes(filepath.Join(dir, segmentName(f)), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// Floor inside segment 2: only segments 0 and 1 may go.
	got, err := l.ApplyRetention(now, firsts[2])
	if err != nil || got != firsts[2] {
		t.Fatalf("ApplyRetention(floor %d) = %d, %v; want %d", firsts[2], got, err, firsts[2])
	}
	// tidwall's TruncateFront rewrote segment 2 although the cut was at its
	// start; its age must survive that for it to go now.
	got, err = l.ApplyRetention(now, l.LastIndex()+1)
	if err != nil || got != firsts[3] {
		t.Fatalf("ApplyRetention = %d, %v; want %d", got, err, firsts[3])
	}
	checkRange(t, l, firsts[3], 100)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	checkRange(t, l, firsts[3], 100)
	if got, err := l.ApplyRetention(now, l.LastIndex()+1); err != nil || got != firsts[3] {
		t.Fatalf("second ApplyRetention = %d, %v; want nothing more dropped", got, err)
	}
	// Later, everything but the last segment is old enough.
	got, err = l.ApplyRetention(now.Add(2*time.Hour), l.LastIndex()+1)
	if last := segFirsts(t, dir); err != nil || len(last) != 1 || got != last[0] {
		t.Fatalf("ApplyRetention later = %d, %v; files %v", got, err, last)
	}
	mustClose(t, l)
}

func TestRetentionOffByDefault(t *testing.T) {
	l := mustOpen(t, t.TempDir(), tiny)
	defer l.Close()
	appendRange(t, l, 1, 100, 3)
	if got, err := l.ApplyRetention(time.Now().Add(1000*time.Hour), math.MaxUint64); err != nil || got != 1 {
		t.Fatalf("ApplyRetention with no limits = %d, %v", got, err)
	}
}

// Segments (reported as a metric) counts the segment files through
// appends, retention and a reopen.
func TestSegmentsCountsFiles(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 200, RetainBytes: 1000}
	l := mustOpen(t, dir, opts)
	check := func(when string) {
		t.Helper()
		if got, want := l.Segments(), len(segNames(t, dir)); got != want || want < 1 {
			t.Fatalf("%s: Segments() = %d, %d files", when, got, want)
		}
	}
	check("empty")
	appendRange(t, l, 1, 300, 5)
	check("after appends")
	if _, err := l.ApplyRetention(time.Now(), l.LastIndex()+1); err != nil {
		t.Fatal(err)
	}
	check("after retention")
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer l.Close()
	check("after reopen")
}
