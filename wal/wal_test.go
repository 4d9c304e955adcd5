package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// tiny segments: a few records each, so every test crosses many boundaries.
var tiny = Options{SegmentSize: 200}

func TestEmptyLogStartsAtOne(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{})
	defer l.Close()
	checkRange(t, l, 1, 0)
	if err := l.Append(2, [][]byte{[]byte("x")}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Append(2) on an empty log: %v, want ErrOutOfOrder", err)
	}
	if err := l.Scan(2, 5, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Scan(2..) on an empty log: %v, want ErrNotFound", err)
	}
	if err := l.Append(1, nil); err != nil {
		t.Fatalf("empty Append: %v", err)
	}
}

func TestRoundTripAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 300, 7)
	checkRange(t, l, 1, 300)
	if n := len(segNames(t, dir)); n < 10 {
		t.Fatalf("%d segment files, want many with SegmentSize 200", n)
	}
	if err := l.Append(300, [][]byte{[]byte("dup")}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Append(300) after 300: %v, want ErrOutOfOrder", err)
	}
	// A sub-range scan, and a scan stopped by its callback.
	var got []uint64
	stop := errors.New("stop")
	err := l.Scan(40, 50, func(i uint64, _ []byte) error {
		got = append(got, i)
		if i == 45 {
			return stop
		}
		return nil
	})
	if err != stop || !slices.Equal(got, []uint64{40, 41, 42, 43, 44, 45}) {
		t.Fatalf("Scan(40, 50) stopped at 45: got %v, err %v", got, err)
	}
	mustClose(t, l)
	if err := l.Append(301, [][]byte{[]byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}

	l = mustOpen(t, dir, tiny)
	if r := l.Repaired(); r.DroppedBytes != 0 {
		t.Fatalf("clean reopen repaired %v", r)
	}
	checkRange(t, l, 1, 300)
	appendRange(t, l, 301, 400, 64)
	checkRange(t, l, 1, 400)
	mustClose(t, l)
}

func TestLargeScanCrossesChunks(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{SegmentSize: 4096})
	defer l.Close()
	appendRange(t, l, 1, 3*chunkRecords+5, 100)
	checkRange(t, l, 1, 3*chunkRecords+5)
	// fn may call the log: the lock is not held while it runs.
	n := 0
	err := l.Scan(1, 10, func(i uint64, _ []byte) error {
		n++
		return l.Append(l.LastIndex()+1, [][]byte{payload(l.LastIndex() + 1)})
	})
	if err != nil || n != 10 {
		t.Fatalf("Scan appending from fn: n=%d err=%v", n, err)
	}
}

func TestResetStartsAtN(t *testing.T) {
	cases := []struct {
		name string
		fill uint64 // records 1..fill appended first
		next uint64
	}{
		{"fresh log", 0, 1000},
		{"above the end", 50, 1000},
		{"right after the end", 50, 51},
		{"inside the log", 50, 20},
		{"at the first index", 50, 1},
		{"below the first index", 50, 3}, // after TruncateFront(10)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, tiny)
			appendRange(t, l, 1, tc.fill, 5)
			if tc.name == "below the first index" {
				if err := l.TruncateFront(10); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Reset(tc.next); err != nil {
				t.Fatalf("Reset(%d): %v", tc.next, err)
			}
			checkRange(t, l, tc.next, tc.next-1)
			if want := []string{segmentName(tc.next)}; !slices.Equal(segNames(t, dir), want) {
				t.Fatalf("files after Reset: %v, want %v", segNames(t, dir), want)
			}
			if err := l.Append(tc.next-1, [][]byte{[]byte("x")}); !errors.Is(err, ErrOutOfOrder) {
				t.Fatalf("Append(next-1): %v, want ErrOutOfOrder", err)
			}
			appendRange(t, l, tc.next, tc.next+1, 1)
			checkRange(t, l, tc.next, tc.next+1)
			mustClose(t, l)
			l = mustOpen(t, dir, tiny)
			checkRange(t, l, tc.next, tc.next+1)
			mustClose(t, l)
		})
	}
}

// Reset is made crash-safe by an empty START file that tidwall's Open
// completes: a crash right after creating it must still give the reset log.
func TestResetMarkerCompletesOnOpen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 60, 4)
	mustClose(t, l)
	if err := createEmpty(filepath.Join(dir, segmentName(500)+".START")); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, tiny)
	checkRange(t, l, 500, 499)
	mustClose(t, l)
}

