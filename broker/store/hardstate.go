package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ordo-broker/ordo/consensus"
)

// StateFile holds the consensus core's persisted state (term, vote,
// accepted term, commit, the committed configuration) and the cluster's
// identity next to the WAL; StateCopyFile holds a second copy. Each is
// replaced atomically (write a temporary file, fsync it, rename it over
// the old one, fsync the directory), StateFile first, and each carries a
// checksum.
//
// Why two: a forgotten vote or term is unsafe in any protocol, so a node
// whose only state file is damaged cannot vote until an operator steps
// in, and on a majority that stops the cluster. With two copies one
// damaged file (a flipped bit, a lost write) is read from the other: both
// are written before the caller acts on the state, so the other one holds
// the same state, or — after a crash between the two writes — the state
// before a change nobody was told about yet. Load takes StateFile if it
// is intact (written first, it is never the older one), else the copy.
// A checksum, not JSON syntax, decides: a bit flip in a digit is still
// valid JSON.
const (
	StateFile     = "state.json"
	StateCopyFile = "state.copy.json"
)

// DiskState is the hard state as stored in StateFile.
type DiskState struct {
	Term         uint64 `json:"term"`
	Vote         uint64 `json:"vote"`
	AcceptedTerm uint64 `json:"accepted_term"`
	Commit       uint64 `json:"commit"`
	MustReach    uint64 `json:"must_reach,omitempty"`
	// How far the log reached (damaged positions included), and the term
	// run ending there: a log found shorter at restart lost an
	// acknowledged tail (consensus.HardState.Acked).
	Acked          uint64               `json:"acked,omitempty"`
	AckedTerm      uint64               `json:"acked_term,omitempty"`
	AckedTermStart uint64               `json:"acked_term_start,omitempty"`
	AckedPrev      [3]consensus.TermRun `json:"acked_prev"`
	// The log's boundary after retention or a reset: the term of entry
	// BaseIndex (= first index - 1), 0 if unknown.
	BaseIndex uint64 `json:"base_index,omitempty"`
	BaseTerm  uint64 `json:"base_term,omitempty"`
	// ClusterID names the cluster this node belongs to (drawn at
	// bootstrap, learned when joining); peers of another cluster are
	// refused.
	ClusterID string `json:"cluster_id,omitempty"`
	// Joining: the node was started to join a cluster and has not yet
	// received a configuration; a restart joins again rather than
	// bootstrapping a cluster of its own.
	Joining bool `json:"joining,omitempty"`
	// Conf is the committed configuration as last handed out by the core
	// (Ready.ConfState); nil until the membership first changed.
	Conf *consensus.ConfState `json:"conf,omitempty"`

	// CRC is the CRC-32C of the file's JSON with CRC zero (set by
	// saveState; a file without it predates the checksum).
	CRC uint32 `json:"crc,omitempty"`

	// Repaired, set by loadState only, says which copy was damaged (and
	// rewritten from the other): for the node's log.
	Repaired string `json:"-"`
}

// loadState reads dir's state: StateFile if intact, else its copy (a
// missing pair is the zero state). A damaged copy is rewritten from
// the other (unless readOnly) and named in Repaired; both damaged is an
// error.
func loadState(dir string, readOnly bool) (DiskState, error) {
	a, errA := readStateFile(filepath.Join(dir, StateFile))
	b, errB := readStateFile(filepath.Join(dir, StateCopyFile))
	missingA, missingB := errors.Is(errA, os.ErrNotExist), errors.Is(errB, os.ErrNotExist)
	switch {
	case missingA && missingB:
		return DiskState{}, nil
	case errA != nil && errB != nil && !missingA && !missingB:
		return DiskState{}, fmt.Errorf("both copies of the node's state are damaged (%v; %v); remove them only if you know this node's term and vote are safe to forget", errA, errB)
	case errA != nil && missingB:
		return DiskState{}, fmt.Errorf("%v; remove it only if you know this node's term and vote are safe to forget", errA)
	case errB != nil && missingA:
		return DiskState{}, fmt.Errorf("%v; remove it only if you know this node's term and vote are safe to forget", errB)
	}
	hs, other, bad := a, errB, StateCopyFile
	if errA != nil {
		hs, other, bad = b, errA, StateFile
	}
	if m, ok := readMark(dir); ok {
		hs = hs.WithMark(m) // (never older than the state file's)
	}
	if other != nil && !errors.Is(other, os.ErrNotExist) {
		if readOnly {
			hs.Repaired = fmt.Sprintf("%v: the state is read from the other copy", other)
			return hs, nil
		}
		if err := saveState(dir, hs, true); err != nil {
			return hs, fmt.Errorf("rewriting the damaged %s: %w", bad, err)
		}
		hs.Repaired = fmt.Sprintf("%v: read the state from the other copy and rewrote it", other)
	}
	return hs, nil
}

