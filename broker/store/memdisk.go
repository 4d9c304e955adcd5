package store

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ordo-broker/ordo/wal"
)

// ErrCrashed is returned by a MemDisk's writes once the crash it was told
// to simulate (CrashAfter) has happened: the node must be thrown away and
// restarted from the disk with Crash.
var ErrCrashed = errors.New("memdisk: crashed")

// MemDisk is a Disk in memory that remembers what was synced, in the
// style of pebble's crashable vfs: Crash keeps everything synced and loses
// the rest (a log write that was cut keeps a prefix of its records, a torn
// last record being the same as a shorter write after the WAL's repair).
// CrashAfter makes the disk die after a given number of further writes,
// so a crash can fall anywhere inside a persist. Safe for concurrent use.
type MemDisk struct {
	mu          sync.Mutex
	locked      bool
	state       *DiskState // as written (nil: none)
	syncedState *DiskState // what survives a crash
	mark        *AckedMark // as written by SaveAcked since the last SaveState (a crash loses it)
	first       uint64     // index of recs[0]
	recs        [][]byte
	synced      int // recs[:synced] survive a crash
	budget      int // writes left before the crash; <0: no crash planned
	dead        bool
	log         *memLog // the open handle, if any
	index       []byte  // the index checkpoint (saved durably at once)
}

// NewMemDisk returns an empty disk.
func NewMemDisk() *MemDisk { return &MemDisk{first: 1, budget: -1} }

var _ Disk = (*MemDisk)(nil)

func (d *MemDisk) String() string { return "memdisk" }

// Lock implements Disk.
func (d *MemDisk) Lock() (io.Closer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.locked {
		return nil, errors.New("memdisk: in use by another replica")
	}
	d.locked = true
	return closerFunc(func() error {
		d.mu.Lock()
		d.locked = false
		d.mu.Unlock()
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Empty implements Disk.
func (d *MemDisk) Empty() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state == nil && d.mark == nil && len(d.recs) == 0 && d.first == 1
}

// LoadState implements Disk.
func (d *MemDisk) LoadState() (DiskState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var hs DiskState
	if d.state != nil {
		hs = *d.state
	}
	if d.mark != nil {
		hs = hs.WithMark(*d.mark)
	}
	return hs, nil
}

// SaveAcked implements Disk: like a state save without sync, a crash
// loses it.
func (d *MemDisk) SaveAcked(m AckedMark) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.write() {
		return ErrCrashed
	}
	d.mark = &m
	return nil
}

// SaveState implements Disk.
func (d *MemDisk) SaveState(hs DiskState, sync bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.write() {
		return ErrCrashed
	}
	d.state, d.mark = &hs, nil
	if sync {
		d.syncedState = &hs
	}
	return nil
}

// write spends one write of the crash budget; false once the disk died.
func (d *MemDisk) write() bool {
	if d.dead {
		return false
	}
	if d.budget == 0 {
		d.dead = true
		return false
	}
	if d.budget > 0 {
		d.budget--
	}
	return true
}

// CrashAfter makes the disk die after n more writes (a state save, or one
// log record, counts one): later writes are lost and fail with
// ErrCrashed. Call Crash before reopening.
func (d *MemDisk) CrashAfter(n int) {
	d.mu.Lock()
	d.budget = n
	d.mu.Unlock()
}

// Dead reports whether the planned crash has happened.
func (d *MemDisk) Dead() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dead
}

// Crash simulates power loss: the synced state survives, and of the log
// records written but not synced, keep(n) of the n oldest survive (a
// prefix: appends reach the file in order). The open log is closed and the
// lock released.
func (d *MemDisk) Crash(keep func(n int) int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state, d.mark = d.syncedState, nil
	if n := len(d.recs) - d.synced; n > 0 {
		k := 0
		if keep != nil {
			k = min(max(keep(n), 0), n)
		}
		d.recs = d.recs[:d.synced+k]
	}
	d.synced = len(d.recs)
	d.dead, d.budget, d.locked = false, -1, false
	if d.log != nil {
		d.log.closed = true
		d.log = nil
	}
}

