package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// tick is the consensus core's unit of time.
const tick = 10 * time.Millisecond

// pubReq is a publish accepted from a local client, waiting for its commit.
type pubReq struct {
	msg         message
	p           *pending
	reqID       uint64
	deadline    time.Time
	parkedUntil time.Time
}

// node is the driver loop: it owns the consensus core and the store,
// feeds the core ticks, peer messages and proposals, persists what the core
// asks (group commit: every proposal waiting while the previous batch was
// fsynced goes into the next batch), and applies committed entries by
// delivering them to local subscribers and answering local publishers.
type node struct {
	s       *Server
	id      consensus.NodeID
	dir     string
	storeP  atomic.Pointer[store] // replaced when the log is reopened
	core    *consensus.Node
	hs      diskHardState
	hsSaved time.Time

	proposals chan *pubReq
	inbox     chan consensus.Message
	transport transport // nil for a one-member cluster

	reqID     uint64
	lastBatch int       // size of the previous proposal batch
	parked    []*pubReq // waiting for a leader to be known
	waiting   map[uint64]*pubReq
	order     []*pubReq // by ReqID, to expire the oldest first
	broken    error     // a storage failure; publishes fail until recovery

	statusMu     sync.Mutex
	status       consensus.Status
	statusBroken error

	lock      *os.File // flock on the data directory: one process per log
	rejoining bool     // started empty with RejoinEmpty
	stopc     chan struct{}
	donec     chan struct{}
	stopOnce  sync.Once
}

// transport carries consensus messages to peers.
type transport interface {
	Send(msgs []consensus.Message)
	Close() error
}

func newNode(s *Server) (*node, error) {
	cfg := &s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &node{
		s:         s,
		id:        consensus.NodeID(cfg.ID),
		dir:       cfg.DataDir,
		proposals: make(chan *pubReq, 1<<16),
		inbox:     make(chan consensus.Message, 1<<12),
		waiting:   map[uint64]*pubReq{},
		stopc:     make(chan struct{}),
		donec:     make(chan struct{}),
	}
	n.lock = lock
	if err := n.open(); err != nil {
		lock.Close()
		return nil, err
	}
	return n, nil
}

// open (re)loads the WAL and hard state and builds a fresh consensus core
// from them, exactly as after a process restart.
func (n *node) open() error {
	cfg := &n.s.cfg
	hs, err := loadHardState(n.dir)
	if err != nil {
		return err
	}
	if cfg.RejoinEmpty && hs == (diskHardState{}) && !hasSegments(n.dir) {
		n.s.logf(levelWarn, "storage", "Rejoining with an empty disk: not voting until the leader has refilled this node's log")
		hs.MustReach = math.MaxUint64
		n.rejoining = true
	}
	l, err := wal.Open(n.dir, wal.Options{NoSync: cfg.NoSync, SegmentSize: cfg.SegmentBytes, RetainBytes: cfg.RetainBytes, RetainAge: cfg.RetainAge})
	if err != nil {
		return fmt.Errorf("open log in %s: %w", n.dir, err)
	}
	if rep := l.Repaired(); rep.DroppedBytes > 0 {
		n.s.logf(levelWarn, "storage", "Repaired torn log tail: dropped %d bytes (%d invalid records) after seq_no=%d", rep.DroppedBytes, rep.DroppedRecords, l.LastIndex())
	}
	st := newStore(l)
	if hs.BaseIndex+1 == l.FirstIndex() {
		st.baseIndex, st.baseTerm = hs.BaseIndex, hs.BaseTerm
	}
	cluster := len(cfg.Peers) > 1
	loaded, corrupt, err := st.load(hs.Commit, cluster, n.id)
	for _, i := range corrupt {
		// A lone node has no peer to refetch from: keep everything else and
		// report the damaged record whenever it is asked for.
		n.s.logf(levelError, "storage", "Corrupt record at seq_no=%d: it will be reported as damaged, never served", i)
	}
	if cluster && errors.Is(err, wal.ErrCorrupt) {
		// Never serve a damaged record. Keep the intact prefix, and remember
		// how far the log reached so this node does not vote as if it still
		// held what it lost until peers have refilled it.
		bad := corruptIndex(err, l)
		n.s.logf(levelError, "storage", "Corrupt record at seq_no=%d (%v): truncating log to seq_no=%d; the rest will be recovered from peers", bad, err, bad-1)
		if hs.MustReach < l.LastIndex() {
			// The core clears it once the repair is proven.
			hs.MustReach = l.LastIndex()
		}
		if hs.Commit >= bad {
			hs.Commit = bad - 1
		}
		if err := saveHardState(n.dir, hs, true); err != nil {
			l.Close()
			return err
		}
		if err := l.TruncateBack(bad - 1); err != nil {
			l.Close()
			return err
		}
		st = newStore(l)
		loaded, _, err = st.load(hs.Commit, true, n.id)
	}
	if err != nil {
		l.Close()
		return fmt.Errorf("load log: %w", err)
	}
	n.s.logf(levelInfo, "storage", "Loaded %d messages from log", loaded)
	n.s.logf(levelInfo, "storage", "Set last_seq=%d, next_expected=%d", l.LastIndex(), l.LastIndex()+1)
	members := []consensus.NodeID{n.id}
	if len(cfg.Peers) > 0 {
		members = members[:0]
		for _, p := range cfg.Peers {
			members = append(members, consensus.NodeID(p.ID))
		}
	}
	hbTicks := int(cfg.HeartbeatInterval / tick)
	if hbTicks < 1 {
		hbTicks = 1
	}
	elTicks := int(cfg.LeaderTimeout / tick)
	if elTicks <= hbTicks {
		elTicks = hbTicks + 1
	}
	core, err := consensus.NewNode(consensus.Config{
		ID:             n.id,
		Members:        members,
		Storage:        st,
		HardState:      hs.core(),
		Applied:        max(st.appliedIndex(), l.FirstIndex()-1),
		MustReach:      hs.MustReach,
		HeartbeatTicks: hbTicks,
		ElectionTicks:  elTicks,
		MaxBatchBytes:  4 << 20,
		MaxInflight:    64,
		Rand:           rand.New(rand.NewSource(time.Now().UnixNano() + int64(n.id))),
		Logger:         coreLogger{n.s},
	})
	if err != nil {
		l.Close()
		return err
	}
	n.storeP.Store(st)
	n.core, n.hs = core, hs
	// ReqIDs must never repeat across restarts, or the leader would take a
	// new publish for a retry of an old one and drop it.
	n.reqID = max(n.reqID, st.maxOwnReqID, uint64(time.Now().UnixNano()))
	n.updateStatus()
	return nil
}

