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
//  2. Send rd.Messages. They may leave at once, before (or while) this
//     Ready is persisted: they claim nothing about this node's disk (a
//     leader's appends and heartbeats, forwarded proposals, bully
//     probes). The core decides which messages these are — the caller
//     must not move any other message here.
//  3. If rd.HardState is non-nil, persist it (fsync it if rd.MustSync; a
//     change of Commit alone need not be synced). If rd.ConfState is
//     non-nil, persist it too, in the same step (MustSync is then set):
//     it is the committed configuration, and the last one persisted is
//     Config.ConfState at the next start.
//  4. If rd.TruncateFrom > 0, remove every log entry with Index >=
//     rd.TruncateFrom (an uncommitted divergent tail). If rd.ResetLog > 0
//     (TruncateFrom is then 0), discard the whole log and restart it empty
//     so that its next entry is rd.ResetLog: FirstIndex() = ResetLog,
//     LastIndex() = ResetLog-1, and Term(ResetLog-1) answers
//     rd.ResetLogTerm if non-zero (keep it aside as after retention; 0
//     means unknown, answer ErrCompacted). Record ResetLog-1 as applied:
//     entries before it are never delivered on this node. The reset must
//     be atomic under crashes (the old log or the new empty one) and must
//     follow step 3 (its HardState may raise MustReach). Then append
//     rd.Entries to the log and fsync. When set, rd.Entries[0].Index ==
//     rd.TruncateFrom (or rd.ResetLog). Without a reset, steps 3 and 4 may
//     happen in either order (a crash between them is safe).
//  5. Only once steps 3 and 4 are durable, send rd.MessagesAfterPersist
//     (acknowledgements, votes, sync answers: each claims this node's
//     state is on disk). Sending them earlier breaks durability and
//     elections (see Config.TestOnlyBreakDurability). All sends are best
//     effort: the core tolerates loss, duplication, delay and reordering.
//  6. Apply rd.Committed in order (they are contiguous and never retracted),
//     and answer the clients of the proposals in rd.Dropped with a
//     retryable error.
//  7. n.Advance(rd).
//
// Between Ready and Advance the caller may keep calling Tick, Step, Propose,
// Cancel, ProposeMembership and TransferLeadership (their effects appear in
// the next Ready), but not Ready.
//
// Membership (membership.go, transfer.go):
//   - A cluster bootstraps from Config.Members (the static list: all
//     voters). A node that joins an existing cluster starts with
//     Config.Join (empty log and state): it never campaigns and waits to
//     be added. Afterwards the configuration lives in the log: on every
//     restart pass the last persisted Ready.ConfState as Config.ConfState
//     (Members is then ignored).
//   - Changes are made at the leader with ProposeMembership, one at a
//     time (ErrChangePending until the previous one committed):
//     AddLearner(id) for a newcomer (it receives the log, does not vote,
//     does not count toward commit or elections, never campaigns), then
//     PromoteLearner(id) once Status().Members shows it caught up (Lag
//     small: the runtime decides when; a learner promoted while far
//     behind costs availability, not safety), RemoveMember(id) for a
//     leaving or dead member. Route a JOIN (or a removal request) to
//     Status().Leader; other nodes answer ErrNotLeader.
//   - A change takes effect on each node when its entry is appended, and
//     is committed like any entry: Ready.ConfState shows the new
//     committed configuration, and the EntryMembership entry comes out in
//     Ready.Committed (Data: DecodeMembership). Apply it by updating
//     peer connections (connect to added members, drop removed ones);
//     it is not a message: it has no sequence number of its own.
//   - Sequence numbers: use Entry.Seq, not Entry.Index, as the message
//     number users see (PUBLISH replies, delivery, per-channel index,
//     XRANGE IDs). Membership entries take a log index but no Seq, so
//     messages stay numbered 1, 2, 3... Seq == Index until the first
//     change, so a cluster that never changes membership sees no
//     difference. Keep the log itself keyed by Index (contiguous);
//     Ready.Committed's Seq is authoritative (store it with the entry or
//     keep the few membership indexes to map Seq <-> Index).
//   - A node that learns it was removed (its configuration, committed,
//     no longer lists it: Status().Voter false and not a learner) stops
//     campaigning by itself; its messages are ignored by members. A
//     graceful leave: TransferLeadership first if leading, then have the
//     leader RemoveMember it, and exit once a ConfState without it is
//     persisted (or after a bounded wait). A leader may also remove
//     itself: it steps down once that commits, handing over with
//     MsgTimeoutNow.
//   - TransferLeadership(to) (to = 0: the most up-to-date voter) hands
//     leadership over without an election timeout (Raft §3.10): while it
//     lasts the leader sequences nothing (Status().Sequencing false;
//     proposals wait), and it gives up after ElectionTicks. Use it on
//     SIGTERM of a leader and before a leader leaves.
//
// Everything is single-threaded: no method may be called concurrently.
// Transports should keep per-peer FIFO order (TCP does); lost or
// reordered messages only cost retries.
//
// Retention: the caller may drop the oldest log entries (Storage's
// FirstIndex rises), but only entries that are committed and applied, and
// only entries older than any proposal can stay pending (the caller
// cancels proposals after its publish timeout): a leader forgets the
// ReqIDs of entries it no longer holds once it restarts, so a retry of a
// proposal sequenced before its first index would be sequenced again.
// Storage.Term(FirstIndex()-1) should still answer (keep that term aside):
// if it cannot (ErrCompacted) the core copes from the terms it remembers,
// but after a restart of the leader a follower whose log ends exactly
// there may have to restart its log needlessly. A follower that needs
// entries the leader no longer holds restarts its log at the leader's
// first index (Ready.ResetLog); the messages before it are not delivered
// on that node — retention is the user's trade of history for space. Its
// pending proposals stop being tracked then (they may have committed
// unseen): answer those that commit, time out the rest as unknown.
//
// Lost logs: a node whose disk lost entries it may have acknowledged must
// restart with Config.MustReach set (see HardState.MustReach): the old
// last index after a corrupt record, math.MaxUint64 when even that is
// unknown. A node whose hard state was lost too (a replaced disk; start
// it with a zero HardState and MustReach = math.MaxUint64) must stay down
// for at least 2×ElectionTicks: a forgotten vote is unsafe in any
// protocol, and by then every leader or coordinator it acknowledged has
// won, lost or stepped down.
//
// Exactly-once publishing: every Proposal carries (Origin, ReqID) with
// ReqIDs increasing per Origin, also across restarts (seed them from the
// wall clock). A follower forwards its proposals to the leader and
// re-forwards them to every new leader until it sees them committed; the
// leader appends a proposal only if its ReqID exceeds the highest ReqID of
// that origin already in its log (recomputed whenever a divergent tail is
// truncated). A node proposes only for itself (Origin = its ID), and a
// leader refuses (Step returns ErrBadMessage) a forward whose proposals
// are of another origin than the peer it came from, or whose ReqIDs lie
// more than 24 hours (in nanoseconds) beyond the leader's clock as given
// by SetTime — one implausible ReqID would otherwise raise the origin's
// high-water mark so far that every later, honest ReqID counted as a
// duplicate. So: seed ReqIDs from the wall clock in nanoseconds (not
// further ahead), call SetTime on every node, and keep clocks within a
// day of each other. Without SetTime there is no such bound.
//
// Per-origin order: the proposals of one origin commit in the order they
// were proposed (ReqID order), so a client pipelining PUBLISHes sees them
// delivered in order, across failovers, synchronisation phases and lost or
// reordered messages: forwarding is a stream the leader refuses to extend
// past a gap (see forward.go). A proposal superseded by a later committed
// ReqID of its origin is reported in Ready.Dropped; that only happens if
// the caller breaks the ReqID rule (or proposes for one origin at several
// nodes), never to a proposal that is still pending and not cancelled.
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
//     not trusted in elections until repaired; the leader notices a
//     follower whose log regressed below what it acknowledged (every
//     answer carries the follower's real last index) and re-sends;
//   - a log reset (retention) never drops a committed entry the node
//     holds, and raises MustReach if it may drop an acknowledged one;
//   - formation: a leader that has sequenced nothing (empty log) yields to
//     a higher ID (see election.go); once it sequenced anything, the
//     stickiness above applies;
//   - membership changes are single-server, one at a time, effective when
//     appended; commits and elections count only voters of the
//     configuration in force; a voter refuses a coordinator whose
//     configuration differs and whose (AcceptedTerm, configuration) is
//     older than its own (election.go), and nodes that know they are not
//     members take no part;
//   - Step refuses (ErrBadMessage) what no correct peer sends, and
//     impossible internal states panic instead of being carried on from.
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
	// EntryLost stands for a message no member held intact any more, put
	// in its place when an operator accepted the loss (Node.AcceptLoss):
	// it keeps the message's index and sequence number (nothing after it
	// is renumbered) and carries no data; nothing is delivered for it.
	EntryLost
)

