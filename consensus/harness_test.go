package consensus

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// A deterministic in-memory cluster: simulated network (cuts, drops,
// duplicates, reordering, delays) and disks (a crash loses whatever was
// not persisted), all driven from one *rand.Rand. Scripted scenarios use
// it step by step; the simulation (sim_test.go) drives it randomly.

type reqKey struct {
	origin NodeID
	req    uint64
}

type simDisk struct {
	hs      HardState
	cs      ConfState // as persisted from Ready.ConfState
	log     *MemoryStorage
	applied uint64
	// faulty: records found damaged (checksum) at the next start, with the
	// term the store could tell (0: unknown); see storagefault_test.go.
	faulty   map[uint64]uint64
	badReads int // the core asked for a damaged record (a bug)
}

type simNode struct {
	id     NodeID
	spare  bool // not an initial member: starts with Config.Join
	disk   simDisk
	node   *Node
	rd     *Ready // handed out by Ready, not yet persisted
	paused bool
	// downUntil: a node whose disk was wiped stays down until this tick
	// (the documented assumption for a lost hard state).
	downUntil int
	// proposals accepted by Propose and not yet seen committed/dropped
	pending map[reqKey]bool
	// store is this incarnation's view of disk.log (reads may go to the
	// background: ErrReadPending).
	store *simStorage
}

// simStorage is the caller's Storage with a background reader: a read not
// yet in memory may answer ErrReadPending (seeded), and the cluster
// completes it later (completeReads), then calls ReadReady — or not, and
// the core's heartbeat fallback must retry on its own.
type simStorage struct {
	*MemoryStorage
	disk     *simDisk // (its faulty records are never read by the core)
	rng      *rand.Rand
	rate     float64 // probability that an uncached read goes to the background
	enabled  bool    // (NewNode reads synchronously)
	fetching [][2]uint64
	warm     [][2]uint64 // completed fetches, served from "memory"
	reads    int         // Entries calls, for tests
	pending  *int        // counts ErrReadPending answers
}

var errSimDamaged = errors.New("sim: damaged record read")

func (s *simStorage) damagedIn(lo, hi uint64) bool {
	for i := range s.disk.faulty {
		if i >= lo && i < hi {
			return true
		}
	}
	return false
}

func (s *simStorage) Term(i uint64) (uint64, error) {
	if _, bad := s.disk.faulty[i]; bad {
		s.disk.badReads++
		return 0, errSimDamaged
	}
	return s.MemoryStorage.Term(i)
}

func (s *simStorage) Entries(lo, hi uint64, maxBytes int) ([]Entry, error) {
	if s.damagedIn(lo, hi) {
		s.disk.badReads++
		return nil, errSimDamaged
	}
	s.reads++
	if s.enabled && s.rate > 0 && !s.cached(lo) && (s.isFetching(lo) || s.rng.Float64() < s.rate) {
		if !s.isFetching(lo) {
			s.fetching = append(s.fetching, [2]uint64{lo, hi})
		}
		*s.pending++
		return nil, ErrReadPending
	}
	return s.MemoryStorage.Entries(lo, hi, maxBytes)
}

func (s *simStorage) cached(lo uint64) bool {
	for _, w := range s.warm {
		if lo >= w[0] && lo < w[1] {
			return true
		}
	}
	return false
}

func (s *simStorage) isFetching(lo uint64) bool {
	for _, f := range s.fetching {
		if lo >= f[0] && lo < f[1] {
			return true
		}
	}
	return false
}

// completeReads finishes node id's background reads; it reports whether
// there were any. The node hears of it through ReadReady unless lost.
func (c *cluster) completeReads(id NodeID, notify bool) bool {
	sn := c.n(id)
	if sn.node == nil || sn.paused || sn.store == nil || len(sn.store.fetching) == 0 {
		return false
	}
	st := sn.store
	st.warm = append(st.warm, st.fetching...)
	if len(st.warm) > 8 {
		st.warm = st.warm[len(st.warm)-8:]
	}
	st.fetching = nil
	c.tracef("node %d: background read done (notify %v)", id, notify)
	if notify {
		sn.node.ReadReady()
		c.ck.afterStep()
	}
	return true
}