// A crash inside TruncateBack leaves NAME.END next to the old segments;
// tidwall's Open finishes the truncation, and the END file is the segment
// whose tail gets repaired.
func TestPendingEndFileCompletesOnOpen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 60, 4)
	mustClose(t, l)
	firsts := segFirsts(t, dir)
	f := firsts[2] // keep records f..f+1 of segment 2 in the END file
	_, ends := frames(t, filepath.Join(dir, segmentName(f)))
	b, err := os.ReadFile(filepath.Join(dir, segmentName(f)))
	if err != nil {
		t.Fatal(err)
	}
	end := append(b[:ends[1]:ends[1]], 0, 0, 0) // plus a torn tail
	if err := os.WriteFile(filepath.Join(dir, segmentName(f)+".END"), end, 0o640); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, tiny)
	if r := l.Repaired(); r.DroppedBytes != 3 {
		t.Fatalf("report %+v, want the END file's 3 torn bytes cut", r)
	}
	checkRange(t, l, 1, f+1)
	appendRange(t, l, f+2, 70, 4)
	checkRange(t, l, 1, 70)
	mustClose(t, l)
}

func TestTruncateBackThenAppend(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 100, 9)
	if err := l.TruncateBack(101); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TruncateBack(101): %v, want ErrNotFound", err)
	}
	if err := l.TruncateBack(42); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 42)
	if err := l.Append(44, [][]byte{[]byte("x")}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Append(44) after TruncateBack(42): %v", err)
	}
	appendRange(t, l, 43, 80, 3)
	checkRange(t, l, 1, 80)
	mustClose(t, l)
	l = mustOpen(t, dir, tiny)
	checkRange(t, l, 1, 80)
	// Emptying it keeps the first index as the next one.
	if err := l.TruncateBack(0); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 0)
	appendRange(t, l, 1, 3, 3)
	checkRange(t, l, 1, 3)
	mustClose(t, l)
}

func TestTruncateFrontPersists(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, tiny)
	appendRange(t, l, 1, 100, 9)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, name := range segNames(t, dir) {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TruncateFront(0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TruncateFront(0): %v, want ErrNotFound", err)
	}
	if err := l.TruncateFront(37); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 37, 100)
	// tidwall rewrote the segment now starting at 37; its age must not reset.
	fi, err := os.Stat(filepath.Join(dir, segmentName(37)))
	if err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("rewritten segment mtime %v (err %v), want %v", fi.ModTime(), err, old)
	}
	mustClose(t, l)
	l = mustOpen(t, dir, tiny)
	checkRange(t, l, 37, 100)
	// Truncating everything keeps the next index.
	if err := l.TruncateFront(101); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 101, 100)
	mustClose(t, l)
	l = mustOpen(t, dir, tiny)
	checkRange(t, l, 101, 100)
	appendRange(t, l, 101, 105, 2)
	checkRange(t, l, 101, 105)
	mustClose(t, l)
}

func TestStickyFailure(t *testing.T) {
	for _, op := range []string{"append", "sync", "dirsync", "truncate"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: 200, NoSync: op == "sync"}
			l := mustOpen(t, dir, opts)
			appendRange(t, l, 1, 10, 10)
			cause := errors.New("injected EIO")
			l.hook = func(o string) error {
				if o == op {
					return cause
				}
				return nil
			}
			var err error
			switch op {
			case "append":
				err = l.Append(11, [][]byte{payload(11)})
			case "sync":
				err = l.Sync()
			case "dirsync": // an append that starts a segment syncs the directory
				err = l.Append(11, [][]byte{bytes.Repeat([]byte{'y'}, 300)})
			case "truncate":
				err = l.TruncateBack(5)
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, cause) {
				t.Fatalf("%s: %v, want ErrFailed wrapping the cause", op, err)
			}
			l.hook = nil // the failure sticks although the fault is gone
			checks := map[string]error{
				"Append":         l.Append(l.LastIndex()+1, [][]byte{[]byte("z")}),
				"Sync":           l.Sync(),
				"Read":           func() error { _, err := l.Read(1); return err }(),
				"TruncateFront":  l.TruncateFront(2),
				"Reset":          l.Reset(100),
				"ApplyRetention": func() error { _, err := l.ApplyRetention(time.Now(), 1); return err }(),
			}
			for name, err := range checks {
				if !errors.Is(err, ErrFailed) || !errors.Is(err, cause) {
					t.Errorf("%s after failure: %v, want ErrFailed wrapping the cause", name, err)
				}
			}
			l.Close()
			// Reopening recovers: everything before the failure is there.
			l = mustOpen(t, dir, opts)
			if op == "dirsync" { // the append itself was written and fsynced
				if err := l.TruncateBack(10); err != nil {
					t.Fatal(err)
				}
			}
			checkRange(t, l, 1, 10)
			mustClose(t, l)
		})
	}
}

