package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// realSegment is the segment file of a log that held records from..to,
// written by this package as a node writes it.
func realSegment(t testing.TB, from, to uint64) []byte {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true})
	if from > 1 {
		if err := l.Reset(from); err != nil {
			t.Fatal(err)
		}
	}
	appendRange(t, l, from, to, 7)
	mustClose(t, l)
	b, err := os.ReadFile(filepath.Join(dir, segmentName(from)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fuzzDir is a fresh directory for one input, in memory where there is a
// tmpfs (/dev/shm): recovery fsyncs files and directories several times,
// which on a disk would make the fuzzer run a few inputs a second.
func fuzzDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "ordo-walfuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FuzzRecoverSegment writes arbitrary bytes as the segment file of a log
// starting at an arbitrary index and opens it, as a node does after a
// crash. Open must not panic and must either fail with an error or
// recover a usable log: every record in its range reads back or is
// reported corrupt (never garbage), recovery is a fixed point (reopening
// repairs nothing more and keeps the range), and the log takes appends
// after what it kept.
func FuzzRecoverSegment(f *testing.F) {
	seg := realSegment(f, 1, 40)
	f.Add(seg, uint16(0))
	f.Add(seg[:len(seg)-3], uint16(0)) // torn tail
	f.Add(seg[:len(seg)/2], uint16(0)) // cut mid-record
	f.Add(realSegment(f, 1000, 1010), uint16(999))
	flipped := bytes.Clone(seg)
	flipped[len(flipped)/3] ^= 0x10 // damage in the middle
	f.Add(flipped, uint16(0))
	f.Add(append(bytes.Clone(seg), make([]byte, 64)...), uint16(0)) // zeroed page after the tail
	prefix := bytes.Clone(seg)
	prefix[frameStart(prefix, 20)] ^= 0x80 // a damaged length prefix in the middle
	f.Add(prefix, uint16(0))
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(0)) // a huge length prefix
	f.Fuzz(func(t *testing.T, data []byte, firstOff uint16) {
		first := uint64(firstOff) + 1
		// A hang is a finding too: fail with the input rather than stall.
		watchdog := time.AfterFunc(10*time.Second, func() { panic("recovery of this segment took over 10s") })
		defer watchdog.Stop()
		dir := fuzzDir(t)
		if err := os.WriteFile(filepath.Join(dir, segmentName(first)), data, 0o640); err != nil {
			t.Fatal(err)
		}
		opts := Options{NoSync: true, SegmentSize: 4096}
		l, err := Open(dir, opts)
		if err != nil {
			return // refusing to open is an answer; only a panic or garbage is not
		}
		lo, hi := l.FirstIndex(), l.LastIndex()
		if hi+1 < lo || hi-lo+1 > uint64(len(data)) {
			t.Fatalf("recovered range [%d,%d] from %d bytes", lo, hi, len(data))
		}
		for i := lo; i <= hi && i >= lo; i++ {
			if _, err := l.Read(i); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read(%d) in [%d,%d]: %v (want the record or ErrCorrupt)", i, lo, hi, err)
			}
		}
		if err := l.Verify(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Verify: %v", err)
		}
		mustClose(t, l)

		l = mustOpen(t, dir, opts)
		if rep := l.Repaired(); rep.DroppedBytes != 0 {
			t.Fatalf("second recovery cut more: %v", rep)
		}
		if rs := l.Reframed(); len(rs) != 0 {
			t.Fatalf("second recovery re-framed again: %v", rs)
		}
		if l.FirstIndex() != lo || l.LastIndex() != hi {
			t.Fatalf("range after reopening [%d,%d], was [%d,%d]", l.FirstIndex(), l.LastIndex(), lo, hi)
		}
		if err := l.Append(hi+1, [][]byte{[]byte("after recovery")}); err != nil {
			t.Fatalf("Append(%d) after recovery: %v", hi+1, err)
		}
		mustClose(t, l)
		l = mustOpen(t, dir, opts)
		defer l.Close()
		if got, err := l.Read(hi + 1); err != nil || string(got) != "after recovery" {
			t.Fatalf("record appended after recovery reads back %q, %v", got, err)
		}
	})
}

// frameStart is the offset of the k-th frame (from 0) of a segment.
func frameStart(seg []byte, k int) int {
	off := 0
	for ; k > 0; k-- {
		size, n := binary.Uvarint(seg[off:])
		off += n + int(size)
	}
	return off
}