type envelope struct {
	m    Message
	b    []byte
	from NodeID
	to   NodeID
}

type simConfig struct {
	heartbeat, election, alive int
	maxBatch, maxInflight      int
}

var defaultSimConfig = simConfig{heartbeat: 2, election: 8, alive: 1, maxBatch: 64, maxInflight: 4}

type cluster struct {
	tb    testing.TB
	rng   *rand.Rand
	ids   []NodeID
	nodes []*simNode // index = id-1
	net   []envelope
	cut   map[[2]NodeID]bool // directional: cut[{from, to}]
	cfg   simConfig

	dropRate, dupRate float64
	chaos             int  // extra fault percentage per step
	churnOnly         bool // faults: only leader churn (see randomFault)
	filter            func(m Message) bool
	mutate            func(m *Message) // rewrites messages at send time (scripted tests)
	fifo              bool             // deliver in send order (like TCP) instead of randomly
	strictOrder       bool             // fail on any Ready.Dropped
	breakDurability   bool             // Config.TestOnlyBreakDurability on every node
	readPendingRate   float64          // share of uncached Storage reads answered ErrReadPending
	membership        bool             // the schedule changes the membership (sim)
	legacyFaults      bool             // see scheduleOpts

	ck      *checker
	ticks   int
	nextReq []uint64
	initial []NodeID         // the initial voters (c.ids holds spares too)
	trace   *strings.Builder // optional action trace
	logs    *strings.Builder // optional captured log lines
	failed  bool
	fail    func(format string, args ...any)
	stats   struct {
		truncations, crashes, torn, dropped, resets, compactions, lostTails, wipes, readsPending int
		storageFaults, hsLosses, halts, accepted                                                 int
	}
}

func newCluster(tb testing.TB, size int, seed int64, cfg simConfig) *cluster {
	return newClusterSpares(tb, size, 0, seed, cfg)
}

// newClusterSpares: size initial voters, and spares nodes that start
// without a configuration (Config.Join) and wait to be added.
func newClusterSpares(tb testing.TB, size, spares int, seed int64, cfg simConfig) *cluster {
	c := &cluster{
		tb:  tb,
		rng: newRand(seed),
		cut: map[[2]NodeID]bool{},
		cfg: cfg,

		strictOrder: true,
	}
	c.fail = func(format string, args ...any) {
		c.failed = true
		tb.Helper()
		tb.Fatalf(format, args...)
	}
	for i := 1; i <= size+spares; i++ {
		c.ids = append(c.ids, NodeID(i))
	}
	c.initial = c.ids[:size]
	c.nextReq = make([]uint64, size+spares+1)
	c.ck = newChecker(c)
	for _, id := range c.ids {
		sn := &simNode{id: id, disk: simDisk{log: NewMemoryStorage()}, pending: map[reqKey]bool{}, spare: int(id) > size}
		c.nodes = append(c.nodes, sn)
		c.start(sn)
	}
	return c
}

func (c *cluster) n(id NodeID) *simNode { return c.nodes[id-1] }

func (c *cluster) tracef(format string, args ...any) {
	if c.trace != nil {
		fmt.Fprintf(c.trace, format+"\n", args...)
	}
}

type testLogger struct {
	c *cluster
}

func (l testLogger) Logf(level Level, comp, format string, args ...any) {
	if l.c.logs != nil && level >= LevelInfo {
		fmt.Fprintf(l.c.logs, "%s %s\n", comp, fmt.Sprintf(format, args...))
	}
}

