package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Inspection is what Inspect found in a log directory.
type Inspection struct {
	// FirstIndex is the first segment's first index; LastIndex the index
	// of the last record that could be framed (FirstIndex-1 if none).
	FirstIndex, LastIndex uint64
	Segments              int // segment files read
	// Unreadable lists byte ranges whose framing is damaged: the records
	// in them cannot be told apart, so neither their number nor their
	// content is known.
	Unreadable []Unreadable
	// TornTail is what Open would cut from the end of the last segment (a
	// write cut short by a crash, or damaged records after the last valid
	// one); zero if nothing. Inspect itself cuts nothing.
	TornTail RepairReport
	// TornFrom is the first index TornTail covers (0 if none).
	TornFrom uint64
	// Pending describes an interrupted truncation that Open would finish
	// ("" if none); Inspect shows the log as Open would leave it.
	Pending string
	// Reframed lists damaged length prefixes in the middle of the log that
	// Open would re-frame (see reframe.go); Inspect reads the records as
	// re-framed (in memory: the files are not changed).
	Reframed []Reframe
}

// Unreadable is a damaged stretch of one segment file.
type Unreadable struct {
	Segment string // file name
	Offset  int64  // where framing fails
	Bytes   int64  // from Offset to the end of the file
	// From..To are the indexes the stretch should hold; To is 0 when
	// unknown (the last segment, whose length only its records tell).
	From, To uint64
	Reason   string
}

func (u Unreadable) String() string {
	idx := fmt.Sprintf("indexes %d..%d", u.From, u.To)
	if u.To == 0 {
		idx = fmt.Sprintf("indexes from %d on", u.From)
	}
	return fmt.Sprintf("segment %s: %d bytes at offset %d unreadable (%s): %s", u.Segment, u.Bytes, u.Offset, idx, u.Reason)
}

// Inspect reads the log in dir without changing anything in it: it cuts
// no torn tail, finishes no interrupted truncation and creates no file,
// so it is safe for looking at a stopped node's data (`ordo log`) before
// deciding what to do with it. (A live log is read through Open; Inspect
// takes no lock — the caller does.)
//
// fn is called for every record in index order: with its verified
// payload (valid only during the call), or with a *CorruptError when the
// record fails its checksum. Unlike Scan, Inspect goes on after damage,
// so one bad record hides nothing after it. Framing damage (a broken
// length prefix) makes the rest of a segment unreadable; that is reported
// in Inspection.Unreadable, and reading resumes at the next segment —
// unless, as Open does, the next intact record can be found by its
// checksum: then the records are read as Open would re-frame them
// (Inspection.Reframed) and each damaged one is passed to fn. An error
// from fn stops Inspect and is returned.
func Inspect(dir string, fn func(index uint64, payload []byte, bad *CorruptError) error) (Inspection, error) {
	var in Inspection
	if fi, err := os.Stat(dir); err != nil {
		return in, err
	} else if !fi.IsDir() {
		return in, fmt.Errorf("%s is not a directory", dir)
	}
	files, err := listSegmentFiles(dir)
	if err != nil {
		return in, err
	}
	if files, in.Pending, err = asOpened(files); err != nil {
		return in, err
	}
	if len(files) == 0 {
		in.FirstIndex = 1
		return in, nil
	}
	in.FirstIndex, in.LastIndex, in.Segments = files[0].index, files[0].index-1, len(files)
	for k, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return in, err
		}
		tail := k == len(files)-1
		limit := uint64(math.MaxUint64) // the next segment's first index
		known := uint64(0)              // the same for reframe, 0 if unknown
		if !tail {
			limit, known = files[k+1].index, files[k+1].index
		}
		if in.Pending == "" && !framesCleanly(data, f.index, known) {
			// As Open would leave it (the rebuilt frames keep every offset
			// of the file, except where a finished segment ends early).
			var rs []Reframe
			if data, rs = reframe(data, f.index, known); len(rs) > 0 {
				for _, r := range rs {
					r.Segment = f.name
					in.Reframed = append(in.Reframed, r)
				}
			}
		}
		index, off := f.index, 0
		for off < len(data) && index < limit {
			size, n := binary.Uvarint(data[off:])
			if n <= 0 || uint64(len(data)-off-n) < size {
				u := Unreadable{Segment: f.name, Offset: int64(off), Bytes: int64(len(data) - off), From: index,
					Reason: "broken length prefix or truncated record"}
				if !tail {
					u.To = limit - 1
					u.Reason += "; a node reports every record of this segment as corrupt"
				}
				in.Unreadable = append(in.Unreadable, u)
				break
			}
			rec := data[off+n : off+n+int(size)]
			off += n + int(size)
			payload, err := decodeRecord(index, rec)
			var ce *CorruptError
			if err != nil && !errors.As(err, &ce) {
				return in, err // (decodeRecord returns only *CorruptError)
			}
			if err := fn(index, payload, ce); err != nil {
				return in, err
			}
			in.LastIndex = index
			index++
		}
		if !tail && index < limit && off == len(data) {
			in.Unreadable = append(in.Unreadable, Unreadable{Segment: f.name, Offset: int64(off), From: index, To: limit - 1,
				Reason: fmt.Sprintf("the segment ends before the next segment's first index %d", limit)})
		}
		if tail {
			// What Open's repair would cut: everything after the last
			// valid frame.
			keep, invalid := scanFrames(data, f.index)
			if keep < int64(len(data)) {
				in.TornTail = RepairReport{Segment: filepath.Join(dir, f.name), DroppedBytes: int64(len(data)) - keep, DroppedRecords: invalid}
				in.TornFrom = f.index + uint64(countFrames(data[:keep]))
			}
		}
	}
	return in, nil
}

// countFrames is the number of whole frames in data (all of it framed).
func countFrames(data []byte) int {
	n := 0
	for off := 0; off < len(data); n++ {
		size, k := binary.Uvarint(data[off:])
		if k <= 0 {
			break
		}
		off += k + int(size)
	}
	return n
}

// asOpened applies what tidwall's Open does with pending START/END files
// (see segment.go), without touching the files: the segments before the
// last START are gone; those after the first END are gone, as is a plain
// segment sharing the END segment's first index.
func asOpened(files []segFile) ([]segFile, string, error) {
	start, end := -1, -1
	for i, f := range files {
		if f.kind == ".START" {
			start = i
		} else if f.kind == ".END" && end == -1 {
			end = i
		}
	}
	switch {
	case start >= 0 && end >= 0:
		return nil, "", fmt.Errorf("wal: both %s%s and %s%s are pending: the log directory is inconsistent (tidwall/wal refuses to open it)",
			files[start].name, files[start].kind, files[end].name, files[end].kind)
	case start >= 0:
		note := fmt.Sprintf("%s%s: an interrupted front truncation, finished when a node opens the log (shown as finished)", files[start].name, files[start].kind)
		return files[start:], note, nil
	case end >= 0:
		note := fmt.Sprintf("%s%s: an interrupted back truncation, finished when a node opens the log (shown as finished)", files[end].name, files[end].kind)
		files = files[:end+1]
		if n := len(files); n > 1 && files[n-2].index == files[n-1].index {
			files = append(files[:n-2], files[n-1])
		}
		return files, note, nil
	}
	return files, "", nil
}