// ReadState reads a stopped node's state without changing anything (a
// damaged copy is reported in Repaired, not rewritten).
func ReadState(dir string) (DiskState, error) { return loadState(dir, true) }

// readStateFile reads and checks one copy.
func readStateFile(path string) (DiskState, error) {
	var hs DiskState
	b, err := os.ReadFile(path)
	if err != nil {
		return hs, err
	}
	if err := json.Unmarshal(b, &hs); err != nil {
		return hs, fmt.Errorf("%s is damaged (%v)", path, err)
	}
	if hs.CRC == 0 {
		return hs, nil // (written before the state had a checksum)
	}
	if sum, err := stateCRC(hs); err != nil || sum != hs.CRC {
		return hs, fmt.Errorf("%s is damaged (checksum mismatch)", path)
	}
	return hs, nil
}

// stateCRC is the checksum of hs's JSON with CRC zero.
func stateCRC(hs DiskState) (uint32, error) {
	hs.CRC = 0
	b, err := json.Marshal(hs)
	return crc32.Checksum(b, castagnoli), err
}

// saveState replaces both copies of dir's state, one after the other
// (see StateFile); with sync they are durable when saveState returns.
func saveState(dir string, hs DiskState, sync bool) error {
	hs.Repaired = ""
	sum, err := stateCRC(hs)
	if err != nil {
		return err
	}
	hs.CRC = sum
	b, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	for _, name := range []string{StateFile, StateCopyFile} {
		if err := replaceStateFile(dir, name, b, sync); err != nil {
			return err
		}
	}
	return writeMark(dir, hs.Mark(), sync)
}

func replaceStateFile(dir, name string, b []byte, sync bool) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	if sync {
		return syncDir(dir)
	}
	return nil
}

// hasSegments reports whether dir holds any log segment file.
func hasSegments(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); len(n) >= 20 && n[0] >= '0' && n[0] <= '9' {
			return true
		}
	}
	return false
}

// lockDir takes an exclusive lock on dir/LOCK so two processes never
// write one log (the lock dies with the process, even on kill -9).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		msg := fmt.Sprintf("data directory %s is in use by another ordo process (%v); give each node its own --data-dir", dir, err)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUseError(msg)
		}
		return nil, errors.New(msg)
	}
	return f, nil
}

// ErrInUse matches (errors.Is) Lock's error when another process holds
// the directory, so a caller can tell "a node is running" from other
// failures.
var ErrInUse = errors.New("data directory in use")

type inUseError string

func (e inUseError) Error() string        { return string(e) }
func (e inUseError) Is(target error) bool { return target == ErrInUse }

// syncDir fsyncs a directory (making renames and creations in it durable).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Core is the part of the state the consensus core owns.
func (d DiskState) Core() consensus.HardState {
	return consensus.HardState{Term: d.Term, Vote: consensus.NodeID(d.Vote), AcceptedTerm: d.AcceptedTerm, Commit: d.Commit, MustReach: d.MustReach,
		Acked: d.Acked, AckedTerm: d.AckedTerm, AckedTermStart: d.AckedTermStart, AckedPrev: d.AckedPrev}
}

// WithCore returns d with the core's hard state in place of its own.
func (d DiskState) WithCore(h consensus.HardState) DiskState {
	d.Term, d.Vote, d.AcceptedTerm, d.Commit, d.MustReach = h.Term, uint64(h.Vote), h.AcceptedTerm, h.Commit, h.MustReach
	d.Acked, d.AckedTerm, d.AckedTermStart, d.AckedPrev = h.Acked, h.AckedTerm, h.AckedTermStart, h.AckedPrev
	return d
}