func (c *cluster) start(sn *simNode) {
	sn.store = &simStorage{MemoryStorage: sn.disk.log, disk: &sn.disk, rng: newRand(c.rng.Int63()), rate: c.readPendingRate,
		pending: &c.stats.readsPending}
	var faulty []Faulty
	for i, t := range sn.disk.faulty {
		faulty = append(faulty, Faulty{Index: i, Term: t})
	}
	slices.SortFunc(faulty, func(a, b Faulty) int { return cmpU64(a.Index, b.Index) })
	cfg := Config{
		ID:             sn.id,
		Members:        c.initial,
		ConfState:      sn.disk.cs,
		Join:           sn.spare && len(sn.disk.cs.Voters) == 0,
		Storage:        sn.store,
		HardState:      sn.disk.hs,
		Applied:        sn.disk.applied,
		Faulty:         faulty,
		HeartbeatTicks: c.cfg.heartbeat,
		ElectionTicks:  c.cfg.election,
		AliveTicks:     c.cfg.alive,
		MaxBatchBytes:  c.cfg.maxBatch,
		MaxInflight:    c.cfg.maxInflight,
		Rand:           newRand(c.rng.Int63()),
		Logger:         testLogger{c},

		TestOnlyBreakDurability: c.breakDurability,
	}
	nd, err := NewNode(cfg)
	if err != nil {
		c.fail("node %d: NewNode: %v", sn.id, err)
		return
	}
	sn.store.enabled = true
	sn.node = nd
	sn.rd = nil
	sn.paused = false
}

// running reports whether id can act (up and not paused).
func (c *cluster) running(id NodeID) bool {
	sn := c.n(id)
	return sn.node != nil && !sn.paused
}

func (c *cluster) tickAll() {
	c.ticks++
	for _, sn := range c.nodes {
		if sn.node != nil && !sn.paused {
			sn.node.Tick()
		}
	}
	c.ck.afterStep()
}

// readyPhase takes a Ready (phase 1); persistPhase persists it, sends its
// messages, applies and advances (phase 2). A crash in between loses it.
func (c *cluster) readyPhase(id NodeID) bool {
	sn := c.n(id)
	if sn.node == nil || sn.paused || sn.rd != nil || !sn.node.HasReady() {
		return false
	}
	rd := sn.node.Ready()
	sn.rd = &rd
	// The durability rule: Messages leave now, before anything of this
	// Ready is persisted (a crash before persistPhase loses the rest).
	for _, m := range rd.Messages {
		if !c.breakDurability && !claimsNothingType(m.Type) {
			c.fail("node %d: %v in Ready.Messages: it must wait for the persist (MessagesAfterPersist)", id, m.Type)
		}
		c.send(m)
	}
	c.ck.afterStep()
	return true
}

// claimsNothingType: the message types that may leave before the Ready is
// durable (a leader's appends and heartbeats, forwards, bully probes).
func claimsNothingType(t MsgType) bool {
	switch t {
	case MsgApp, MsgHeartbeat, MsgForward, MsgElection, MsgAlive:
		return true
	}
	return false
}

func (c *cluster) persistPhase(id NodeID) bool {
	sn := c.n(id)
	if sn.node == nil || sn.paused || sn.rd == nil {
		return false
	}
	rd := *sn.rd
	sn.rd = nil
	c.ck.beforePersist(sn, rd)
	c.persistHS(sn, rd)
	c.persistLog(sn, rd)
	for _, m := range rd.MessagesAfterPersist {
		c.send(m)
	}
	c.apply(sn, rd)
	sn.node.Advance(rd)
	c.ck.afterStep()
	return true
}

func (c *cluster) persistHS(sn *simNode, rd Ready) {
	if rd.HardState != nil {
		sn.disk.hs = *rd.HardState
	}
	if rd.ConfState != nil {
		sn.disk.cs = *rd.ConfState
	}
}

