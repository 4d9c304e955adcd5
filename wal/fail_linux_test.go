package wal

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// A real write failure, not an injected one: with RLIMIT_FSIZE lowered the
// kernel fails the write part-way (EFBIG), leaving a torn record on disk.
// The log must fail stickily, and Close+Open must repair the torn tail.
func TestRealWriteFailureIsStickyAndRepaired(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	appendRange(t, l, 1, 20, 5)
	fi, err := os.Stat(lastSegPath(t, dir))
	if err != nil {
		t.Fatal(err)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	signal.Ignore(syscall.SIGXFSZ) // else the kernel's SIGXFSZ kills the test
	defer signal.Reset(syscall.SIGXFSZ)
	lim := old
	lim.Cur = uint64(fi.Size()) + 100
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatalf("lowering RLIMIT_FSIZE (always allowed): %v", err)
	}
	err = l.Append(21, [][]byte{bytes.Repeat([]byte{'a'}, 1000)})
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Append over the file size limit: %v, want ErrFailed wrapping EFBIG", err)
	}
	if err := l.Append(21, [][]byte{payload(21)}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after a failed write: %v, want ErrFailed", err)
	}
	l.Close()

	l = mustOpen(t, dir, Options{})
	defer l.Close()
	if r := l.Repaired(); r.DroppedBytes != 100 {
		t.Fatalf("report %+v, want the 100 torn bytes cut", r)
	}
	checkRange(t, l, 1, 20)
	appendRange(t, l, 21, 30, 5)
	checkRange(t, l, 1, 30)
}