// The directory is fsynced exactly when a segment file was created or
// removed, and with NoSync only by Sync.
func TestDirectorySync(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSync=%v", noSync), func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{SegmentSize: 1000, NoSync: noSync})
			defer l.Close()
			syncs := 0
			l.hook = func(op string) error {
				if op == "dirsync" {
					syncs++
				}
				return nil
			}
			appendRange(t, l, 1, 5, 5) // ~150 bytes: same segment
			if syncs != 0 {
				t.Fatalf("append within a segment synced the directory %d times", syncs)
			}
			before := len(segNames(t, dir))
			appendRange(t, l, 6, 60, 55) // crosses 1000 bytes
			if len(segNames(t, dir)) == before {
				t.Fatal("expected a new segment file")
			}
			want := 1
			if noSync {
				want = 0
			}
			if syncs != want {
				t.Fatalf("append that created a segment: %d directory syncs, want %d", syncs, want)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if syncs != 1 {
				t.Fatalf("after Sync: %d directory syncs, want 1", syncs)
			}
			if err := l.TruncateFront(30); err != nil {
				t.Fatal(err)
			}
			if syncs != 2 {
				t.Fatalf("after TruncateFront: %d directory syncs, want 2", syncs)
			}
			checkRange(t, l, 30, 60)
		})
	}
}

// Many readers of old segments (upstream issue #34) while appending,
// scanning and truncating; run with -race.
func TestConcurrentReadAppend(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{SegmentSize: 300, NoSync: true})
	defer l.Close()
	appendRange(t, l, 1, 200, 10)
	const appends = 300
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	done := make(chan struct{})
	wg.Add(1)
	go func() { // writer
		defer wg.Done()
		defer close(done)
		for k := 0; k < appends; k++ {
			next := l.LastIndex() + 1
			if err := l.Append(next, [][]byte{payload(next), payload(next + 1)}); err != nil {
				errs <- err
				return
			}
			if k%50 == 49 {
				if err := l.TruncateFront(l.FirstIndex() + 20); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for {
				select {
				case <-done:
					return
				default:
				}
				first, last := l.FirstIndex(), l.LastIndex()
				i := first + uint64(rng.Int63n(int64(last-first+1)))
				if seed%2 == 0 {
					got, err := l.Read(i)
					if err == nil && !bytes.Equal(got, payload(i)) {
						errs <- fmt.Errorf("Read(%d) = %q", i, got)
						return
					}
					if err != nil && !errors.Is(err, ErrNotFound) { // truncated meanwhile
						errs <- err
						return
					}
					continue
				}
				err := l.Scan(i, i+40, func(j uint64, rec []byte) error {
					if !bytes.Equal(rec, payload(j)) {
						return fmt.Errorf("Scan %d = %q", j, rec)
					}
					return nil
				})
				if err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	checkMirror(t, l)
}

func TestRecordChecksumCoversIndex(t *testing.T) {
	rec := appendRecord(nil, 7, []byte("hello"))
	if p, err := decodeRecord(7, rec); err != nil || string(p) != "hello" {
		t.Fatalf("decode at 7: %q, %v", p, err)
	}
	if _, err := decodeRecord(8, rec); asCorrupt(t, err).Index != 8 {
		t.Fatal("record decoded at the wrong index")
	}
	for i := range rec {
		bad := slices.Clone(rec)
		bad[i] ^= 0x10
		if _, err := decodeRecord(7, bad); err == nil {
			t.Fatalf("flipped bit in byte %d not detected", i)
		}
	}
	if _, err := decodeRecord(1, make([]byte, 16)); err == nil {
		t.Fatal("zeroed record accepted")
	}
	// A future version with a valid checksum is refused, not misread.
	v2 := slices.Clone(rec)
	v2[4] = 2
	binary.LittleEndian.PutUint32(v2, checksum(7, v2[4:]))
	if _, err := decodeRecord(7, v2); err == nil {
		t.Fatal("record of unknown version accepted")
	}
}