func (c *cluster) persistLog(sn *simNode, rd Ready) {
	if rd.ResetLog > 0 {
		if rd.TruncateFrom > 0 || (len(rd.Entries) > 0 && rd.Entries[0].Index != rd.ResetLog) {
			c.fail("node %d: Ready resets the log to %d with TruncateFrom %d and %d entries", sn.id, rd.ResetLog, rd.TruncateFrom, len(rd.Entries))
		}
		c.ck.beforeReset(sn, rd)
		c.stats.resets++
		c.tracef("node %d resets its log to %d (term %d)", sn.id, rd.ResetLog, rd.ResetLogTerm)
		sn.disk.log.Reset(rd.ResetLog, rd.ResetLogTerm)
		clear(sn.disk.faulty)
		sn.disk.applied = max(sn.disk.applied, rd.ResetLog-1)
		clear(sn.pending) // the core stopped tracking them (their outcome is unknown)
	} else {
		c.ck.beforeTruncate(sn, rd.TruncateFrom, rd.spareCut)
	}
	if rd.TruncateFrom > 0 {
		if rd.TruncateFrom <= sn.disk.log.LastIndex() {
			c.stats.truncations++
		}
		if len(rd.Entries) > 0 && rd.Entries[0].Index != rd.TruncateFrom {
			c.fail("node %d: Ready.Entries start at %d, TruncateFrom %d", sn.id, rd.Entries[0].Index, rd.TruncateFrom)
		}
		sn.disk.log.Truncate(rd.TruncateFrom)
		for i := range sn.disk.faulty {
			if i >= rd.TruncateFrom {
				delete(sn.disk.faulty, i)
			}
		}
	}
	if err := sn.disk.log.Append(rd.Entries); err != nil {
		c.fail("node %d: appending entries %d.. after last %d: %v", sn.id, rd.Entries[0].Index, sn.disk.log.LastIndex(), err)
	}
	c.ck.afterAppend(sn)
}

func (c *cluster) apply(sn *simNode, rd Ready) {
	for _, e := range rd.Committed {
		c.ck.applied(sn, e)
		c.ck.seqCheck(sn, e)
		sn.disk.applied = e.Index
		k := reqKey{e.Origin, e.ReqID}
		if sn.pending[k] {
			delete(sn.pending, k)
			c.ck.acked[k] = true
		}
	}
	for _, p := range rd.Dropped {
		k := reqKey{p.Origin, p.ReqID}
		if !sn.pending[k] {
			c.fail("node %d: dropped %v that was not pending", sn.id, k)
		}
		delete(sn.pending, k)
		c.stats.dropped++
		if c.strictOrder && len(c.ck.accepted) == 0 { // (a lost entry an operator accepted may have held it)
			c.fail("node %d: proposal %d/%d dropped: superseded by a later proposal of its origin", sn.id, k.origin, k.req)
		}
	}
}

// process runs both phases.
func (c *cluster) process(id NodeID) bool {
	if c.n(id).rd == nil && !c.readyPhase(id) {
		return false
	}
	return c.persistPhase(id)
}

func (c *cluster) send(m Message) {
	if c.mutate != nil {
		c.mutate(&m)
	}
	c.ck.sent(m)
	b := m.Marshal()
	env := envelope{b: b, from: m.From, to: m.To}
	if c.cut[[2]NodeID{m.From, m.To}] || c.rng.Float64() < c.dropRate || (c.filter != nil && c.filter(m)) {
		return
	}
	c.net = append(c.net, env)
	if c.rng.Float64() < c.dupRate {
		c.net = append(c.net, env)
	}
}

// deliver delivers in-flight message i (if its link is not cut and its
// destination runs; messages to a paused node wait).
func (c *cluster) deliver(i int) bool {
	env := c.net[i]
	sn := c.n(env.to)
	if sn.node != nil && sn.paused {
		return false
	}
	c.net = slices.Delete(c.net, i, i+1)
	if sn.node == nil || c.cut[[2]NodeID{env.from, env.to}] {
		return true
	}
	m, err := UnmarshalMessage(env.b)
	if err != nil {
		c.fail("unmarshal: %v", err)
		return true
	}
	c.tracef("  deliver %v %d->%d t%d i%d lt%d c%d n%d rej%v pre%v", m.Type, m.From, m.To, m.Term, m.Index, m.LogTerm, m.Commit, len(m.Entries), m.Reject, m.Pre)
	if err := sn.node.Step(m); err != nil {
		c.fail("node %d: Step: %v", env.to, err)
	}
	c.ck.afterStep()
	return true
}

