package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ordo-broker/ordo/consensus"
)

// StateFile holds the consensus core's persisted state (term, vote,
// accepted term, commit, the committed configuration) and the cluster's
// identity next to the WAL. It is replaced atomically:
// write a temporary file, fsync it, rename it over the old one, fsync the
// directory.
const StateFile = "state.json"

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
}

// loadState reads dir's StateFile; a missing file is the zero state.
func loadState(dir string) (DiskState, error) {
	var hs DiskState
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return hs, nil
	}
	if err != nil {
		return hs, err
	}
	if err := json.Unmarshal(b, &hs); err != nil {
		return hs, fmt.Errorf("%s is damaged (%v); remove it only if you know this node's term and vote are safe to forget", filepath.Join(dir, StateFile), err)
	}
	return hs, nil
}

// saveState replaces dir's StateFile atomically; with sync it is durable
// when saveState returns.
func saveState(dir string, hs DiskState, sync bool) error {
	b, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
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
	if err := os.Rename(tmp, filepath.Join(dir, StateFile)); err != nil {
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