func corruptIndex(err error, l *wal.Log) uint64 {
	var ce *wal.CorruptError
	if errors.As(err, &ce) {
		return ce.Index
	}
	return l.FirstIndex()
}

func (n *node) st() *store { return n.storeP.Load() }

func (n *node) start() {
	if len(n.s.cfg.Peers) > 1 {
		n.transport = newTransport(n.s)
	}
	go func() {
		if n.rejoining {
			// Every leader or coordinator the old incarnation may have
			// acknowledged has won, lost or stepped down by now.
			select {
			case <-time.After(2 * n.s.cfg.LeaderTimeout):
			case <-n.stopc:
			}
		}
		n.run()
	}()
}

func (n *node) stop() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stopc)
		select {
		case <-n.donec:
		case <-time.After(10 * time.Second):
		}
		if n.transport != nil {
			n.transport.Close()
		}
		err = n.st().log.Close()
		n.lock.Close()
	})
	return err
}

// publish hands a publish to the driver loop; the pending reply is resolved
// when it commits or fails.
func (n *node) publish(r *pubReq) {
	select {
	case n.proposals <- r:
	case <-n.stopc:
		r.p.resolve([]byte("-ERR server is shutting down\r\n"))
	}
}

func (n *node) run() {
	defer close(n.donec)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	batch := make([]*pubReq, 0, 1024)
	for {
		select {
		case <-n.stopc:
			for _, r := range n.parked {
				n.fail(r, "-ERR server is shutting down")
			}
			n.failAll("-ERR server is shutting down")
			return
		case now := <-ticker.C:
			if n.broken == nil {
				n.core.SetTime(now.UnixMilli())
				n.core.Tick()
			}
			n.unpark(now)
			n.expire(now)
		case now := <-retry.C:
			if n.broken != nil {
				n.recover()
			} else if cfg := n.s.cfg; cfg.RetainBytes > 0 || cfg.RetainAge > 0 {
				n.retain(now)
			}
		case m := <-n.inbox:
			// Step everything that has arrived before persisting, so one
			// fsync covers many appends (group commit on followers too).
			for k := 0; ; k++ {
				if n.broken == nil {
					n.core.Step(m)
				}
				if k == 1024 {
					break
				}
				select {
				case m = <-n.inbox:
					continue
				default:
				}
				break
			}
		case r := <-n.proposals:
			batch = append(batch[:0], r)
			// Group commit: take everything queued; while the batch is
			// smaller than the last one, yield a few times so publishers
			// that are about to submit join it (one fsync for all).
			for spins := 0; ; spins++ {
			drain:
				for len(batch) < cap(batch) {
					select {
					case r := <-n.proposals:
						batch = append(batch, r)
					default:
						break drain
					}
				}
				if spins >= 3 || len(batch) >= n.lastBatch {
					break
				}
				runtime.Gosched()
			}
			n.lastBatch = len(batch)
			n.propose(batch)
		}
		if n.broken == nil {
			n.processReady()
		}
	}
}

