package replica

import (
	"errors"
	"time"
)

// Observer receives the measurements a replica can only take as events
// happen (latency and batch-size histograms); everything else is read
// from Stats and Status when asked. Calls come from the replica's loop and
// storage goroutines: they must be cheap and never block.
type Observer interface {
	// LogWritten: one batch of entries appended to the log with one
	// write and one fsync (no fsync in fast mode), taking took.
	LogWritten(entries int, took time.Duration)
	// PublishCommitted: a local publish was committed and applied, took
	// after the replica took it in.
	PublishCommitted(took time.Duration)
}

// FailReason classifies a publish answered with an error.
type FailReason uint8

// The reasons, one per error Publish answers with.
const (
	FailNoLeader FailReason = iota
	FailNotSequenced
	FailUnconfirmed
	FailShuttingDown
	FailStorage
	FailRefused
	NumFailReasons
)

var failReasonNames = [NumFailReasons]string{"no_leader", "not_sequenced", "unconfirmed", "shutting_down", "storage", "refused"}

// String is the reason as a metric label value.
func (f FailReason) String() string { return failReasonNames[f] }

func failReason(err error) FailReason {
	var se *StorageError
	switch {
	case errors.Is(err, ErrNoLeader):
		return FailNoLeader
	case errors.Is(err, ErrNotSequenced):
		return FailNotSequenced
	case errors.Is(err, ErrUnconfirmed):
		return FailUnconfirmed
	case errors.Is(err, ErrShuttingDown):
		return FailShuttingDown
	case errors.As(err, &se):
		return FailStorage
	default:
		return FailRefused
	}
}
