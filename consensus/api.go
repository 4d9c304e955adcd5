// Package consensus is ordo's replication core: a bully-elected sequencer made
// as safe as Zab / Viewstamped Replication, written as a pure, single-threaded
// state machine in the manner of etcd's raft.
//
// Nothing in this package touches the network, the clock, the disk,
// goroutines or global randomness. Time enters as Tick, messages from peers
// as Step, client work as Propose; the core hands back a Ready describing
// what to persist, what to send and what is committed.
//
// The caller's duties, in order, every time HasReady reports true:
//
//  1. rd := n.Ready()
//  2. If rd.HardState is non-nil, persist it — BEFORE sending any message
//     of rd.Messages (fsync it if rd.MustSync; a change of Commit alone
//     need not be synced).
//  3. If rd.TruncateFrom > 0, remove every log entry with Index >=
//     rd.TruncateFrom (an uncommitted divergent tail), then append
//     rd.Entries to the log and fsync — BEFORE sending any message. When
//     both are set, rd.Entries[0].Index == rd.TruncateFrom. Steps 2 and 3
//     may happen in either order (a crash between them is safe).
//  4. Send rd.Messages (best effort: the core tolerates loss, duplication,
//     delay and reordering).
//  5. Apply rd.Committed in order (they are contiguous and never retracted),
//     and answer the clients of the proposals in rd.Dropped with a
//     retryable error.
//  6. n.Advance(rd).
//
// Between Ready and Advance the caller may keep calling Tick, Step, Propose
// and Cancel (their effects appear in the next Ready), but not Ready.
// Everything is single-threaded: no method may be called concurrently.
// Transports should keep per-peer FIFO order (TCP does): reordered
// MsgForward batches of one origin can only cause proposals to be reported
// in Ready.Dropped, never duplicated or silently lost.
//
// Exactly-once publishing: every Proposal carries (Origin, ReqID) with
// ReqIDs increasing per Origin, also across restarts (seed them from the
// wall clock). A follower forwards its proposals to the leader and
// re-forwards them to every new leader until it sees them committed; the
// leader appends a proposal only if its ReqID exceeds the highest ReqID of
// that origin already in its log (recomputed whenever a divergent tail is
// truncated). A proposal superseded by a later committed ReqID of its
// origin is reported in Ready.Dropped.
//
// Log lines go to Config.Logger with the component names of the demo guide
// (election.N, failure.N, ordering.N, storage.N, membership.N, node.N):
// "Leader timeout!", "Starting election for term N", "Received COORDINATOR
// from node_X", "Became LEADER for term N", "New coordinator: node_X,
// term=N", "Requesting catch-up from seq_no=N", and at debug "Sent
// heartbeat to N peers", "Heartbeat received from leader, term=N",
// "Buffered out-of-order message seq_no=N (expected M)".
//
// Safety (see the package tests and the simulation):
//   - terms are persisted and monotonic; a node rejects messages of older
//     terms and answers them with its term, so stale leaders step down;
//   - a coordinator becomes leader only after a majority acknowledged its
//     term (one acknowledgement per term per node, persisted);
//   - a node that heard from a live leader within ElectionTicks neither
//     starts an election nor acknowledges a rival (pre-vote + stickiness);
//   - a new leader first syncs to the most advanced log of its majority
//     (compared by (AcceptedTerm, LastIndex), as Zab's currentEpoch) and
//     only then sequences new entries;
//   - an entry is committed only when a majority of nodes synced to the
//     current term has it on stable storage;
//   - a leader that has not heard from a majority within ElectionTicks
//     steps down (check quorum);
//   - a node whose log lost acknowledged entries (HardState.MustReach) is
//     not trusted in elections until repaired.
//
// See election.go (bully election), leader.go (synchronisation, sequencing,
// replication), follower.go and log.go.
package consensus

import "errors"

// NodeID identifies a member. 0 means "none".
type NodeID uint64

// EntryType tells the caller how to interpret Entry.Data.
type EntryType uint8

const (
	// EntryNormal carries a published message; Data is opaque to the core.
	EntryNormal EntryType = iota
	// EntryMembership carries an encoded membership change.
	EntryMembership
)

// Entry is one record of the replicated log. Index is the global sequence
// number: contiguous from the log's first index, never reused once committed.
type Entry struct {
	Index  uint64
	Term   uint64 // term of the leader that sequenced it
	Type   EntryType
	Origin NodeID // the node that accepted the client's publish
	ReqID  uint64 // increasing per Origin; (Origin, ReqID) makes retries idempotent
	Time   int64  // unix ms, stamped by the leader when it sequences the entry (see Node.SetTime)
	Data   []byte
}

// HardState must be persisted whenever Ready returns a new one.
type HardState struct {
	Term         uint64 // highest term seen
	Vote         NodeID // coordinator acknowledged in Term (0 = none)
	AcceptedTerm uint64 // term of the leader whose history this log last synced to
	Commit       uint64 // highest index known committed
	// MustReach > 0 marks a log that lost acknowledged entries (the caller
	// truncated it after detecting corruption; set it to the last index the
	// log held before, or math.MaxUint64 if unknown). Until the log is
	// whole again — it synced with a new leader, or caught up to MustReach
	// from the leader of its AcceptedTerm — the node neither acknowledges
	// coordinators nor serves its log to one, so a corrupted minority is
	// never trusted. The core clears it (in a Ready's HardState).
	MustReach uint64
}

// Proposal is client work submitted at any node.
type Proposal struct {
	Origin NodeID
	ReqID  uint64
	Type   EntryType
	Data   []byte
}

// Role of a node.
type Role uint8

const (
	Follower Role = iota
	Candidate
	Leader
)

func (r Role) String() string {
	switch r {
	case Leader:
		return "leader"
	case Candidate:
		return "candidate"
	default:
		return "follower"
	}
}

// Storage is the caller's read-only view of the persisted log. The core
// calls it synchronously (to serve catch-up and sync); it must reflect every
// Ready the caller has persisted.
type Storage interface {
	// FirstIndex is the first index still held (after retention); 1 for a
	// log that has never been truncated at the front.
	FirstIndex() uint64
	// LastIndex is the last persisted index, FirstIndex()-1 if empty.
	LastIndex() uint64
	// Entries returns entries [lo, hi), at least one if lo < hi, stopping
	// early once maxBytes of Data is reached.
	Entries(lo, hi uint64, maxBytes int) ([]Entry, error)
	// Term returns the term of entry i. It should also answer for
	// FirstIndex()-1 when the log was trimmed by retention (keep that term
	// aside), or followers cannot catch up from the new first entry.
	Term(i uint64) (uint64, error)
}

// ErrCompacted is returned by Storage when an index is before FirstIndex.
var ErrCompacted = errors.New("consensus: entry compacted away by retention")

// ErrUnavailable is returned by Storage for an index beyond the log.
var ErrUnavailable = errors.New("consensus: entry not in the log")

// ErrNoLeader is returned by Propose when no leader is known to forward to.
var ErrNoLeader = errors.New("consensus: no leader")