func (n *node) propose(batch []*pubReq) {
	if len(n.parked) > 0 {
		// Keep each connection's order: held publishes go first.
		batch = append(n.parked, batch...)
		n.parked = nil
	}
	if n.broken != nil {
		for _, r := range batch {
			n.fail(r, diskErrorReply(n.broken))
		}
		return
	}
	props := make([]consensus.Proposal, len(batch))
	now := time.Now()
	n.core.SetTime(now.UnixMilli())
	deadline := now.Add(n.s.cfg.PublishTimeout)
	for i, r := range batch {
		n.reqID++
		r.reqID, r.deadline = n.reqID, deadline
		props[i] = consensus.Proposal{Origin: n.id, ReqID: r.reqID, Type: consensus.EntryNormal, Data: encodeMessage(&r.msg)}
	}
	if err := n.core.Propose(props...); err != nil {
		if errors.Is(err, consensus.ErrNoLeader) {
			// An election may be under way (or the node just started):
			// hold the publishes for up to one leader timeout, then fail.
			for _, r := range batch {
				if r.parkedUntil.IsZero() {
					r.parkedUntil = time.Now().Add(n.s.cfg.LeaderTimeout)
				}
				n.parked = append(n.parked, r)
			}
			return
		}
		reply := "-TRYAGAIN " + sanitize(err.Error())
		for _, r := range batch {
			n.fail(r, reply)
		}
		return
	}
	for _, r := range batch {
		n.waiting[r.reqID] = r
		n.order = append(n.order, r)
	}
}

// processReady performs the caller's duties of consensus/api.go in order:
// persist hard state, persist entries, send, apply, advance.
func (n *node) processReady() {
	for n.core.HasReady() {
		rd := n.core.Ready()
		late := rd.Messages
		if n.transport != nil && rd.HardState == nil && len(rd.Entries) > 0 {
			// A leader's appends may leave before its own fsync (Raft
			// thesis §10.2.1): the core counts the leader in a majority
			// only for entries it has persisted (Advance), so followers
			// fsync in parallel with it. Everything else (acks, votes)
			// waits until this node's state is durable.
			var early []consensus.Message
			early, late = splitEarly(rd.Messages)
			n.transport.Send(early)
		}
		if rd.HardState != nil {
			hs := fromCore(*rd.HardState)
			hs.BaseIndex, hs.BaseTerm = n.hs.BaseIndex, n.hs.BaseTerm
			// Term, vote and accepted term must be durable before any
			// message that depends on them leaves; a commit-only change
			// can be lost (the leader re-sends it).
			critical := hs.Term != n.hs.Term || hs.Vote != n.hs.Vote || hs.AcceptedTerm != n.hs.AcceptedTerm || hs.MustReach != n.hs.MustReach
			// A commit-only change is written without fsync and at most
			// every 100ms: it only lets a restarted node index its committed
			// history sooner; if it is stale, the leader re-sends it.
			if critical || hs.Commit < n.hs.Commit || time.Since(n.hsSaved) > 100*time.Millisecond {
				if err := saveHardState(n.dir, hs, critical && !n.s.cfg.NoSync); err != nil {
					n.storageFailed(err)
					return
				}
				n.hs, n.hsSaved = hs, time.Now()
			}
		}
		if rd.TruncateFrom > 0 {
			if err := n.st().truncateFrom(rd.TruncateFrom); err != nil {
				n.storageFailed(err)
				return
			}
		}
		if rd.ResetLog > 0 {
			if err := n.resetLog(rd.ResetLog, rd.ResetLogTerm); err != nil {
				n.storageFailed(err)
				return
			}
		}
		if len(rd.Entries) > 0 {
			start := time.Now()
			if err := n.st().append(rd.Entries); err != nil {
				n.storageFailed(err)
				return
			}
			n.s.stats.walWrites.Add(1)
			n.s.stats.walEntries.Add(int64(len(rd.Entries)))
			n.s.stats.walNanos.Add(int64(time.Since(start)))
		}
		if n.transport != nil && len(late) > 0 {
			n.transport.Send(late)
		}
		if rd.SoftState != nil && rd.SoftState.Lead == 0 {
			n.leaderLost(time.Now())
		}
		if len(rd.Committed) > 0 {
			// STATUS must never lag a reply a client has already seen.
			n.updateStatus()
		}
		n.apply(rd.Committed)
		for _, p := range rd.Dropped {
			if r := n.waiting[p.ReqID]; r != nil && p.Origin == n.id {
				delete(n.waiting, p.ReqID)
				n.fail(r, "-TRYAGAIN publish was not sequenced (leader changed); retry it")
			}
		}
		n.core.Advance(rd)
	}
	n.updateStatus()
}

