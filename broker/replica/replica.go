// Package replica is the runtime of one cluster member: it owns the
// consensus core (consensus.Node) and the node's store, feeds the core
// ticks, peer messages and local publishes, persists what the core asks,
// sends what it may send, and applies what it commits.
//
// It promises:
//   - a publish is answered (Publish's done callback, exactly once) with
//     its receivers only after it is committed — durable on a majority —
//     and applied here; otherwise with a typed error saying whether it
//     certainly failed (ErrNoLeader, ErrNotSequenced, *StorageError,
//     ErrShuttingDown) or may still be delivered (ErrUnconfirmed,
//     ErrStoppedUnconfirmed);
//   - committed messages are indexed in the store, then handed to the
//     Applier, in sequence order, each once;
//   - nothing a message claims about this node's state leaves before that
//     state is durable (the core decides which messages may leave early);
//   - after a failed write or fsync nothing unpersisted is acknowledged:
//     the replica stops participating and reopens the log as after a crash.
//
// Redis reply bytes are not produced here: the front end maps outcomes to
// replies.
package replica

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/peer"
	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// tick is the consensus core's unit of time.
const tick = 10 * time.Millisecond

// Config is what a replica needs to run.
type Config struct {
	ID uint64
	// Members is the static membership (--peers): every member's id, this
	// one included, and MemberAddrs their addresses. Empty: a new cluster
	// of this node alone, unless Seeds are given. Once the membership has
	// changed, the configuration on disk is used instead.
	Members     []uint64
	MemberAddrs map[uint64]string
	// Seeds are members to join through (--seed): a node with an empty
	// data directory and seeds joins their cluster. A node that already
	// belongs to a cluster contacts every member it knows, and the seeds
	// too.
	Seeds map[uint64]string
	// Addr is where the other members reach this node (announced when it
	// joins).
	Addr    string
	DataDir string
	// NoSync acknowledges publishes before they are fsynced ("fast" mode).
	NoSync            bool
	HeartbeatInterval time.Duration
	LeaderTimeout     time.Duration
	PublishTimeout    time.Duration // how long a publish waits for its commit
	RetainBytes       int64
	RetainAge         time.Duration
	SegmentBytes      int
	// RejoinEmpty: with no state on disk, take no part in elections until
	// the leader has refilled the log (a replaced or wiped disk).
	RejoinEmpty bool
	Log         logging.Node
	// Disk holds the log and hard state; nil means the directory DataDir.
	Disk store.Disk
	// Observer, if set, receives latency and batch-size measurements.
	Observer Observer

	now             func() time.Time // the simulation's clock; nil: time.Now
	breakDurability bool             // test only: consensus.Config.TestOnlyBreakDurability
	small           bool             // the simulation's many replicas: small queues and cache
}

// Transport carries consensus messages to peers, best effort: it may drop
// (the core retransmits) but must not block.
type Transport interface {
	Send(msgs []consensus.Message)
	// SendControl sends a membership request; false if there is no link.
	SendControl(to uint64, c peer.Control) bool
	// SetPeers sets the nodes to keep links to (id -> address).
	SetPeers(peers map[uint64]string)
	Close() error
}

// Applier receives committed messages in sequence order, once each, and
// returns how many local subscribers received it (PUBLISH's reply).
type Applier interface {
	Deliver(m *store.Message) int
}

// BatchApplier is an Applier that takes a whole committed batch at once,
// so that it can fan the batch out to each subscriber with one lock, one
// wake-up and one write instead of one per message (the broker's
// registry). It sets receivers[i] to message i's count; len(receivers) ==
// len(ms).
type BatchApplier interface {
	Applier
	DeliverBatch(ms []*store.Message, receivers []int)
}

// Stats are the replica's counters (read them with Load).
type Stats struct {
	MessagesApplied   atomic.Int64 // committed messages handed to the Applier
	PublishesAcked    atomic.Int64 // local publishes answered with success
	PublishErrors     atomic.Int64 // local publishes answered with an error
	LogWrites         atomic.Int64 // batches written (one fsync each)
	LogEntriesWritten atomic.Int64
	LogWriteNanos     atomic.Int64

	// PublishErrorsBy splits PublishErrors by FailReason.
	PublishErrorsBy [NumFailReasons]atomic.Int64
	// Deliveries counts messages handed to local subscribers, one per
	// receiver.
	Deliveries atomic.Int64
	// LeaderChanges counts the times this node saw a new leader.
	LeaderChanges atomic.Int64
}

