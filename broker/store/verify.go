package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/wal"
)

// Background verification of the records a checkpoint let Load skip: the
// full scan at startup used to check every record's checksum; now the
// records a checkpoint covers are checked right after startup, while the
// node serves, a chunk at a time with pauses so that the loop's ticks and
// heartbeats and the clients keep a core. Until then a damaged record is
// still never served (every read verifies its checksum); the pass finds
// damage no read has touched. On damage the checkpoint is deleted and
// onDamage called: the replica then reopens its log as after a crash, and
// the full scan repairs it as it always did (a cluster member truncates
// and refetches from peers, a lone node marks the record damaged).
type verifier struct {
	lo, hi   uint64 // what Load skipped (hi 0: nothing)
	damaged  bool   // damage found: save no more checkpoints
	stop     chan struct{}
	done     sync.WaitGroup
	finished atomic.Bool
}

// Pacing: records per chunk, and the pause after each.
const (
	verifyChunk = 8192
	verifyPause = time.Millisecond
)

// rangeVerifier is implemented by wal.Log: checksums without copies.
type rangeVerifier interface {
	VerifyRange(lo, hi uint64) error
}

// StartVerify starts verifying, in the background, the records Load
// skipped thanks to a checkpoint (nothing if it skipped none).
func (s *Store) StartVerify(onDamage func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, hi := s.verify.lo, s.verify.hi
	if hi == 0 || s.verify.stop != nil || s.closed {
		return
	}
	stop := make(chan struct{})
	s.verify.stop = stop
	s.verify.done.Add(1)
	go func() {
		defer s.verify.done.Done()
		defer s.verify.finished.Store(true)
		err := s.verifyRange(lo, hi, stop)
		var ce *wal.CorruptError
		if !errors.As(err, &ce) {
			return // verified, stopped, or the log is failing (its own error path)
		}
		s.mu.Lock()
		s.verify.damaged = true
		s.mu.Unlock()
		if s.ck != nil {
			_ = s.ck.SaveIndex(nil) // the next load must scan, and repair
		}
		if onDamage != nil {
			onDamage(err)
		}
	}()
}

func (s *Store) verifyRange(lo, hi uint64, stop <-chan struct{}) error {
	for next := lo; next <= hi; next += verifyChunk {
		select {
		case <-stop:
			return nil
		case <-time.After(verifyPause):
		}
		next = max(next, s.log.FirstIndex()) // (retention may have moved on)
		end := min(hi, next+verifyChunk-1)
		if next > end {
			return nil
		}
		var err error
		if v, ok := s.log.(rangeVerifier); ok {
			err = v.VerifyRange(next, end)
		} else {
			err = s.log.Scan(next, end+1, func(i uint64, rec []byte) error {
				if _, err := DecodeEntry(i, rec); err != nil {
					return &wal.CorruptError{Index: i, Reason: err.Error()}
				}
				return nil
			})
			if errors.Is(err, wal.ErrNotFound) {
				continue // dropped by retention meanwhile
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Verified reports whether the background verification has finished
// (or was never needed).
func (s *Store) Verified() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.verify.hi == 0 || s.verify.finished.Load()
}

func (s *Store) stopVerify() {
	s.mu.Lock()
	stop := s.verify.stop
	if stop != nil {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	s.mu.Unlock()
	s.verify.done.Wait()
}