// resetLog restarts the log empty at next because the leader no longer
// holds the entries this node lacks (retention): the boundary term is
// recorded first, then the log is reset (atomically, by the wal).
func (n *node) resetLog(next, prevTerm uint64) error {
	n.s.logf(levelWarn, "storage", "Leader no longer holds seq_no<%d (retention): restarting the log at seq_no=%d", next, next)
	hs := n.hs
	hs.BaseIndex, hs.BaseTerm = next-1, prevTerm
	if err := saveHardState(n.dir, hs, !n.s.cfg.NoSync); err != nil {
		return err
	}
	n.hs = hs
	return n.st().resetTo(next, prevTerm)
}

// splitEarly separates leader-to-follower appends and heartbeats, which
// claim nothing about this node's disk, from the rest.
func splitEarly(msgs []consensus.Message) (early, late []consensus.Message) {
	for _, m := range msgs {
		if m.Type == consensus.MsgApp || m.Type == consensus.MsgHeartbeat {
			early = append(early, m)
		} else {
			late = append(late, m)
		}
	}
	return early, late
}

// apply delivers committed entries in order and answers local publishers.
func (n *node) apply(es []consensus.Entry) {
	if len(es) == 0 {
		return
	}
	debug := n.s.cfg.Logger.Enabled(context.Background(), levelDebug)
	ms := make([]*message, 0, len(es))
	origin := make([]*consensus.Entry, 0, len(es))
	for i := range es {
		e := &es[i]
		if e.Type != consensus.EntryNormal {
			continue
		}
		m, err := entryMessage(e)
		if err != nil {
			n.s.logf(levelError, "ordering", "Skipping undecodable entry seq_no=%d: %v", e.Index, err)
			continue
		}
		ms = append(ms, m)
		origin = append(origin, e)
	}
	// Index first: a client that has its PUBLISH reply, or a subscriber
	// that has the message, must find it in XRANGE/XREAD right away.
	n.st().index(ms)
	n.st().setApplied(es[len(es)-1].Index)
	for i, m := range ms {
		e := origin[i]
		if debug {
			n.s.logf(levelDebug, "ordering", "Delivering seq_no=%d", e.Index)
		}
		receivers := n.s.reg.deliver(m)
		if e.Origin == n.id {
			if r := n.waiting[e.ReqID]; r != nil {
				delete(n.waiting, e.ReqID)
				reply := strconv.AppendInt([]byte{':'}, int64(receivers), 10)
				r.p.resolve(append(reply, '\r', '\n'))
				n.s.stats.published.Add(1)
			}
		}
	}
	n.s.stats.publishes.Add(int64(len(ms)))
}

func (n *node) fail(r *pubReq, reply string) {
	n.s.stats.publishErrors.Add(1)
	r.p.resolve([]byte(reply + "\r\n"))
}

// unpark re-proposes publishes held while no leader was known, and fails
// those held too long.
func (n *node) unpark(now time.Time) {
	if len(n.parked) == 0 {
		return
	}
	parked := n.parked
	n.parked = nil
	if n.core.Status().Leader != 0 {
		n.propose(parked)
		return
	}
	for _, r := range parked {
		if now.After(r.parkedUntil) {
			n.fail(r, "-CLUSTERDOWN no leader: this node cannot reach a majority of the cluster; retry shortly")
		} else {
			n.parked = append(n.parked, r)
		}
	}
}

// leaderLost shortens the wait of publishes in flight when this node no
// longer knows a leader (it stepped down, or its leader went silent): the
// core re-forwards them if a new leader appears soon (a failover); if none
// does, they fail promptly instead of hanging until the publish timeout.
func (n *node) leaderLost(now time.Time) {
	limit := now.Add(2 * n.s.cfg.LeaderTimeout)
	for _, r := range n.order {
		if r.deadline.After(limit) {
			r.deadline = limit
		}
	}
}