// Replica is one member's runtime. Create it with Open, run it with Start.
type Replica struct {
	cfg Config
	id  consensus.NodeID
	app Applier
	// receivers is apply's scratch: each message's receiver count.
	receivers []int
	log       logging.Node
	stats     Stats

	disk      store.Disk
	storeP    atomic.Pointer[store.Store] // replaced when the log is reopened
	core      *consensus.Node
	hs        store.DiskState
	hsSaved   time.Time
	hsLagging *store.DiskState // a commit-only change not written yet (see flushState)

	proposals chan *pubReq
	inbox     chan consensus.Message
	transport Transport // nil for a one-member cluster

	submitting atomic.Int64 // Publish calls between their stop check and their send

	// Persistence runs beside the loop (see ready.go): the loop hands a
	// Ready to persist and goes on ticking and stepping; persisted reports
	// back. dispatch is the hand-off (a channel send to the storage
	// goroutine; the simulation queues it instead).
	inflight *consensus.Ready
	// appliedEarly: the Ready in flight's committed entries are already
	// applied (handleReady).
	appliedEarly bool
	dispatch     func(rd *consensus.Ready)
	jobs         chan *consensus.Ready
	persisted    chan error
	now          func() time.Time
	// Catch-up reads run beside the loop too (store/catchup.go): spawnRead
	// starts one, readc wakes the loop to tell the core it is done.
	spawnRead func(func())
	readc     chan struct{}

	reqID     uint64
	ticks     uint64
	lastBatch int                  // size of the previous proposal batch
	parked    []*pubReq            // waiting for a leader to be known
	props     []consensus.Proposal // propose's scratch
	applyMs   []*store.Message     // apply's scratch
	applyEs   []*consensus.Entry   // apply's scratch
	waiting   map[uint64]*pubReq
	order     []*pubReq // by ReqID, to expire the oldest first
	broken    error     // a storage failure; publishes fail until recovery
	// lastLead is the leader last seen, for Stats.LeaderChanges.
	lastLead consensus.NodeID

	statusMu     sync.Mutex
	status       consensus.Status
	statusBroken error
	conf         [2]consensus.ConfState // in force, committed (see Membership)
	learned      map[uint64]string      // addresses announced by nodes that dialled this one

	// Membership (membership.go).
	stateMu    sync.Mutex // r.hs and the state file: the storage goroutine and adoptCluster write it
	clusterID  atomic.Pointer[string]
	ctl        chan ctlMsg
	calls      chan func()
	peers      map[uint64]string               // what the transport was last given
	joins      map[uint64]*joinReq             // at the leader: joins in progress
	removals   map[uint64]bool                 // at the leader: removals to propose
	removeAcks map[uint64][]func(peer.Control) // at the leader: who waits for a removal to commit
	removed    map[uint64]bool                 // removals a leader acknowledged
	nextJoin   time.Time                       // at a joining node: when to send JOIN again
	joinTries  int
	joinedVia  map[uint64]bool // seeds already logged as tried

	lock      io.Closer // one process per disk
	rejoining bool      // started empty with RejoinEmpty
	probing   bool      // started empty as a static member: ask the peers first (wiped.go)
	lostDisk  bool      // the peers said so: reopen as with RejoinEmpty
	started   atomic.Bool
	stopc     chan struct{}
	donec     chan struct{}
	stopOnce  sync.Once
}

