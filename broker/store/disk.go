package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/ordo-broker/ordo/wal"
)

// Disk is where a node keeps its log and its hard state: the filesystem
// seam. DirDisk is a directory; MemDisk lives in memory and can crash,
// losing exactly what was not synced, so the simulation runs the real
// runtime and store over it.
type Disk interface {
	// Lock makes this process the disk's only writer until Close.
	Lock() (io.Closer, error)
	// Empty reports a disk with neither hard state nor log (a first boot,
	// or a wiped disk).
	Empty() bool
	LoadState() (DiskState, error)
	// SaveState replaces the hard state atomically; with sync it is durable
	// when SaveState returns.
	SaveState(hs DiskState, sync bool) error
	// SaveAcked writes the acked mark alone, without fsync (a rise: see
	// ackedmark.go); LoadState returns it in the state's acked fields.
	SaveAcked(m AckedMark) error
	// OpenLog opens the log, repairing a torn tail (reported).
	OpenLog(opts wal.Options) (Log, wal.RepairReport, error)
	// The store's index checkpoint (checkpoint.go).
	Checkpoints
	String() string
}

// DirDisk is a data directory: the WAL's segment files, StateFile and a
// LOCK file.
type DirDisk string

var _ Disk = DirDisk("")

func (d DirDisk) String() string { return string(d) }

// Lock creates the directory if needed and takes its flock.
func (d DirDisk) Lock() (io.Closer, error) {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return nil, err
	}
	return lockDir(string(d))
}

// Empty reports a directory with no state file (neither copy) and no
// segment.
func (d DirDisk) Empty() bool {
	for _, name := range []string{StateFile, StateCopyFile} {
		if _, err := os.Stat(filepath.Join(string(d), name)); !errors.Is(err, os.ErrNotExist) {
			return false
		}
	}
	return !hasSegments(string(d))
}

// LoadState reads StateFile or, if it is damaged, its copy; none is the
// zero state.
func (d DirDisk) LoadState() (DiskState, error) { return loadState(string(d), false) }

// SaveState replaces StateFile and its copy, each atomically.
func (d DirDisk) SaveState(hs DiskState, sync bool) error { return saveState(string(d), hs, sync) }

// SaveAcked overwrites the acked mark in place.
func (d DirDisk) SaveAcked(m AckedMark) error { return writeMark(string(d), m, false) }

// OpenLog opens the directory's WAL.
func (d DirDisk) OpenLog(opts wal.Options) (Log, wal.RepairReport, error) {
	l, err := wal.Open(string(d), opts)
	if err != nil {
		return nil, wal.RepairReport{}, err
	}
	return l, l.Repaired(), nil
}