// expire fails publishes that waited longer than the publish timeout. The
// outcome of such a publish is unknown to the client, and the error says so.
func (n *node) expire(now time.Time) {
	i := 0
	for ; i < len(n.order); i++ {
		r := n.order[i]
		if n.waiting[r.reqID] != r {
			continue // already answered
		}
		if now.Before(r.deadline) {
			break
		}
		delete(n.waiting, r.reqID)
		n.core.Cancel(n.id, r.reqID)
		n.fail(r, "-TRYAGAIN publish not confirmed: no leader with a majority answered in time; it may or may not be delivered")
	}
	if i > 0 {
		n.order = append(n.order[:0], n.order[i:]...)
	}
	if len(n.order) > 0 && len(n.waiting) == 0 {
		n.order = n.order[:0]
	}
}

func (n *node) failAll(reply string) {
	for id, r := range n.waiting {
		delete(n.waiting, id)
		n.fail(r, reply)
	}
	n.order = n.order[:0]
}

func diskErrorReply(err error) string {
	return "-ERR disk error, publish not acknowledged: " + sanitize(err.Error())
}

// storageFailed stops the node's participation after a failed write or
// fsync: nothing unpersisted is acknowledged, publishes fail with a clear
// error, and the log is reopened (as after a crash) once it works again.
func (n *node) storageFailed(err error) {
	n.s.logf(levelError, "storage", "Log write failed: %v; refusing publishes until the log can be reopened", err)
	n.broken = err
	n.failAll(diskErrorReply(err))
	n.updateStatus()
}

func (n *node) recover() {
	old := n.st()
	old.log.Close()
	if err := n.open(); err != nil {
		n.s.logf(levelWarn, "storage", "Log still unusable: %v", err)
		n.storeP.Store(old)
		return
	}
	n.broken = nil
	n.updateStatus()
	n.s.logf(levelInfo, "storage", "Log reopened after failure; resuming")
}

// retain drops the oldest log segments beyond the retention limits, but
// never an entry that is not yet committed and on every active member.
func (n *node) retain(now time.Time) {
	st := n.core.Status()
	keep := st.Commit + 1
	for _, m := range st.Members {
		if !m.Self && m.Active && m.Match+1 < keep {
			keep = m.Match + 1
		}
	}
	// Keep entries younger than twice the publish timeout: a leader that
	// restarts learns which publishes it already holds from its log, so a
	// retry of one it no longer held would be sequenced twice.
	if young := n.st().firstSince(now.Add(-2 * n.s.cfg.PublishTimeout).UnixMilli()); young < keep {
		keep = young
	}
	before := n.st().FirstIndex()
	first, err := n.st().retain(now, keep)
	if err != nil {
		n.s.logf(levelWarn, "storage", "Retention failed: %v", err)
		return
	}
	if first > before {
		n.s.logf(levelInfo, "storage", "Retention dropped seq_no %d..%d", before, first-1)
		st := n.st()
		st.mu.RLock()
		hs := n.hs
		hs.BaseIndex, hs.BaseTerm = st.baseIndex, st.baseTerm
		st.mu.RUnlock()
		if err := saveHardState(n.dir, hs, false); err == nil {
			n.hs = hs
		}
	}
}

func (n *node) updateStatus() {
	st := n.core.Status()
	n.statusMu.Lock()
	n.status, n.statusBroken = st, n.broken
	n.statusMu.Unlock()
}

// waitLeader waits (bounded) until a leader is known and this node has
// applied everything committed so far.
func (n *node) waitLeader(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		st, _ := n.getStatus()
		if st.Leader != 0 && st.Sequencing && n.st().appliedIndex() >= st.Commit {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (n *node) getStatus() (consensus.Status, error) {
	n.statusMu.Lock()
	defer n.statusMu.Unlock()
	return n.status, n.statusBroken
}

// coreLogger routes the consensus core's log lines to the node's logger.
type coreLogger struct{ s *Server }

func (l coreLogger) Logf(level consensus.Level, component, format string, args ...any) {
	lv := levelInfo
	switch level {
	case consensus.LevelDebug:
		lv = levelDebug
	case consensus.LevelWarn:
		lv = levelWarn
	case consensus.LevelError:
		lv = levelError
	}
	if !l.s.cfg.Logger.Enabled(context.Background(), lv) {
		return
	}
	// The core names its components ("election.2") itself.
	l.s.cfg.Logger.Log(context.Background(), lv, fmt.Sprintf(format, args...), "component", component)
}
