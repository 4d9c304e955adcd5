package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// payload is the test record for index i: its length varies with i so that
// segment boundaries fall at irregular places.
func payload(i uint64) []byte {
	return []byte(fmt.Sprintf("msg-%d-%s", i, bytes.Repeat([]byte{'x'}, int(i%29))))
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendRange appends payload(i) for i in [from, to], in batches of batch.
func appendRange(t testing.TB, l *Log, from, to uint64, batch int) {
	t.Helper()
	for i := from; i <= to; {
		var recs [][]byte
		for j := 0; j < batch && i+uint64(j) <= to; j++ {
			recs = append(recs, payload(i+uint64(j)))
		}
		if err := l.Append(i, recs); err != nil {
			t.Fatalf("Append(%d, %d records): %v", i, len(recs), err)
		}
		i += uint64(len(recs))
	}
}

// checkRange asserts that the log holds exactly payload(i) for i in
// [first, last], via Read and via Scan.
func checkRange(t testing.TB, l *Log, first, last uint64) {
	t.Helper()
	if got := l.FirstIndex(); got != first {
		t.Fatalf("FirstIndex = %d, want %d", got, first)
	}
	if got := l.LastIndex(); got != last {
		t.Fatalf("LastIndex = %d, want %d", got, last)
	}
	for i := first; i <= last; i++ {
		got, err := l.Read(i)
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if !bytes.Equal(got, payload(i)) {
			t.Fatalf("Read(%d) = %q, want %q", i, got, payload(i))
		}
	}
	next := first
	err := l.Scan(first, math.MaxUint64, func(i uint64, rec []byte) error {
		if i != next || !bytes.Equal(rec, payload(i)) {
			return fmt.Errorf("Scan gave %d:%q, want %d:%q", i, rec, next, payload(next))
		}
		next++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != last+1 {
		t.Fatalf("Scan stopped before %d, want %d", next, last+1)
	}
	for _, i := range []uint64{first - 1, last + 1} {
		if _, err := l.Read(i); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Read(%d) outside [%d, %d]: err = %v, want ErrNotFound", i, first, last, err)
		}
	}
	checkMirror(t, l)
}

// checkMirror asserts that the segment mirror (which decides when to fsync
// the directory, and Size) matches the files tidwall really has.
func checkMirror(t testing.TB, l *Log) {
	t.Helper()
	l.mu.Lock()
	mirror := slices.Clone(l.segs)
	l.mu.Unlock()
	disk, err := statSegments(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mirror, disk) {
		t.Fatalf("segment mirror %v, files on disk %v", mirror, disk)
	}
	var total int64
	for _, s := range disk {
		total += s.size
	}
	if got := l.Size(); got != total {
		t.Fatalf("Size = %d, files hold %d", got, total)
	}
}

// segNames lists the segment file names in dir, oldest first.
func segNames(t testing.TB, dir string) []string {
	t.Helper()
	files, err := listSegmentFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.name+f.kind)
	}
	return names
}

// frames returns the end offset of every complete tidwall frame in a
// segment file (parsed independently of the package's own scanner).
func frames(t testing.TB, path string) (data []byte, ends []int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); {
		size, n := binary.Uvarint(data[off:])
		if n <= 0 || off+n+int(size) > len(data) {
			break
		}
		off += n + int(size)
		ends = append(ends, off)
	}
	return data, ends
}

func lastSegPath(t testing.TB, dir string) string {
	t.Helper()
	names := segNames(t, dir)
	if len(names) == 0 {
		t.Fatal("no segment files")
	}
	return filepath.Join(dir, names[len(names)-1])
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func asCorrupt(t testing.TB, err error) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want a *CorruptError", err)
	}
	return ce
}