func (c *cluster) deliverAll() {
	for len(c.net) > 0 {
		// Deliver in random order; skip messages to paused nodes.
		progressed := false
		for tries := 0; tries < len(c.net) && len(c.net) > 0; tries++ {
			i := c.rng.Intn(len(c.net))
			if c.fifo {
				i = tries
			}
			if c.deliver(i) {
				progressed = true
				break
			}
		}
		if !progressed {
			return
		}
	}
}

func (c *cluster) crash(id NodeID) {
	sn := c.n(id)
	if sn.node == nil {
		return
	}
	c.tracef("crash %d", id)
	c.stats.crashes++
	sn.node = nil
	sn.rd = nil
	clear(sn.pending) // the clients of a crashed node see a disconnect
	c.ck.afterStep()
}

// tornCrash persists only part of the Ready in flight, then crashes.
func (c *cluster) tornCrash(id NodeID) {
	sn := c.n(id)
	if sn.node == nil || sn.rd == nil {
		c.crash(id)
		return
	}
	rd := *sn.rd
	c.stats.torn++
	if c.rng.Intn(2) == 0 {
		c.tracef("torn crash %d (hardstate only)", id)
		c.persistHS(sn, rd)
	} else {
		c.tracef("torn crash %d (log only)", id)
		if rd.ResetLog > 0 {
			c.persistHS(sn, rd) // caller duty: HardState before a reset
		}
		c.persistLog(sn, rd)
	}
	c.crash(id)
}

func (c *cluster) restart(id NodeID) {
	sn := c.n(id)
	if sn.node != nil || c.ticks < sn.downUntil {
		return
	}
	c.tracef("restart %d", id)
	c.start(sn)
	c.ck.afterStep()
}

func (c *cluster) propose(id NodeID) (reqKey, error) {
	sn := c.n(id)
	if sn.node == nil || sn.paused {
		return reqKey{}, ErrNoLeader
	}
	c.nextReq[id]++
	k := reqKey{id, c.nextReq[id]}
	data := fmt.Appendf(nil, "%d/%d", k.origin, k.req)
	err := sn.node.Propose(Proposal{Origin: id, ReqID: k.req, Data: data})
	if err == nil {
		sn.pending[k] = true
	}
	c.tracef("propose %d/%d: %v", k.origin, k.req, err)
	c.ck.afterStep()
	return k, err
}

func (c *cluster) isolate(id NodeID) {
	for _, o := range c.ids {
		if o != id {
			c.cut[[2]NodeID{id, o}] = true
			c.cut[[2]NodeID{o, id}] = true
		}
	}
}

func (c *cluster) partition(groups ...[]NodeID) {
	clear(c.cut)
	side := map[NodeID]int{}
	for g, ids := range groups {
		for _, id := range ids {
			side[id] = g
		}
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			if side[a] != side[b] {
				c.cut[[2]NodeID{a, b}] = true
			}
		}
	}
}

func (c *cluster) heal() { clear(c.cut) }

// round: every node ticks, then all messages are delivered and all Readies
// processed until quiet.
func (c *cluster) round() {
	c.tickAll()
	c.settle()
}

func (c *cluster) settle() {
	for i := 0; i < 1000; i++ {
		busy := false
		for _, id := range c.ids {
			if c.process(id) {
				busy = true
			}
			if c.completeReads(id, true) {
				busy = true
			}
		}
		if len(c.net) > 0 {
			c.deliverAll()
			busy = true
		}
		if !busy {
			return
		}
		if c.failed {
			return
		}
	}
}

func (c *cluster) rounds(k int) {
	for i := 0; i < k && !c.failed; i++ {
		c.round()
	}
}