// Open locks the data directory, recovers the log and hard state, and
// builds the consensus core from them.
func Open(cfg Config, app Applier) (*Replica, error) {
	if cfg.Disk == nil {
		cfg.Disk = store.DirDisk(cfg.DataDir)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	lock, err := cfg.Disk.Lock()
	if err != nil {
		return nil, err
	}
	queue, inbox := 1<<16, 1<<12
	if cfg.small {
		queue, inbox = 1, 1
	}
	r := &Replica{
		cfg:        cfg,
		id:         consensus.NodeID(cfg.ID),
		app:        app,
		log:        cfg.Log,
		disk:       cfg.Disk,
		proposals:  make(chan *pubReq, queue),
		inbox:      make(chan consensus.Message, inbox),
		waiting:    map[uint64]*pubReq{},
		lock:       lock,
		stopc:      make(chan struct{}),
		donec:      make(chan struct{}),
		jobs:       make(chan *consensus.Ready),
		persisted:  make(chan error, 1),
		now:        cfg.now,
		spawnRead:  func(f func()) { go f() },
		readc:      make(chan struct{}, 1),
		ctl:        make(chan ctlMsg, 256),
		calls:      make(chan func()),
		joins:      map[uint64]*joinReq{},
		removals:   map[uint64]bool{},
		removeAcks: map[uint64][]func(peer.Control){},
		removed:    map[uint64]bool{},
		joinedVia:  map[uint64]bool{},
	}
	r.dispatch = func(rd *consensus.Ready) { r.jobs <- rd }
	if err := r.open(); err != nil {
		lock.Close()
		return nil, err
	}
	return r, nil
}

// Store is the replica's current store (replaced after a storage failure).
func (r *Replica) Store() *store.Store { return r.storeP.Load() }

// Stats returns the replica's counters.
func (r *Replica) Stats() *Stats { return &r.stats }

// open (re)loads the WAL and hard state and builds a fresh consensus core
// from them, exactly as after a process restart.
func (r *Replica) open() error {
	cfg := &r.cfg
	empty := r.disk.Empty()
	hs, err := r.disk.LoadState()
	if err != nil {
		return err
	}
	if hs.Repaired != "" {
		r.log.Logf(logging.Warn, "storage", "Damaged state file: %s", hs.Repaired)
	}
	if (cfg.RejoinEmpty && empty) || r.lostDisk {
		r.log.Logf(logging.Warn, "storage", "Rejoining with an empty disk: not voting until the leader has refilled this node's log")
		hs.MustReach = math.MaxUint64
		r.rejoining = true
	}
	l, rep, err := r.disk.OpenLog(wal.Options{NoSync: cfg.NoSync, SegmentSize: cfg.SegmentBytes, RetainBytes: cfg.RetainBytes, RetainAge: cfg.RetainAge})
	if err != nil {
		return fmt.Errorf("open log in %s: %w", r.disk, err)
	}
	if rep.DroppedBytes > 0 {
		r.log.Logf(logging.Warn, "storage", "Repaired torn log tail: dropped %d bytes (%d invalid records) after seq_no=%d", rep.DroppedBytes, rep.DroppedRecords, l.LastIndex())
	}
	for _, f := range rep.Reframed {
		r.log.Logf(logging.Warn, "storage", "Damaged length prefix in the log: %v", f)
	}
	st := r.newStore(l)
	if hs.BaseIndex+1 == l.FirstIndex() {
		st.SetBase(hs.BaseIndex, hs.BaseTerm)
	}
	boot, err := r.bootstrap(&hs, empty)
	if err != nil {
		l.Close()
		return err
	}
	cluster := boot.clustered()
	r.probing = empty && !r.rejoining && cluster && !boot.join && len(boot.members) > 1
	// Damaged records are kept, never served, and reported to the core:
	// in a cluster as positions this node held (recovered from an intact
	// copy on some member; intact records after them are copies too), on
	// a lone node as before (reads of their range report the damage).
	loaded, corrupt, err := st.Load(hs.Commit, false, r.id)
	if cluster && err == nil && len(corrupt) > 0 && hs.Commit >= corrupt[0] {
		// Apply (and index) again from the first damaged record once the
		// leader refilled it: index only the intact prefix now.
		hs.Commit = corrupt[0] - 1
		st = r.newStore(l)
		if hs.BaseIndex+1 == l.FirstIndex() {
			st.SetBase(hs.BaseIndex, hs.BaseTerm)
		}
		loaded, corrupt, err = st.Load(hs.Commit, false, r.id)
	}
	var faulty []consensus.Faulty
	terms := map[uint64]uint64{} // the store knows some damaged entries' terms for sure
	for _, f := range st.Faults() {
		terms[f.Index] = f.Term
	}
	for _, i := range corrupt {
		seq := st.SeqOf(i-1) + 1 // (its own seq is unreadable: the one after the last readable)
		if cluster {
			r.log.WithSeq(seq).Logf(logging.Error, "storage", "Corrupt record at seq_no=%d: held as damaged, to be recovered from an intact copy on a peer", seq)
			faulty = append(faulty, consensus.Faulty{Index: i, Term: terms[i]})
		} else {
			r.log.WithSeq(seq).Logf(logging.Error, "storage", "Corrupt record at seq_no=%d: it will be reported as damaged, never served", seq)
		}
	}
	if cluster && hs.Acked > l.LastIndex() {
		r.log.Logf(logging.Error, "storage", "Log ends at index %d but this node had acknowledged up to %d: the rest is held as lost, to be recovered from peers", l.LastIndex(), hs.Acked)
	}
	if err != nil {
		l.Close()
		return fmt.Errorf("load log: %w", err)
	}
	r.log.Logf(logging.Info, "storage", "Loaded %d messages from log", loaded)
	last := st.SeqOf(l.LastIndex())
	r.log.Logf(logging.Info, "ordering", "Set last_seq=%d, next_expected=%d", last, last+1)
	hbTicks := max(int(cfg.HeartbeatInterval/tick), 1)
	elTicks := max(int(cfg.LeaderTimeout/tick), hbTicks+1)
	core, err := consensus.NewNode(consensus.Config{
		ID:             r.id,
		Members:        boot.members,
		MemberAddrs:    boot.addrs,
		ConfState:      boot.conf,
		Join:           boot.join,
		Storage:        st,
		HardState:      hs.Core(),
		Applied:        max(st.Applied(), l.FirstIndex()-1),
		MustReach:      hs.MustReach,
		Faulty:         faulty,
		HeartbeatTicks: hbTicks,
		ElectionTicks:  elTicks,
		// Catch-up streams batches of 1 MiB, 16 in flight: enough to fill
		// the link, small enough that no single append or frame holds up
		// a heartbeat behind it for long.
		MaxBatchBytes: 1 << 20,
		MaxInflight:   16,
		Rand:          rand.New(rand.NewSource(r.now().UnixNano() + int64(r.id))),
		Logger:        coreLogger{r.log},

		TestOnlyBreakDurability: cfg.breakDurability,
	})
	if err != nil {
		l.Close()
		return err
	}
	st.SetAsyncReads(func(f func()) { r.spawnRead(f) }, func() {
		select {
		case r.readc <- struct{}{}:
		default: // already signalled
		}
	})
	r.storeP.Store(st)
	// What a checkpoint let Load skip is verified while the node serves;
	// damage found there is handled like a failed write: the log is
	// reopened with the full scan, which repairs it.
	st.StartVerify(func(err error) {
		r.log.Logf(logging.Error, "storage", "Background verification: %v", err)
		select {
		case r.calls <- func() {
			if r.Store() == st && r.broken == nil {
				r.storageFailed(err)
			}
		}:
		case <-r.stopc:
		}
	})
	r.core = core
	r.stateMu.Lock()
	r.hs = hs
	r.stateMu.Unlock()
	// ReqIDs must never repeat across restarts, or the leader would take a
	// new publish for a retry of an old one and drop it.
	r.reqID = max(r.reqID, st.MaxOwnReqID(), uint64(r.now().UnixNano()))
	r.updateStatus()
	r.updateConf()
	return nil
}

func (r *Replica) newStore(l store.Log) *store.Store {
	if r.cfg.small {
		// Small: the simulation restarts from checkpoints often.
		st := store.NewSized(l, 256)
		st.UseCheckpoints(r.disk, 256, true)
		return st
	}
	st := store.New(l)
	st.UseCheckpoints(r.disk, 0, false)
	return st
}

// Start runs the replica's loop; t carries messages to peers.
func (r *Replica) Start(t Transport) {
	r.transport = t
	r.refreshPeers()
	r.started.Store(true)
	go r.storageLoop()
	go func() {
		if r.probing && !r.probeHistory() {
			return // stopped
		}
		if r.rejoining {
			// Every leader or coordinator the old incarnation may have
			// acknowledged has won, lost or stepped down by now.
			select {
			case <-time.After(2 * r.cfg.LeaderTimeout):
			case <-r.stopc:
			}
		}
		r.run()
	}()
}

// Stop ends the loop (answering every waiting publish), closes the
// transport and the log, and releases the data directory.
func (r *Replica) Stop() error {
	var err error
	r.stopOnce.Do(func() {
		close(r.stopc)
		if r.started.Load() {
			select {
			case <-r.donec:
				r.flushState() // (the loop and the storage goroutine are done)
			case <-time.After(10 * time.Second):
			}
		}
		r.failQueued()
		if r.transport != nil {
			r.transport.Close()
		}
		err = r.Store().Close()
		r.lock.Close()
	})
	return err
}

// Receive hands a message from a peer to the loop. It blocks while the
// loop is busy (back-pressure on the peer's connection) until cancel is
// closed or the replica stops.
func (r *Replica) Receive(m consensus.Message, cancel <-chan struct{}) {
	select {
	case r.inbox <- m:
	case <-cancel:
	case <-r.stopc:
	}
}

func (r *Replica) run() {
	defer close(r.donec)
	defer close(r.jobs)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	batch := make([]*pubReq, 0, 1024)
	for {
		select {
		case <-r.stopc:
			if r.inflight != nil {
				r.onPersisted(<-r.persisted)
			}
			r.shutdown()
			return
		case err := <-r.persisted:
			r.onPersisted(err)
		case <-r.readc:
			if r.broken == nil {
				r.core.ReadReady()
			}
		case now := <-ticker.C:
			r.onTick(now)
		case c := <-r.ctl:
			r.onControl(c)
		case f := <-r.calls:
			f()
		case now := <-retry.C:
			r.onRetry(now)
		case m := <-r.inbox:
			// Step everything that has arrived before the next Ready, so
			// one fsync covers many appends (group commit on followers).
			for k := 0; ; k++ {
				r.step(m)
				if k == 1024 {
					break
				}
				select {
				case m = <-r.inbox:
					continue
				default:
				}
				break
			}
		case p := <-r.proposals:
			batch = r.gather(append(batch[:0], p))
			r.propose(batch)
		}
		r.handleReady()
	}
}

// storageLoop persists the Readies the loop hands it, one at a time, so
// that ticks, heartbeats and votes never wait behind a write or fsync.
func (r *Replica) storageLoop() {
	for rd := range r.jobs {
		r.persisted <- r.persist(rd)
	}
}

func (r *Replica) onTick(now time.Time) {
	if r.broken == nil {
		r.core.SetTime(now.UnixMilli())
		r.core.Tick()
	}
	if r.ticks++; r.ticks%10 == 0 {
		r.updateStatus() // members' match and lag
		r.updateConf()
		r.refreshPeers()
	}
	r.driveMembership(now)
	r.unpark(now)
	r.expire(now)
}

func (r *Replica) onRetry(now time.Time) {
	switch {
	case r.broken != nil:
		r.recover()
	case r.inflight != nil:
		// Retention and the hard state it records wait for the storage
		// goroutine: both write the state file.
	default:
		r.flushState()
		if r.cfg.RetainBytes > 0 || r.cfg.RetainAge > 0 {
			r.retain(now)
		}
	}
}

func (r *Replica) shutdown() {
	for _, p := range r.parked {
		r.fail(p, ErrShuttingDown)
	}
	r.parked = nil
	// Proposed ones may still commit elsewhere: their outcome is unknown.
	r.failAll(ErrStoppedUnconfirmed)
}

// step hands a peer's message to the core. A message the core refuses as
// malformed or out of range is dropped and logged: it came from a peer
// that authenticated but misbehaves.
func (r *Replica) step(m consensus.Message) {
	if r.broken != nil {
		return
	}
	if err := r.core.Step(m); err != nil && !errors.Is(err, consensus.ErrStepLocal) {
		r.log.Logf(logging.Warn, "node", "Dropped %v from node_%d: %v", m.Type, m.From, err)
	}
}

// Status is the core's latest status, and the storage failure that stops
// this replica, if any. It never lags a reply a client has already seen.
func (r *Replica) Status() (consensus.Status, error) {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.status, r.statusBroken
}

func (r *Replica) updateStatus() {
	st := r.core.Status()
	r.log.SetTerm(st.Term)
	r.statusMu.Lock()
	r.status, r.statusBroken = st, r.broken
	r.statusMu.Unlock()
}

// updateConf refreshes the configurations Members, Addr and refreshPeers
// read. Only where they may have changed (a Ready that touches them, a
// reopen, the periodic refresh): cloning them on every commit would put
// allocations on the publish path.
func (r *Replica) updateConf() {
	inForce, committed := r.core.Membership()
	r.statusMu.Lock()
	r.conf = [2]consensus.ConfState{inForce, committed}
	r.statusMu.Unlock()
}

// WaitReady waits (at most limit) until a leader is known and this node
// has applied everything committed so far.
func (r *Replica) WaitReady(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		st, _ := r.Status()
		if st.Leader != 0 && st.Sequencing && r.Store().Applied() >= st.Commit {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// coreLogger routes the consensus core's log lines to the node's logger.
type coreLogger struct{ l logging.Node }

func (c coreLogger) Logf(level consensus.Level, component, format string, args ...any) {
	lv := logging.Info
	switch level {
	case consensus.LevelDebug:
		lv = logging.Debug
	case consensus.LevelWarn:
		lv = logging.Warn
	case consensus.LevelError:
		lv = logging.Error
	}
	c.l.Raw(lv, component, format, args...)
}