// Entry is one record of the replicated log. Index is its log position:
// contiguous from the log's first index, never reused once committed.
// Seq is the message sequence number users see (see membership.go): it
// counts EntryNormal entries only, so membership entries consume none.
type Entry struct {
	Index uint64
	// Seq is filled in by the core on every entry it hands out
	// (Ready.Entries, Ready.Committed): for EntryNormal, the global
	// message sequence number (1, 2, 3, ... with no gaps); for
	// EntryMembership, the Seq of the last message before it (so Seq is
	// non-decreasing along the log). Seq == Index until the first
	// membership change. It is derived from the log, never sent on the
	// wire, and ignored on input: the caller may store it with the entry
	// or recompute it.
	Seq    uint64
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
	// log held before, or math.MaxUint64 if unknown — always when the hard
	// state was lost too). Until the log is whole again the node neither
	// acknowledges coordinators, nor campaigns, nor serves its log to one,
	// so a corrupted minority is never trusted. Whole again means: it
	// synced with a leader of a newer term than its AcceptedTerm, or it
	// holds, from the leader of its AcceptedTerm, everything up to
	// MustReach — for math.MaxUint64, up to that leader's last index when
	// it first heard from this incarnation (see maybeRepaired). The core
	// clears it (in a Ready's HardState); the core may also raise it (a
	// log reset that may drop acknowledged entries).
	MustReach uint64
	// Acked is how far this node's log reached, damaged positions
	// included, as of this HardState: everything up to it was held (and
	// may have been acknowledged). AckedTerm is the term of entry Acked
	// and AckedTermStart the first index of that term's run ending at
	// Acked (0: unknown). The core maintains them; they change with most
	// Readies that append and need no fsync (a process crash keeps them;
	// they guard against media faults of synced data). A log found
	// shorter than Acked at restart lost an acknowledged tail: the
	// positions beyond it count as damaged, not absent (see Faulty).
	Acked, AckedTerm, AckedTermStart uint64
	// AckedPrev are the term runs before AckedTermStart, latest first
	// ({0, 0}: none known): a lost tail that spans term changes keeps
	// its terms, which a recovering leader needs to tell the right copy.
	AckedPrev [3]TermRun
}

