package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	twal "github.com/tidwall/wal"
)

// DefaultSegmentSize is the segment size used when Options.SegmentSize is 0.
// tidwall/wal holds the segment being appended to, and up to two older ones
// being read, in memory, and TruncateFront rewrites a segment, so this is
// also the unit of memory use and of retention.
const DefaultSegmentSize = 20 << 20

// Options configure a Log. The zero value is durable, keeps everything and
// uses DefaultSegmentSize.
type Options struct {
	// SegmentSize is the size in bytes at which a segment file is finished
	// and the next one started. A segment ends with the record that reaches
	// the size, so files run slightly over it.
	SegmentSize int

	// NoSync makes Append return without fsync: the explicitly fast,
	// non-durable mode. Call Sync to make everything appended so far durable.
	NoSync bool

	// RetainBytes, if positive, lets ApplyRetention drop the oldest segments
	// while the log is larger than this many bytes.
	RetainBytes int64

	// RetainAge, if positive, lets ApplyRetention drop segments last written
	// longer ago than this. A segment's age is its file's modification time,
	// i.e. the time its newest record was written.
	RetainAge time.Duration
}

// Log is a write-ahead log in one directory. Create it with Open.
type Log struct {
	mu       sync.Mutex
	dir      string
	opts     Options
	tl       *twal.Log // nil only after Close or a failed Reset
	segs     []segInfo // mirror of the segment files, oldest first
	failed   error     // sticky; wraps ErrFailed
	closed   bool
	dirDirty bool // NoSync: a segment file was created since the last directory fsync
	repaired RepairReport
	reframed []Reframe // damaged framing Open rebuilt (reframe.go)
	batch    twal.Batch
	buf      []byte

	// first and last mirror tidwall's indexes so FirstIndex and LastIndex
	// do not wait for an fsync. Written only with mu held.
	first, last atomic.Uint64

	// hook, set by tests, runs before each file-system step named op; an
	// error is treated as that step failing.
	hook func(op string) error
}

// Open opens the log in dir, creating dir and an empty log (next index 1) if
// needed. Before handing the directory to tidwall/wal it cuts a torn tail
// from the last segment file; Repaired reports what was cut.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	l := &Log{dir: dir, opts: opts}
	if l.repaired, err = l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

// load repairs the tail, opens tidwall/wal (which finishes any pending
// START/END truncation) and makes the result durable.
func (l *Log) load() (RepairReport, error) {
	if err := removeTempFiles(l.dir); err != nil {
		return RepairReport{}, fmt.Errorf("wal: open %s: %w", l.dir, err)
	}
	reframed, err := reframeSegments(l.dir)
	if err != nil {
		return RepairReport{}, fmt.Errorf("wal: open %s: reframe: %w", l.dir, err)
	}
	l.reframed = append(l.reframed, reframed...)
	rep, err := repairTail(l.dir)
	rep.Reframed = reframed
	if err != nil {
		return rep, fmt.Errorf("wal: open %s: repair tail: %w", l.dir, err)
	}
	tl, err := twal.Open(l.dir, &twal.Options{
		SegmentSize:      l.opts.SegmentSize,
		NoSync:           l.opts.NoSync,
		LogFormat:        twal.Binary,
		SegmentCacheSize: 2,
		NoCopy:           true, // records are verified, then copied, under mu
		AllowEmpty:       true, // an empty log keeps its next index
	})
	if err != nil {
		if errors.Is(err, twal.ErrCorrupt) {
			err = fmt.Errorf("%w (%v)", ErrCorrupt, err)
		}
		return rep, fmt.Errorf("wal: open %s: %w", l.dir, err)
	}
	err = syncDir(l.dir)
	if err == nil {
		l.segs, err = statSegments(l.dir)
	}
	if err == nil {
		l.tl = tl
		err = l.refreshIndexes()
	}
	if err != nil {
		l.tl = nil
		tl.Close()
		return rep, fmt.Errorf("wal: open %s: %w", l.dir, err)
	}
	return rep, nil
}

// Repaired reports what Open cut from the end of the log. Log it.
func (l *Log) Repaired() RepairReport { return l.repaired }