// OpenLog implements Disk.
func (d *MemDisk) OpenLog(opts wal.Options) (Log, wal.RepairReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.log != nil {
		d.log.closed = true
	}
	d.log = &memLog{d: d, noSync: opts.NoSync}
	return d.log, wal.RepairReport{}, nil
}

// memLog is the Log of a MemDisk.
type memLog struct {
	d      *MemDisk
	noSync bool
	closed bool
}

var errClosed = errors.New("memdisk: log closed")

func (l *memLog) lock() (*MemDisk, error) {
	l.d.mu.Lock()
	if l.closed {
		l.d.mu.Unlock()
		return nil, errClosed
	}
	return l.d, nil
}

func (l *memLog) FirstIndex() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.first
}

func (l *memLog) LastIndex() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.first + uint64(len(l.d.recs)) - 1
}

func (l *memLog) Append(first uint64, records [][]byte) error {
	d, err := l.lock()
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if want := d.first + uint64(len(d.recs)); first != want {
		return fmt.Errorf("memdisk: append at %d, want %d", first, want)
	}
	for _, r := range records {
		if !d.write() {
			return ErrCrashed
		}
		d.recs = append(d.recs, append([]byte(nil), r...))
	}
	if !l.noSync {
		d.synced = len(d.recs)
	}
	return nil
}

func (l *memLog) Read(index uint64) ([]byte, error) {
	d, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if index < d.first || index >= d.first+uint64(len(d.recs)) {
		return nil, fmt.Errorf("%w: %d outside [%d, %d]", wal.ErrNotFound, index, d.first, d.first+uint64(len(d.recs))-1)
	}
	return append([]byte(nil), d.recs[index-d.first]...), nil
}

func (l *memLog) Scan(lo, hi uint64, fn func(index uint64, rec []byte) error) error {
	d, err := l.lock()
	if err != nil {
		return err
	}
	last := d.first + uint64(len(d.recs)) - 1
	if lo < d.first || lo > last+1 {
		d.mu.Unlock()
		return fmt.Errorf("%w: Scan from %d", wal.ErrNotFound, lo)
	}
	var recs [][]byte
	for i := lo; i <= min(hi, last); i++ {
		recs = append(recs, d.recs[i-d.first])
	}
	d.mu.Unlock()
	for k, r := range recs {
		if err := fn(lo+uint64(k), append([]byte(nil), r...)); err != nil {
			return err
		}
	}
	return nil
}

// TruncateBack keeps records up to index; durable on return, as the WAL's.
func (l *memLog) TruncateBack(index uint64) error {
	d, err := l.lock()
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if !d.write() {
		return ErrCrashed
	}
	if index+1 < d.first {
		return fmt.Errorf("%w: truncate to %d", wal.ErrNotFound, index)
	}
	if n := int(index + 1 - d.first); n < len(d.recs) {
		d.recs = d.recs[:n]
	}
	d.synced = min(d.synced, len(d.recs))
	return nil
}

// Reset restarts the log empty at next; atomic and durable, as the WAL's.
func (l *memLog) Reset(next uint64) error {
	d, err := l.lock()
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if !d.write() {
		return ErrCrashed
	}
	d.first, d.recs, d.synced = next, nil, 0
	return nil
}

// ApplyRetention keeps everything: the simulation does not model retention.
func (l *memLog) ApplyRetention(time.Time, uint64) (uint64, error) { return l.FirstIndex(), nil }

func (l *memLog) Size() int64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	var n int64
	for _, r := range l.d.recs {
		n += int64(len(r))
	}
	return n
}

// Segments: the simulation's log is one unbounded segment.
func (l *memLog) Segments() int { return 1 }

func (l *memLog) Close() error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	l.closed = true
	if l.d.log == l {
		l.d.log = nil
	}
	return nil
}

// LoadIndex implements Checkpoints.
func (d *MemDisk) LoadIndex() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.index, nil
}

// SaveIndex implements Checkpoints. It does not spend the crash budget:
// a checkpoint is only an optimisation, and a lost one is the same as a
// stale one (both are checked against the log).
func (d *MemDisk) SaveIndex(b []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return ErrCrashed
	}
	d.index = append([]byte(nil), b...)
	if b == nil {
		d.index = nil
	}
	return nil
}
