package consensus

import (
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

// The seeded simulation: random schedules of client proposals and faults
// (partitions symmetric, asymmetric and leader-isolating; drops,
// duplicates, reordering, delays; pauses; crashes that lose unpersisted
// state, torn persistence; restarts; retention dropping old entries, with
// or without the boundary term; a node losing its log tail (MustReach) or
// its whole disk) against 3- and 5-node clusters. The
// checker runs after every step; each schedule ends with a liveness check
// (heal everything: one leader, every node converges, every pending
// proposal commits or is reported dropped).
//
//	go test ./consensus -run 'TestSim$' -sim.schedules=200000   # longer sweep
//	go test ./consensus -run 'TestSim$' -sim.seed=12345 -sim.trace # replay one

var (
	simSchedules = flag.Int("sim.schedules", 10000, "number of simulation schedules")
	simSeed      = flag.Int64("sim.seed", 0, "run only this schedule seed")
	simFirst     = flag.Int64("sim.first", 1, "first schedule seed of a sweep")
	simSteps     = flag.Int("sim.steps", 500, "random steps per schedule")
	simTrace     = flag.Bool("sim.trace", false, "print the action trace and log of the schedule (with -sim.seed)")
)

func TestSim(t *testing.T) {
	if *simSeed != 0 {
		runSchedule(t, *simSeed, *simSteps, *simTrace)
		return
	}
	n := *simSchedules
	if raceEnabled && !flagSet("sim.schedules") {
		n /= 10 // the race detector is ~10x slower; the plain run covers 10,000
	}
	if testing.Short() {
		n /= 10
	}
	start := time.Now()
	for i := 0; i < n && !t.Failed(); i++ {
		runSchedule(t, *simFirst+int64(i), *simSteps, false)
	}
	t.Logf("%d schedules in %v; totals: %+v", n, time.Since(start).Round(time.Millisecond), simTotals)
}

// simStats shows what the schedules exercised (printed with -v).
type simStats struct {
	Committed, Acked, Dropped, Terms, Truncations, Crashes, TornCrashes int
	Compactions, Resets, LostTails, Wipes                               int
	StorageFaults, HardStateLosses, Halts, AcceptedLosses               int // storagefault_test.go
	ReadsPending                                                        int // Storage reads answered ErrReadPending
	MembershipChanges                                                   int // committed membership entries

	RandomPhaseCommits int // entries committed before the liveness phase
}

var simTotals simStats

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runSchedule(t *testing.T, seed int64, steps int, trace bool) {
	runScheduleWith(t, seed, steps, trace, scheduleOpts{})
}

// scheduleOpts vary a schedule for tests of the simulation itself.
type scheduleOpts struct {
	// breakDurability sets Config.TestOnlyBreakDurability on every node.
	breakDurability bool
	// onFail, if set, receives the first checker failure instead of the
	// test failing; the schedule stops there.
	onFail func(msg string)
	// legacyFaults draws disk faults as before issue 11 (so seeds found
	// then replay the same schedule; a lost tail is now detected through
	// HardState.Acked rather than set as MustReach).
	legacyFaults bool
}

// simFailure unwinds a schedule whose failure goes to scheduleOpts.onFail.
type simFailure struct{ msg string }

func runScheduleWith(t *testing.T, seed int64, steps int, trace bool, opts scheduleOpts) {
	if opts.onFail != nil {
		defer func() {
			if r := recover(); r != nil {
				f, ok := r.(simFailure)
				if !ok {
					panic(r)
				}
				opts.onFail(f.msg)
			}
		}()
	}
	rng := newRand(seed)
	size := 3
	if rng.Intn(2) == 0 {
		size = 5
	}
	cfg := defaultSimConfig
	if rng.Intn(2) == 0 {
		cfg.heartbeat, cfg.election = 1, 4 // faster churn
	}
	cfg.maxInflight = 1 + rng.Intn(4)
	cfg.maxBatch = 16 << rng.Intn(4)
	membership, spares := rng.Intn(2) == 0, 0
	if membership {
		spares = rng.Intn(3) // nodes that may join (and removed ones may rejoin)
	}
	c := newClusterSpares(t, size, spares, seed, cfg)
	c.membership = membership
	c.legacyFaults = opts.legacyFaults
	if k := rng.Intn(3); k > 0 || opts.breakDurability {
		// Catch-up reads go to the background (ErrReadPending) now and then.
		c.readPendingRate = []float64{0, 0.2, 0.6}[k]
		c.breakDurability = opts.breakDurability
		for _, sn := range c.nodes {
			c.start(sn) // (nothing happened yet: fresh nodes with the switch)
		}
	}
	c.trace = &strings.Builder{}
	c.logs = &strings.Builder{}
	replay := fmt.Sprintf("go test ./consensus -run 'TestSim$' -sim.seed=%d -sim.steps=%d -sim.trace", seed, steps)
	c.fail = func(format string, args ...any) {
		if c.failed {
			return
		}
		c.failed = true
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if trace {
			t.Logf("trace:\n%s\nlog:\n%s", c.trace.String(), c.logs.String())
		}
		if opts.onFail != nil {
			panic(simFailure{fmt.Sprintf("seed %d (%d nodes): %s", seed, size, msg)})
		}
		t.Fatalf("schedule seed %d (%d nodes): %s\nreplay: %s", seed, size, msg, replay)
	}
	if !trace {
		c.trace, c.logs = nil, nil
	}
	if trace {
		defer func() { t.Logf("trace:\n%s\nlog:\n%s", c.trace.String(), c.logs.String()) }()
	}
	switch rng.Intn(3) {
	case 0:
		c.dropRate = 0.02
	case 1:
		c.dropRate = 0.1
		c.dupRate = 0.05
	}
	if rng.Intn(2) == 0 {
		c.waitLeader(50) // start from a stable cluster
	}
	switch rng.Intn(4) {
	case 0:
		c.chaos = 8 // many more faults
	case 1:
		c.chaos, c.churnOnly = 8, true
	}
	for s := 0; s < steps && !c.failed; s++ {
		c.randomStep(rng)
	}
	simTotals.RandomPhaseCommits += len(c.ck.history)
	c.checkLiveness()
	simTotals.Committed += len(c.ck.history)
	simTotals.Acked += len(c.ck.acked)
	simTotals.Terms += len(c.ck.leaders)
	simTotals.Truncations += c.stats.truncations
	simTotals.Crashes += c.stats.crashes
	simTotals.TornCrashes += c.stats.torn
	simTotals.Dropped += c.stats.dropped
	simTotals.Compactions += c.stats.compactions
	simTotals.Resets += c.stats.resets
	simTotals.LostTails += c.stats.lostTails
	simTotals.Wipes += c.stats.wipes
	simTotals.StorageFaults += c.stats.storageFaults
	simTotals.HardStateLosses += c.stats.hsLosses
	simTotals.Halts += c.stats.halts
	simTotals.AcceptedLosses += c.stats.accepted
	simTotals.ReadsPending += c.stats.readsPending
	for _, e := range c.ck.history {
		if e.Type == EntryMembership {
			simTotals.MembershipChanges++
		}
	}
}

func (c *cluster) pick(rng *rand.Rand) NodeID { return c.ids[rng.Intn(len(c.ids))] }

func (c *cluster) randomStep(rng *rand.Rand) {
	switch r := rng.Intn(100); {
	case r < 30:
		if len(c.net) > 0 {
			i := rng.Intn(len(c.net))
			if rng.Intn(20) == 0 { // delay: leave it, deliver another later
				return
			}
			c.deliver(i)
		}
	case r < 50:
		id := c.pick(rng)
		if c.n(id).rd == nil {
			c.readyPhase(id)
		} else {
			c.persistPhase(id)
		}
	case r < 65:
		c.tracef("tick")
		c.tickAll()
	case r < 75:
		c.propose(c.pick(rng))
	case r < 76:
		// A client gives up on a pending proposal (deterministic pick).
		sn := c.n(c.pick(rng))
		keys := slices.SortedFunc(maps.Keys(sn.pending), func(a, b reqKey) int { return cmpU64(a.req, b.req) })
		if len(keys) > 0 && sn.node != nil {
			k := keys[rng.Intn(len(keys))]
			if sn.node.Cancel(k.origin, k.req) {
				c.tracef("cancel %d/%d", k.origin, k.req)
				delete(sn.pending, k)
			}
		}
	case r < 77+c.chaos:
		c.randomFault(rng)
	case r < 80:
		c.randomFault(rng)
	case r < 83:
		// A background read completes; its ReadReady is sometimes lost
		// (the heartbeat fallback must retry).
		c.completeReads(c.pick(rng), rng.Intn(5) != 0)
	default: // a burst of progress
		for k := rng.Intn(2 * len(c.ids)); k > 0 && len(c.net) > 0; k-- {
			c.deliver(rng.Intn(len(c.net)))
		}
		for _, id := range c.ids {
			c.process(id)
			if rng.Intn(2) == 0 {
				c.completeReads(id, rng.Intn(5) != 0)
			}
		}
	}
}

func (c *cluster) randomFault(rng *rand.Rand) {
	if c.churnOnly {
		// Leaders that append alone and die, and returning nodes: the
		// ingredients of Raft's Figure 8.
		if rng.Intn(2) == 0 {
			c.randomFaultKind(rng, 14)
		} else {
			c.randomFaultKind(rng, 7)
		}
		return
	}
	if c.membership {
		if k := rng.Intn(22); k >= 19 {
			c.randomMembership(rng)
		} else {
			c.randomFaultKind(rng, k)
		}
		return
	}
	c.randomFaultKind(rng, rng.Intn(19))
}

func (c *cluster) randomFaultKind(rng *rand.Rand, kind int) {
	switch kind {
	case 14, 15: // the leader sequences entries nobody else gets, then dies
		if l := c.leader(); l != 0 {
			c.tracef("leader %d appends alone and crashes", l)
			c.isolate(l)
			for k := rng.Intn(3); k >= 0; k-- {
				c.propose(l)
			}
			for c.process(l) {
			}
			c.crash(l)
			c.heal()
		}
	case 0, 1, 12:
		c.tracef("heal")
		c.heal()
	case 2: // random symmetric partition
		ids := slices.Clone(c.ids)
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := 1 + rng.Intn(len(ids)-1)
		c.tracef("partition %v | %v", ids[:k], ids[k:])
		c.partition(ids[:k], ids[k:])
	case 3: // isolate the leader
		if l := c.leader(); l != 0 {
			c.tracef("isolate leader %d", l)
			c.isolate(l)
		}
	case 4: // asymmetric: cut one direction
		a, b := c.pick(rng), c.pick(rng)
		if a != b {
			c.tracef("cut %d->%d", a, b)
			c.cut[[2]NodeID{a, b}] = true
		}
	case 5, 6:
		id := c.pick(rng)
		if rng.Intn(2) == 0 {
			// Prefer a node whose Ready is in flight: its Messages are out,
			// its HardState and entries not yet durable.
			for _, sn := range c.nodes {
				if sn.node != nil && sn.rd != nil {
					id = sn.id
					break
				}
			}
		}
		if rng.Intn(3) == 0 {
			c.tornCrash(id)
		} else {
			c.crash(id)
		}
	case 7, 8, 13: // restart a random crashed node
		var down []NodeID
		for _, id := range c.ids {
			if c.n(id).node == nil {
				down = append(down, id)
			}
		}
		if len(down) > 0 {
			c.restart(down[rng.Intn(len(down))])
		}
	case 16:
		c.randomCompaction(rng)
	case 17:
		switch {
		case c.legacyFaults:
			c.randomDiskLossLegacy(rng)
		case rng.Intn(3) == 0:
			c.randomDiskLoss(rng, false)
		default:
			c.randomStorageFault(rng)
		}
	case 18:
		c.randomDiskLoss(rng, true)
	case 9:
		id := c.pick(rng)
		if sn := c.n(id); sn.node != nil && !c.wipedUnrepaired() {
			c.tracef("pause %d", id)
			sn.paused = true
		}
	case 10:
		for _, sn := range c.nodes { // resume all
			if sn.paused {
				c.tracef("resume %d", sn.id)
				sn.paused = false
			}
		}
	case 11: // crash the leader
		if l := c.leader(); l != 0 {
			c.crash(l)
		}
	}
}

// checkLiveness heals everything and requires the cluster to converge: one
// sequencing leader followed by all, every node's log equal to the
// committed history, and nothing pending anywhere.
func (c *cluster) checkLiveness() {
	if c.failed {
		return
	}
	c.tracef("--- liveness: heal all")
	c.heal()
	c.dropRate, c.dupRate = 0, 0
	for _, sn := range c.nodes {
		sn.paused = false
	}
	// One more proposal per node once a leader is there proves progress.
	proposed := false
	var why string
	halted, accepts := 0, 0
	for r := 0; r < 600 && !c.failed; r++ {
		for _, sn := range c.nodes {
			c.restart(sn.id) // (a wiped node once its down time is over)
		}
		c.round()
		if l := c.leader(); l != 0 && c.n(l).node.rec != nil && len(c.n(l).node.rec.lost) > 0 {
			if halted++; halted > 4*c.cfg.election {
				// Halted on entries no disk holds intact: check the
				// report, then decide as an operator would (accept the
				// loss) and require the cluster to go on.
				if !c.checkHalt() {
					c.fail("leader %d halted on %v without a report", l, c.n(l).node.rec.lost)
				}
				if accepts++; accepts > 5 {
					c.fail("halted on lost entries again after %d accepted losses", accepts-1)
					break
				}
				if !c.acceptLoss(l) {
					return // (halted for good on a lost membership change, reported)
				}
				halted, r = 0, 0
			}
			continue
		}
		halted = 0
		if why = c.converged(); why == "" {
			if proposed {
				break
			}
			for _, id := range c.ids {
				if c.memberOfFinal(id) {
					c.propose(id)
				}
			}
			proposed = true
		}
	}
	if c.failed {
		return
	}
	c.checkNoDamagedReads()
	if why != "" || !proposed {
		c.fail("liveness: not converged after healing: %s\n%s", why, c.dumpNodes())
		return
	}
	for _, id := range c.ids {
		if !c.memberOfFinal(id) {
			continue // (removed, or never joined)
		}
		if last := c.n(id).disk.log.LastIndex(); last != uint64(len(c.ck.history)) {
			c.fail("node %d log ends at %d, history at %d", id, last, len(c.ck.history))
			return
		}
		for _, e := range c.diskLog(id) { // (from its first index: retention)
			if h := c.ck.history[e.Index-1]; !c.ck.inHistory(e) {
				c.fail("node %d log differs from history at %d: %s vs %s", id, e.Index, fmtEntry(e), fmtEntry(h))
				return
			}
		}
	}
	for k := range c.ck.acked {
		if _, ok := c.ck.seen[k]; !ok {
			c.fail("acknowledged %v not in history", k)
		}
	}
}

// randomCompaction drops a node's oldest entries, as retention does: only
// entries it applied, and (the documented caller duty) only entries older
// than every proposal still pending at its origin, so no re-forwarded
// proposal can be sequenced again by a leader that forgot it.
func (c *cluster) randomCompaction(rng *rand.Rand) {
	sn := c.n(c.pick(rng))
	if c.anyDamage() {
		return // (the sim keeps every copy a recovering leader may need)
	}
	bound := sn.disk.applied
	if sn.node != nil {
		// As the runtime's retention: never beyond the core's commit
		// index (after a restart with a damaged log it can be below
		// what the disk applied in an earlier life; seed 113520).
		bound = min(bound, sn.node.log.committed)
	}
	for _, o := range c.nodes {
		for k := range o.pending {
			if at, ok := c.ck.seen[k]; ok && at <= bound {
				bound = at - 1
			}
		}
	}
	s := sn.disk.log
	if bound < s.FirstIndex() {
		return
	}
	first := s.FirstIndex() + 1 + uint64(rng.Int63n(int64(bound-s.FirstIndex()+1)))
	c.stats.compactions++
	c.compact(sn.id, first, rng.Intn(2) == 0)
}

// untrusted reports whether a node is (or would restart as) one whose log
// lost entries, or a wiped node still down.
func (c *cluster) untrusted(sn *simNode) bool {
	return sn.disk.hs.MustReach != 0 || (sn.node != nil && sn.node.mustReach != 0) || sn.downUntil > c.ticks
}

func (c *cluster) wipedUnrepaired() bool {
	for _, sn := range c.nodes {
		if sn.disk.hs.MustReach == math.MaxUint64 || sn.downUntil > c.ticks {
			return true
		}
	}
	return false
}

// randomDiskLoss crashes a node and damages its disk: a corrupt record
// loses the tail from a random index (MustReach = the old last index), or
// (wipe) the whole disk is replaced. At most one node is untrusted at a
// time, so a majority can always repair it. A wiped node stays down for
// 3×ElectionTicks, nothing in flight to or from it survives (its
// connections died), and no node is paused meanwhile: the documented
// assumption that every leader or coordinator it may have acknowledged has
// stepped down or lost by the time it returns.
func (c *cluster) randomDiskLoss(rng *rand.Rand, wipe bool) {
	for _, sn := range c.nodes {
		if c.untrusted(sn) || (wipe && sn.paused) {
			return
		}
	}
	sn := c.n(c.pick(rng))
	c.crash(sn.id)
	if !wipe {
		if rng.Intn(2) == 0 {
			c.stats.hsLosses++
			c.damageHardState(sn.id)
			c.ck.noteGone()
			return
		}
		keep := uint64(rng.Int63n(int64(sn.disk.log.LastIndex() + 1)))
		c.stats.lostTails++
		c.loseTail(sn.id, keep)
		c.ck.noteGone()
		return
	}
	c.stats.wipes++
	c.wipeDisk(sn.id)
	c.ck.noteGone()
	sn.downUntil = c.ticks + 3*c.cfg.election
	c.net = slices.DeleteFunc(c.net, func(e envelope) bool { return e.from == sn.id || e.to == sn.id })
}

func (c *cluster) converged() string {
	l := c.leader()
	if l == 0 {
		return "no leader"
	}
	ln := c.n(l).node
	if ln.sync != syncDone {
		return fmt.Sprintf("leader %d not sequencing", l)
	}
	last := ln.log.lastIndex()
	for _, sn := range c.nodes {
		nd := sn.node
		if !ln.conf().IsMember(sn.id) {
			continue // (removed, or never joined)
		}
		switch {
		case nd == nil:
			return fmt.Sprintf("node %d is down", sn.id)
		case nd.lead != l:
			return fmt.Sprintf("node %d follows %d, leader is %d (term %d vs %d)", sn.id, nd.lead, l, nd.term, ln.term)
		case nd.log.committed != last || sn.disk.applied != last:
			return fmt.Sprintf("node %d commit %d applied %d, leader last %d", sn.id, nd.log.committed, sn.disk.applied, last)
		case len(sn.pending) > 0:
			return fmt.Sprintf("node %d has %d pending proposals", sn.id, len(sn.pending))
		case nd.mustReach != 0:
			return fmt.Sprintf("node %d still must reach %d", sn.id, nd.mustReach)
		case len(nd.log.held) > 0 || len(sn.disk.faulty) > 0:
			return fmt.Sprintf("node %d still holds %d damaged positions (%d records)", sn.id, len(nd.log.held), len(sn.disk.faulty))
		}
	}
	if len(c.net) > 0 {
		return "messages in flight"
	}
	return ""
}

// TestSimFoundSeeds replays schedules that longer sweeps found failing
// once, so their fixes stay fixed in every run: 203018 (a removed node
// with a lagging log held lower IDs back: leaderless), 413751 (Seq off by
// one after a log restart and a crash), 609689 (a forward replayed at
// election passed on a log tail the synchronisation then truncated).
func TestSimFoundSeeds(t *testing.T) {
	for _, seed := range []int64{203018, 413751, 609689} {
		runScheduleWith(t, seed, 500, false, scheduleOpts{legacyFaults: true})
	}
	// Before issue 11 a lost tail made a node untrusted (MustReach) and,
	// with a membership change or a log restart in flight, these left
	// the cluster without a leader after healing.
	for _, seed := range []int64{414056, 506607, 777027} {
		runScheduleWith(t, seed, 500, false, scheduleOpts{legacyFaults: true})
	}
	// Storage faults (issue 11), found by sweeps past 30,000: 50605 (an
	// append right after the log proper dropped every held position: a
	// new leader sequenced another entry at a committed index), 72418 (a
	// position called lost while a learner held it), 82428 and 8548 (the
	// loss of a membership entry accepted: members numbered the messages
	// after it differently), 9928 (an accepted loss a non-member still
	// held), 32926 and 5633 (a lost proposal retried), 33360 and 50133
	// (checker: a torn write beyond Acked, a log restart's spare copies),
	// 109389 (a leader that crashed while recovering a fetched history
	// took its own stale record, kept as a spare copy, for its log).
	for _, seed := range []int64{50605, 72418, 82428, 8548, 9928, 32926, 5633, 33360, 50133, 109389} {
		runSchedule(t, seed, 500, false)
	}
}

// randomDiskLossLegacy is randomDiskLoss as it drew before issue 11.
func (c *cluster) randomDiskLossLegacy(rng *rand.Rand) {
	for _, sn := range c.nodes {
		if c.untrusted(sn) {
			return
		}
	}
	sn := c.n(c.pick(rng))
	c.crash(sn.id)
	keep := uint64(rng.Int63n(int64(sn.disk.log.LastIndex() + 1)))
	c.stats.lostTails++
	c.loseTail(sn.id, keep)
	c.ck.noteGone()
}