// Reframed reports the damaged length prefixes Open found in the middle
// of the log and re-framed, so that the records after them keep their
// indexes (see reframe.go). Log it: unless Restored, the records it names
// are damaged in place, and Read reports each as corrupt.
func (l *Log) Reframed() []Reframe { return l.reframed }

// FirstIndex is the index of the oldest record. For an empty log it is
// LastIndex()+1, the index the next Append must start at.
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// LastIndex is the index of the newest record, FirstIndex()-1 if the log is
// empty.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Size is the number of bytes in the log's segment files.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// Segments is the number of segment files (the one being appended to
// included).
func (l *Log) Segments() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segs)
}

// Close syncs and closes the log. Closing a failed log is how to recover:
// Open it again.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	if l.tl == nil {
		return nil
	}
	err := l.tl.Close()
	l.tl = nil
	if err == nil && l.dirDirty {
		err = syncDir(l.dir)
	}
	if err != nil {
		return fmt.Errorf("wal: close %s: %w", l.dir, err)
	}
	return nil
}

// Append writes records at indexes first, first+1, ... with one write and,
// unless NoSync, one fsync (plus a directory fsync if a segment file was
// started). first must be LastIndex()+1, else ErrOutOfOrder. An empty batch
// writes nothing.
func (l *Log) Append(first uint64, records [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if next := l.last.Load() + 1; first != next {
		return fmt.Errorf("%w: append at %d, next index is %d", ErrOutOfOrder, first, next)
	}
	if len(records) == 0 {
		return nil
	}
	l.batch.Clear()
	for i, r := range records {
		l.buf = appendRecord(l.buf[:0], first+uint64(i), r)
		l.batch.Write(first+uint64(i), l.buf) // copies
	}
	if err := l.step("append"); err != nil {
		return l.fail("append", err)
	}
	if err := l.tl.WriteBatch(&l.batch); err != nil {
		return l.fail("append", err)
	}
	l.last.Store(first + uint64(len(records)) - 1)
	if l.trackAppend(first, records) {
		if l.opts.NoSync {
			l.dirDirty = true
		} else if err := l.syncDir(); err != nil {
			return l.fail("append", err)
		}
	}
	return nil
}

// trackAppend mirrors tidwall's segment cycling for a batch it just wrote
// (writeBatch starts a new segment before the batch if the tail is already
// over SegmentSize, and after any record that brings the tail to SegmentSize
// or more, even the batch's last). It reports whether a file was created.
func (l *Log) trackAppend(first uint64, records [][]byte) (created bool) {
	limit := int64(l.opts.SegmentSize)
	if l.segs[len(l.segs)-1].size > limit {
		l.segs = append(l.segs, segInfo{first: first})
		created = true
	}
	for i, r := range records {
		tail := &l.segs[len(l.segs)-1]
		tail.size += frameLen(headerLen + len(r))
		if tail.size >= limit {
			l.segs = append(l.segs, segInfo{first: first + uint64(i) + 1})
			created = true
		}
	}
	return created
}

// Sync makes every record appended so far durable. Needed only with NoSync.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if err := l.step("sync"); err != nil {
		return l.fail("sync", err)
	}
	if err := l.tl.Sync(); err != nil {
		return l.fail("sync", err)
	}
	if l.dirDirty {
		if err := l.syncDir(); err != nil {
			return l.fail("sync", err)
		}
	}
	return nil
}

// TruncateFront removes every record before index, which becomes
// FirstIndex. index may be LastIndex()+1: the log is then empty and still
// continues at that index. Out of [FirstIndex, LastIndex+1] it returns
// ErrNotFound. tidwall/wal rewrites the segment holding index (copying the
// part kept); its modification time is kept for RetainAge.
func (l *Log) TruncateFront(index uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if first, last := l.first.Load(), l.last.Load(); index < first || index > last+1 {
		return fmt.Errorf("%w: TruncateFront(%d) outside [%d, %d]", ErrNotFound, index, first, last+1)
	}
	return l.truncateFront(index)
}

