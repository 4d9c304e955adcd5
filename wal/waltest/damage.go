// Package waltest damages a stopped node's log on disk the way failing
// storage does, for tests: one flipped bit inside a record, a flipped bit
// in a record's length prefix, the end of the log cut off, a wiped data
// directory. It knows the segment layout of package wal (files named by
// their first index, frames of a uvarint length then the record) but not
// the record format, so it imports nothing of ordo: tests of wal itself
// can use it too.
package waltest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Segment is one segment file of a log directory.
type Segment struct {
	Path  string
	First uint64 // index of its first record (its name)
}

// Segments lists dir's segment files, oldest first.
func Segments(dir string) ([]Segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Segment
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || len(name) != 20 {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil || first == 0 {
			continue
		}
		out = append(out, Segment{filepath.Join(dir, name), first})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First < out[j].First })
	if len(out) == 0 {
		return nil, fmt.Errorf("waltest: no segment file in %s", dir)
	}
	return out, nil
}

// Frame is one record's place in a segment file.
type Frame struct {
	Index  uint64 // the record's log index
	Offset int    // where its length prefix starts
	Prefix int    // bytes of the length prefix
	Size   int    // bytes of the record after the prefix
}

// Frames parses a segment file's framing (it must be undamaged).
func Frames(seg Segment) ([]Frame, error) {
	data, err := os.ReadFile(seg.Path)
	if err != nil {
		return nil, err
	}
	var out []Frame
	for off, i := 0, seg.First; off < len(data); i++ {
		size, n := binary.Uvarint(data[off:])
		if n <= 0 || uint64(len(data)-off-n) < size {
			return out, fmt.Errorf("waltest: %s: framing breaks at offset %d", seg.Path, off)
		}
		out = append(out, Frame{i, off, n, int(size)})
		off += n + int(size)
	}
	return out, nil
}

// pick returns segment seg of dir (negative: counted from the end, -1 the
// last) and the frame at fraction frac (0..1) of its records.
func pick(dir string, seg int, frac float64) (Segment, Frame, error) {
	segs, err := Segments(dir)
	if err != nil {
		return Segment{}, Frame{}, err
	}
	if seg < 0 {
		seg += len(segs)
	}
	if seg < 0 || seg >= len(segs) {
		return Segment{}, Frame{}, fmt.Errorf("waltest: %s has %d segments, no segment %d", dir, len(segs), seg)
	}
	fs, err := Frames(segs[seg])
	if err != nil {
		return Segment{}, Frame{}, err
	}
	if len(fs) == 0 {
		return Segment{}, Frame{}, fmt.Errorf("waltest: %s is empty", segs[seg].Path)
	}
	k := min(int(frac*float64(len(fs))), len(fs)-1)
	return segs[seg], fs[k], nil
}

// flip xors one byte of a file in place and syncs it.
func flip(path string, at int64, mask byte) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, at); err != nil {
		return err
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, at); err != nil {
		return err
	}
	return f.Sync()
}

// FlipRecordBit flips one bit in the middle of the record at fraction frac
// of segment seg's records (seg < 0 counts from the last segment) and
// returns the record's index. The framing stays intact: only the record's
// checksum can tell.
func FlipRecordBit(dir string, seg int, frac float64) (uint64, error) {
	s, f, err := pick(dir, seg, frac)
	if err != nil {
		return 0, err
	}
	return f.Index, flip(s.Path, int64(f.Offset+f.Prefix+f.Size/2), 0x10)
}

// FlipLengthPrefix flips the continuation bit of the length prefix of the
// record at fraction frac of segment seg's records and returns the
// record's index. The prefix then reads as a different length (swallowing
// the next byte), so the framing of everything after it in the segment
// shifts: the record and all later ones no longer parse where they are.
func FlipLengthPrefix(dir string, seg int, frac float64) (uint64, error) {
	s, f, err := pick(dir, seg, frac)
	if err != nil {
		return 0, err
	}
	return f.Index, flip(s.Path, int64(f.Offset), 0x80)
}

// CutTail cuts n bytes off the end of the log, as a disk that lost its
// last writes: whole segment files at the end go if they are shorter
// than what is left to cut, then the rest comes off the last remaining
// one. It returns the index of the first record it damaged or removed.
// The log must hold more than n bytes.
func CutTail(dir string, n int) (firstLost uint64, err error) {
	segs, err := Segments(dir)
	if err != nil {
		return 0, err
	}
	left := int64(n)
	for k := len(segs) - 1; k >= 0; k-- {
		seg := segs[k]
		fi, err := os.Stat(seg.Path)
		if err != nil {
			return 0, err
		}
		if fi.Size() <= left && k > 0 {
			if err := os.Remove(seg.Path); err != nil {
				return 0, err
			}
			left -= fi.Size()
			continue
		}
		keep := fi.Size() - left
		if keep <= 0 {
			return 0, fmt.Errorf("waltest: the log in %s holds fewer than %d bytes", dir, n)
		}
		fs, err := Frames(seg)
		if err != nil {
			return 0, err
		}
		firstLost = seg.First + uint64(len(fs))
		for _, f := range fs {
			if int64(f.Offset+f.Prefix+f.Size) > keep {
				firstLost = f.Index
				break
			}
		}
		return firstLost, os.Truncate(seg.Path, keep)
	}
	return 0, fmt.Errorf("waltest: no segment in %s", dir)
}

// LastIndex is the index of the last record in dir's log (undamaged).
func LastIndex(dir string) (uint64, error) {
	segs, err := Segments(dir)
	if err != nil {
		return 0, err
	}
	last := segs[len(segs)-1]
	fs, err := Frames(last)
	if err != nil {
		return 0, err
	}
	return last.First + uint64(len(fs)) - 1, nil
}

// Wipe removes the whole data directory, as a replaced disk.
func Wipe(dir string) error { return os.RemoveAll(dir) }