// leader returns the running (not paused) leader with the highest term (0
// if none).
func (c *cluster) leader() NodeID {
	var best NodeID
	var term uint64
	for _, sn := range c.nodes {
		if sn.node != nil && !sn.paused && sn.node.role == Leader && sn.node.term >= term {
			best, term = sn.id, sn.node.term
		}
	}
	return best
}

// waitLeader runs rounds until a sequencing leader is known by every
// running node.
func (c *cluster) waitLeader(maxRounds int) NodeID {
	for i := 0; i < maxRounds; i++ {
		if l := c.leader(); l != 0 && c.n(l).node.sync == syncDone {
			all := true
			for _, sn := range c.nodes {
				if sn.node != nil && !sn.paused && !c.cutOff(sn.id, l) && sn.node.lead != l &&
					c.n(l).node.conf().IsMember(sn.id) { // (spares and removed nodes follow nobody)
					all = false
				}
			}
			if all {
				return l
			}
		}
		c.round()
	}
	return 0
}

func (c *cluster) cutOff(a, b NodeID) bool {
	return a != b && (c.cut[[2]NodeID{a, b}] || c.cut[[2]NodeID{b, a}])
}

// committedOn returns the entries node id applied so far (from its disk).
func (c *cluster) diskLog(id NodeID) []Entry {
	s := c.n(id).disk.log
	if s.LastIndex() < s.FirstIndex() {
		return nil
	}
	ents, _ := s.Entries(s.FirstIndex(), s.LastIndex()+1, 1<<30)
	return ents
}

// splitmix64: a cheap, seedable rand.Source64 (math/rand's default source
// costs more to seed than a whole simulated schedule).
type splitmix struct{ x uint64 }

func (s *splitmix) Uint64() uint64 {
	s.x += 0x9e3779b97f4a7c15
	z := s.x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
func (s *splitmix) Int63() int64    { return int64(s.Uint64() >> 1) }
func (s *splitmix) Seed(seed int64) { s.x = uint64(seed) }

func newRand(seed int64) *rand.Rand { return rand.New(&splitmix{uint64(seed)}) }

// filter, when set, drops matching messages at send time (scripted tests).
func (c *cluster) setFilter(f func(m Message) bool) { c.filter = f }

// deliverWhere delivers every in-flight message matching pred (including
// ones produced meanwhile) and returns how many it delivered.
func (c *cluster) deliverWhere(pred func(m Message) bool) int {
	n := 0
	for again := true; again; {
		again = false
		for i := 0; i < len(c.net); i++ {
			m, err := UnmarshalMessage(c.net[i].b)
			if err == nil && pred(m) && c.deliver(i) {
				n++
				again = true
				break
			}
		}
	}
	return n
}

// dropWhere removes every in-flight message matching pred.
func (c *cluster) dropWhere(pred func(m Message) bool) {
	c.net = slices.DeleteFunc(c.net, func(e envelope) bool {
		m, err := UnmarshalMessage(e.b)
		return err == nil && pred(m)
	})
}

func isType(t MsgType) func(Message) bool { return func(m Message) bool { return m.Type == t } }

func between(from, to NodeID) func(Message) bool {
	return func(m Message) bool { return m.From == from && m.To == to }
}

// settleUntil is settle with a stop condition checked after every single
// action (one Ready phase, one persist phase, one delivery).
func (c *cluster) settleUntil(stop func() bool) bool {
	for i := 0; i < 10000 && !c.failed; i++ {
		busy := false
		for _, id := range c.ids {
			if c.n(id).rd == nil {
				if c.readyPhase(id) {
					busy = true
				}
			} else if c.persistPhase(id) {
				busy = true
			}
			if stop() {
				return true
			}
		}
		if len(c.net) > 0 && c.deliver(c.rng.Intn(len(c.net))) {
			busy = true
			if stop() {
				return true
			}
		}
		if !busy {
			c.tickAll()
			if stop() {
				return true
			}
		}
	}
	return false
}