func (l *Log) truncateFront(index uint64) error {
	if index == l.first.Load() {
		return nil
	}
	var mtime time.Time
	if fi, err := os.Stat(l.segPath(l.segs[l.segFor(index)].first)); err == nil {
		mtime = fi.ModTime()
	}
	if err := l.step("truncate"); err != nil {
		return l.fail("truncate front", err)
	}
	if err := l.tl.TruncateFront(index); err != nil {
		return l.fail("truncate front", err)
	}
	if !mtime.IsZero() {
		// Best effort: a wrong mtime only delays age-based retention.
		_ = os.Chtimes(l.segPath(index), mtime, mtime)
	}
	return l.afterTruncate("truncate front")
}

// TruncateBack removes every record after index, which becomes LastIndex;
// use it to drop a divergent or corrupt tail. index may be FirstIndex()-1,
// emptying the log (the next Append then starts at FirstIndex()). Out of
// [FirstIndex-1, LastIndex] it returns ErrNotFound.
func (l *Log) TruncateBack(index uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if first, last := l.first.Load(), l.last.Load(); index+1 < first || index > last {
		return fmt.Errorf("%w: TruncateBack(%d) outside [%d, %d]", ErrNotFound, index, first-1, last)
	}
	return l.truncateBack(index)
}

func (l *Log) truncateBack(index uint64) error {
	if index == l.last.Load() {
		return nil
	}
	if err := l.step("truncate"); err != nil {
		return l.fail("truncate back", err)
	}
	if err := l.tl.TruncateBack(index); err != nil {
		return l.fail("truncate back", err)
	}
	return l.afterTruncate("truncate back")
}

// afterTruncate makes tidwall's file removals and rename durable and
// re-reads the segment files.
func (l *Log) afterTruncate(op string) error {
	err := l.syncDir()
	if err == nil {
		l.segs, err = statSegments(l.dir)
	}
	if err == nil {
		err = l.refreshIndexes()
	}
	if err != nil {
		return l.fail(op, err)
	}
	return nil
}

// Reset empties the log so that the next Append starts at next (a follower
// joining after the leader's retention dropped earlier records). It is
// crash-safe: it writes an empty NAME.START file (NAME.END if next is below
// every segment), which tidwall/wal's Open completes by deleting the other
// segments. When next is inside the log, the records from next on are first
// removed with TruncateBack, so a crash in between leaves a log that already
// continues at next.
func (l *Log) Reset(next uint64) error {
	if next == 0 {
		return errors.New("wal: Reset(0): indexes start at 1")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	first, last := l.first.Load(), l.last.Load()
	if first <= next && next <= last {
		if err := l.truncateBack(next - 1); err != nil {
			return err
		}
		last = next - 1
	}
	if first == next && last == next-1 {
		return nil
	}
	marker := segmentName(next) + ".START" // sorts after every segment named <= next
	if next < first {
		marker = segmentName(next) + ".END" // sorts before every segment
	}
	err := l.step("reset")
	if err == nil {
		err = l.tl.Close()
	}
	l.tl = nil
	if err == nil {
		err = createEmpty(filepath.Join(l.dir, marker))
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err == nil {
		_, err = l.load()
	}
	if err != nil {
		return l.fail("reset", err)
	}
	l.dirDirty = false
	return nil
}

// usable returns why the log can not be used, if it can not.
func (l *Log) usable() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// fail makes the log failed (the first cause sticks) and returns the error.
func (l *Log) fail(op string, cause error) error {
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %s: %w", ErrFailed, op, cause)
	}
	return l.failed
}

func (l *Log) step(op string) error {
	if l.hook != nil {
		return l.hook(op)
	}
	return nil
}

func (l *Log) syncDir() error {
	if err := l.step("dirsync"); err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.dirDirty = false
	return nil
}

func (l *Log) refreshIndexes() error {
	first, err := l.tl.FirstIndex()
	if err != nil {
		return err
	}
	last, err := l.tl.LastIndex()
	if err != nil {
		return err
	}
	l.first.Store(first)
	l.last.Store(last)
	return nil
}

func (l *Log) segPath(first uint64) string {
	return filepath.Join(l.dir, segmentName(first))
}

// segFor returns the position in segs of the segment that holds (or, past
// the end, would hold) index.
func (l *Log) segFor(index uint64) int {
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].first > index {
		i--
	}
	return i
}