// TermRun: entries from Start on (up to the next run) have Term.
type TermRun struct{ Start, Term uint64 }

// Faulty names a damaged record of the caller's log (Config.Faulty): the
// log once held an entry at Index (its term, if the caller knows it for
// sure, else 0), but it can no longer be read. "Damaged is not absent":
// the node keeps reporting the position as held (in elections and to a
// recovering leader) until it is repaired from an intact copy on some
// member; see recover.go.
type Faulty struct {
	Index, Term uint64
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
// calls it synchronously (to serve catch-up and sync, and to hand out
// committed entries); it must reflect every Ready the caller has
// persisted. Entries may defer a read with ErrReadPending.
type Storage interface {
	// FirstIndex is the first index still held (after retention); 1 for a
	// log that has never been truncated at the front.
	FirstIndex() uint64
	// LastIndex is the last persisted index, FirstIndex()-1 if empty.
	LastIndex() uint64
	// Entries returns entries [lo, hi), at least one if lo < hi, stopping
	// early once maxBytes of Data is reached.
	//
	// Entries may return ErrReadPending instead of reading the disk on the
	// caller's loop: "not in memory now; I am fetching [lo, hi) in the
	// background". The core then sends nothing for that read (it is not
	// an error), remembers who waits, and retries when the caller calls
	// Node.ReadReady once the fetch is done (and, as a fallback, at the
	// next heartbeat). Serve the retried call from what was fetched.
	// (Only NewNode needs a synchronous answer: it scans the log once.)
	Entries(lo, hi uint64, maxBytes int) ([]Entry, error)
	// Term returns the term of entry i. It should also answer for
	// FirstIndex()-1 when the log was trimmed by retention or reset (keep
	// that term aside); ErrCompacted there is tolerated (the committed
	// prefix matches without it; followers are reset instead of probed).
	Term(i uint64) (uint64, error)
}

// PrefixSummary is what NewNode would otherwise learn by reading every
// entry of a committed prefix of the log: the highest ReqID per origin,
// where the membership entries are, and where each term starts. A Storage
// that keeps it (it sees every entry as it is appended and committed, or
// restores it from a checkpoint) implements Summarizer, and NewNode then
// reads only the membership entries and the entries after Upto: a restart
// with millions of entries does not read them all a second time.
type PrefixSummary struct {
	// Upto: the summary covers the log's entries up to this index, all
	// applied (so committed, even if the hard state's commit, saved
	// lazily, is lower).
	Upto       uint64
	MaxReqID   map[NodeID]uint64 // highest ReqID per origin
	Membership []uint64          // indexes of membership entries, ascending
	Terms      []TermStart       // where each term starts, ascending (the latest runs at least)
}

// TermStart: the entries from Index up to the next TermStart have Term.
type TermStart struct{ Index, Term uint64 }

// Summarizer is optionally implemented by a Storage (see PrefixSummary).
type Summarizer interface {
	PrefixSummary() (PrefixSummary, bool)
}

// ErrCompacted is returned by Storage when an index is before FirstIndex.
var ErrCompacted = errors.New("consensus: entry compacted away by retention")

// ErrUnavailable is returned by Storage for an index beyond the log.
var ErrUnavailable = errors.New("consensus: entry not in the log")

// ErrReadPending may be returned by Storage.Entries: the entries are being
// read in the background; the caller calls Node.ReadReady when they are
// in memory. It keeps catch-up reads (a follower lagging a million
// messages) off the loop that ticks, heartbeats and votes.
var ErrReadPending = errors.New("consensus: entries are being read in the background")

// ErrNoLeader is returned by Propose when no leader is known to forward to.
var ErrNoLeader = errors.New("consensus: no leader")
