package consensus

import (
	"errors"
	"slices"
	"strconv"
)

// Config configures a Node. Members, Storage, HeartbeatTicks and
// ElectionTicks are required; the rest have defaults.
type Config struct {
	ID NodeID
	// Members is the initial membership (all voters), including ID: the
	// static --peers list of a cluster bootstrapped with it. It is used
	// only when ConfState has no voters and Join is false. Membership then
	// changes through committed EntryMembership entries (ProposeMembership).
	Members []NodeID
	// MemberAddrs are the initial members' addresses (optional; carried
	// in the configuration, see ConfState.Addrs).
	MemberAddrs map[NodeID]string
	// ConfState is the committed configuration as last persisted from
	// Ready.ConfState (zero for a fresh node: Members or Join apply). The
	// node restores the configuration in force from it and the
	// membership entries of its log after ConfState.Index.
	ConfState ConfState
	// Join starts a fresh node (empty log, zero HardState and ConfState)
	// that is not a member yet: it knows no configuration, never
	// campaigns, and waits for a leader to add it (AddLearner) and
	// replicate the log to it, from which it learns the configuration.
	// Members is ignored.
	Join bool
	// Storage is a read-only view of the caller's persisted log.
	Storage Storage
	// HardState is the state as last persisted (zero for a fresh node).
	HardState HardState
	// Applied is the last index the caller has already applied (e.g. from
	// its WAL on restart): Ready.Committed starts after it, so every
	// committed entry is handed out once per node lifetime.
	Applied uint64
	// MustReach is merged into HardState.MustReach (see there).
	MustReach uint64
	// Faulty lists the records of Storage found damaged at load (by
	// checksum), in any order, each within [FirstIndex, LastIndex]. The
	// caller keeps every record (intact ones after a damaged one are
	// copies a recovering leader may need) and never serves a damaged
	// one: the core reads neither Entries nor Term at these indexes. The
	// node's log then ends before the first damaged position; the rest,
	// up to HardState.Acked, is held as damaged (recover.go).
	Faulty []Faulty

	// HeartbeatTicks: the leader sends heartbeats every this many ticks.
	HeartbeatTicks int
	// ElectionTicks: a follower that has not heard from a leader for this
	// many ticks logs "Leader timeout!" and starts a bully election; a
	// leader that has not heard from a majority for this many ticks steps
	// down. A node that heard from a live leader within ElectionTicks
	// refuses to acknowledge a rival coordinator. Must exceed
	// HeartbeatTicks.
	ElectionTicks int
	// AliveTicks is how long a node waits for MsgAlive from higher IDs
	// before taking over (default: max(1, ElectionTicks/5)); roughly one
	// round trip.
	AliveTicks int

	// MaxBatchBytes caps the entry payload of one MsgApp / MsgSyncResp /
	// MsgForward (default 1 MiB). At least one entry is always sent.
	MaxBatchBytes int
	// MaxInflight is the number of pipelined, unacknowledged MsgApp per
	// follower (default 64).
	MaxInflight int
	// MaxCommittedBytes caps the payload of one Ready.Committed (default
	// 8 MiB).
	MaxCommittedBytes int
	// MaxPending caps the proposals this node tracks until they commit
	// (default 65536); Propose returns ErrBacklog beyond it.
	MaxPending int

	// Rand is the only source of randomness (election jitter and the
	// repair token of a node that lost its log). Required: the simulation
	// passes a seeded source; a real node must pass one seeded differently
	// on every start (a *math/rand.Rand seeded from the clock does), or a
	// restarted node would draw the same repair token as before.
	Rand Rand
	// Logger receives the core's log lines (optional).
	Logger Logger

	// TestOnlyBreakDurability BREAKS SAFETY: the core puts every message,
	// acknowledgements and votes included, in Ready.Messages (sendable
	// before the Ready is persisted) instead of Ready.MessagesAfterPersist.
	// A crash before the fsync then loses state that peers were told is
	// durable: committed entries can be lost and two leaders can win one
	// term. It exists only so that simulations (this package's, and the
	// runtime's) can prove that their checkers catch exactly that. Never
	// set it outside tests.
	TestOnlyBreakDurability bool
}

// Rand is the randomness the core needs; *math/rand.Rand satisfies it.
// The core keeps no global random state, so a seeded Rand replays exactly.
type Rand interface {
	Intn(n int) int
	Uint64() uint64
}

// Level of a log line.
type Level int8

const (
	LevelDebug Level = iota - 1
	LevelInfo
	LevelWarn
	LevelError
)

func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "DEBUG"
	case LevelInfo:
		return "INFO"
	case LevelWarn:
		return "WARN"
	default:
		return "ERROR"
	}
}

// Logger receives log lines. Component is one of "election.N",
// "failure.N", "ordering.N", "storage.N", "membership.N", "node.N" (N is
// the node ID); format and args are fmt-style.
type Logger interface {
	Logf(level Level, component, format string, args ...any)
}

// Errors returned by NewNode, Propose and Cancel.
var (
	ErrInvalidConfig = errors.New("consensus: invalid config")
	// ErrBacklog is returned by Propose when MaxPending proposals are
	// already waiting to commit (answer the client with -TRYAGAIN).
	ErrBacklog = errors.New("consensus: too many pending proposals")
	// ErrForeignOrigin is returned by Propose for a proposal whose Origin
	// is neither zero nor this node's ID (peers refuse forwarded
	// proposals of another origin than the sender).
	ErrForeignOrigin = errors.New("consensus: proposal origin is not this node")
)

func (c *Config) validate() error {
	bad := func(why string) error { return errors.Join(ErrInvalidConfig, errors.New(why)) }
	switch {
	case c.ID == 0:
		return bad("ID must be non-zero")
	case len(c.ConfState.Voters) == 0 && !c.Join && !slices.Contains(c.Members, c.ID):
		return bad("Members must include ID " + strconv.FormatUint(uint64(c.ID), 10))
	case len(c.ConfState.Voters) > 0 && c.Join:
		return bad("Join is for a node without a configuration")
	case c.Storage == nil:
		return bad("Storage is required")
	case c.Rand == nil:
		return bad("Rand is required")
	case c.HeartbeatTicks <= 0:
		return bad("HeartbeatTicks must be positive")
	case c.ElectionTicks <= c.HeartbeatTicks:
		return bad("ElectionTicks must exceed HeartbeatTicks")
	case c.HardState.AcceptedTerm > c.HardState.Term:
		return bad("HardState.AcceptedTerm exceeds Term")
	}
	if slices.Contains(c.Members, 0) || slices.Contains(c.ConfState.Voters, 0) || slices.Contains(c.ConfState.Learners, 0) {
		return bad("member ID 0 is reserved")
	}
	if c.AliveTicks <= 0 {
		c.AliveTicks = max(1, c.ElectionTicks/5)
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 64
	}
	if c.MaxCommittedBytes <= 0 {
		c.MaxCommittedBytes = 8 << 20
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 16
	}
	return nil
}
