package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Segment files follow tidwall/wal's naming: the first index of the segment
// as 20 decimal digits. While TruncateFront/TruncateBack run, tidwall also
// writes NAME.TEMP, renamed to NAME.START or NAME.END, which its Open
// finishes (START: delete every segment before it; END: delete every segment
// after it) before renaming it to NAME.

const segNameLen = 20

func segmentName(index uint64) string { return fmt.Sprintf("%020d", index) }

// segInfo mirrors one segment file.
type segInfo struct {
	first uint64 // index of its first record (its name)
	size  int64  // bytes in the file
}

// segFile is a directory entry tidwall/wal treats as a segment.
type segFile struct {
	name  string
	index uint64
	kind  string // "", ".START" or ".END"
}

// listSegmentFiles returns the directory's segment files sorted by name,
// recognising exactly what tidwall's Open recognises.
func listSegmentFiles(dir string) ([]segFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segFile
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || len(name) < segNameLen {
			continue
		}
		index, err := strconv.ParseUint(name[:segNameLen], 10, 64)
		if err != nil || index == 0 {
			continue
		}
		kind := name[segNameLen:]
		if kind == "" || kind == ".START" || kind == ".END" {
			out = append(out, segFile{name, index, kind})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// statSegments returns the mirror of a directory with no pending START/END
// files (as tidwall's Open leaves it).
func statSegments(dir string) ([]segInfo, error) {
	files, err := listSegmentFiles(dir)
	if err != nil {
		return nil, err
	}
	segs := make([]segInfo, 0, len(files))
	for _, f := range files {
		if f.kind != "" {
			return nil, fmt.Errorf("wal: unexpected %s in %s", f.name, dir)
		}
		fi, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		segs = append(segs, segInfo{f.index, fi.Size()})
	}
	return segs, nil
}

// removeTempFiles deletes NAME.TEMP files left by a crash inside tidwall's
// atomic write; tidwall ignores them, so they would only waste space. Such a
// file was never renamed, so nothing depends on it.
func removeTempFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if len(name) == segNameLen+len(".TEMP") && strings.HasSuffix(name, ".TEMP") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// RepairReport describes what Open cut from the end of the log. The zero
// value means nothing was cut.
type RepairReport struct {
	Segment        string // path of the segment file that was cut
	DroppedBytes   int64  // bytes removed from its end
	DroppedRecords int    // complete but invalid records among them; a partial record at the very end counts only in DroppedBytes
	// Reframed lists damaged length prefixes in the middle of the log that
	// Open re-framed (see reframe.go); nothing was cut for them.
	Reframed []Reframe
}

func (r RepairReport) String() string {
	if r.DroppedBytes == 0 {
		return "wal: no repair needed"
	}
	return fmt.Sprintf("wal: cut torn tail of %s: %d bytes, %d invalid records",
		r.Segment, r.DroppedBytes, r.DroppedRecords)
}

// repairTail cuts the segment tidwall's Open will load entries from (the one
// it appends to) after its last valid record, and fsyncs it. Without this a
// torn frame makes tidwall's Open fail with ErrCorrupt, and zeroed or
// garbage frames would open as phantom entries.
//
// Invalid records before the last valid one are kept: they are damage in the
// middle of the log, which Read and Verify report, not a torn write.
func repairTail(dir string) (RepairReport, error) {
	files, err := listSegmentFiles(dir)
	if err != nil || len(files) == 0 {
		return RepairReport{}, err
	}
	// Pick the segment tidwall will append to: the first END file if one is
	// pending (everything after it is deleted), else the last file.
	tail := files[len(files)-1]
	for _, f := range files {
		if f.kind == ".END" {
			tail = f
			break
		}
	}
	path := filepath.Join(dir, tail.name)
	data, err := os.ReadFile(path)
	if err != nil {
		return RepairReport{}, err
	}
	keep, invalid := scanFrames(data, tail.index)
	if keep == int64(len(data)) {
		return RepairReport{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return RepairReport{}, err
	}
	err = f.Truncate(keep)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return RepairReport{}, err
	}
	return RepairReport{Segment: path, DroppedBytes: int64(len(data)) - keep, DroppedRecords: invalid}, nil
}

// createEmpty durably creates an empty file.
func createEmpty(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory so that file creations, removals and renames in
// it survive a crash; tidwall/wal never does this.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
