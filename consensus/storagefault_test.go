package consensus

import (
	"errors"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// Storage faults (issue 11; recover.go): a node's disk, while the node is
// down, gets
//   - bit flips: records that fail their checksum (Config.Faulty, term
//     known to the store now and then);
//   - a misdirected write: the record meant for one index landed on
//     another, so both fail the store's check;
//   - a lost write: a record that never reached the disk;
//   - a truncated tail: the last records are gone (HardState.Acked tells
//     it from a torn write);
//   - a damaged hard-state file (term, vote and Acked forgotten;
//     MustReach = unknown, as for a wiped disk).
// Log faults hit any number of nodes at once, all of them included; a
// lost hard state one node at a time (a forgotten vote is unsafe in any
// protocol). The checker then asserts that nothing committed is lost
// while an intact copy exists somewhere (the ordinary checks: one
// history, and the liveness check's convergence), and that when no copy
// is left the cluster halts and names exactly the lost indexes, each one
// held intact by no disk.

// damageRecord marks record i of a node's disk damaged.
func (c *cluster) damageRecord(id NodeID, i uint64, knownTerm bool) {
	d := &c.n(id).disk
	if i < d.log.FirstIndex() || i > d.log.LastIndex() {
		return
	}
	if d.faulty == nil {
		d.faulty = map[uint64]uint64{}
	}
	t := uint64(0)
	if knownTerm {
		t, _ = d.log.Term(i)
	}
	d.faulty[i] = t
	c.tracef("node %d: record %d damaged (term known %v)", id, i, knownTerm)
}

// cutTail removes a node's records after keep (the crash took them).
func (c *cluster) cutTail(id NodeID, keep uint64) {
	d := &c.n(id).disk
	keep = max(keep, d.log.FirstIndex()-1)
	d.log.Truncate(keep + 1)
	for i := range d.faulty {
		if i > keep {
			delete(d.faulty, i)
		}
	}
	c.tracef("node %d: log cut after %d (acked %d)", id, keep, d.hs.Acked)
}

// damageHardState: the state file is unreadable; the node restarts with
// a zero hard state and MustReach unknown, and stays down meanwhile.
func (c *cluster) damageHardState(id NodeID) {
	sn := c.n(id)
	sn.disk.hs = HardState{MustReach: math.MaxUint64}
	sn.downUntil = c.ticks + 3*c.cfg.election
	c.net = slices.DeleteFunc(c.net, func(e envelope) bool { return e.from == id || e.to == id })
	c.tracef("node %d: hard state lost", id)
}

// retainedFloor is the first index every disk still holds (below it,
// retention dropped entries somewhere: the sim damages only above).
func (c *cluster) retainedFloor() uint64 {
	f := uint64(1)
	for _, sn := range c.nodes {
		f = max(f, sn.disk.log.FirstIndex())
	}
	return f
}

// anyDamage: some disk has damaged records or some node held positions
// (retention waits meanwhile; see randomCompaction).
func (c *cluster) anyDamage() bool {
	for _, sn := range c.nodes {
		if len(sn.disk.faulty) > 0 || (sn.node != nil && (len(sn.node.log.held) > 0 || sn.node.log.spare > 0)) ||
			sn.disk.hs.Acked > sn.disk.log.LastIndex() {
			return true
		}
	}
	return false
}

// randomStorageFault damages the logs of one to all nodes (crashing
// them).
func (c *cluster) randomStorageFault(rng *rand.Rand) {
	ids := slices.Clone(c.ids)
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	k := 1 + rng.Intn(len(ids))
	if rng.Intn(2) == 0 {
		k = 1 + rng.Intn(min(2, len(ids)))
	}
	floor := c.retainedFloor()
	for _, id := range ids[:k] {
		c.crash(id)
		d := &c.n(id).disk
		first, last := max(d.log.FirstIndex(), floor), d.log.LastIndex()
		if last < first {
			continue
		}
		pick := func() uint64 { return first + uint64(rng.Int63n(int64(last-first+1))) }
		c.stats.storageFaults++
		switch rng.Intn(4) {
		case 0: // bit flips
			for n := 1 + rng.Intn(3); n > 0; n-- {
				c.damageRecord(id, pick(), rng.Intn(3) == 0)
			}
		case 1: // a misdirected write: both records fail the check
			c.damageRecord(id, pick(), false)
			c.damageRecord(id, pick(), false)
		case 2: // a lost write
			c.damageRecord(id, pick(), rng.Intn(3) == 0)
		default: // a truncated tail
			c.cutTail(id, pick()-1)
		}
	}
	c.ck.noteGone()
}

// intactCopy reports whether some disk holds entry e intact.
func (c *cluster) intactCopy(e Entry) NodeID { return c.intactCopyAmong(e, nil) }

// recordAt: a node other than skip's holds an intact record at index i
// of term t (t 0: any term).
func (c *cluster) recordAt(i, t uint64, skip func(NodeID) bool) NodeID {
	for _, sn := range c.nodes {
		s := sn.disk.log
		if skip(sn.id) || i < s.FirstIndex() || i > s.LastIndex() {
			continue
		}
		if _, bad := sn.disk.faulty[i]; bad {
			continue
		}
		if ents, err := s.Entries(i, i+1, 0); err == nil && (t == 0 || ents[0].Term == t) {
			return sn.id
		}
	}
	return 0
}

// intactCopyAmong: only on the disks of nodes in (nil: every node).
func (c *cluster) intactCopyAmong(e Entry, in func(NodeID) bool) NodeID {
	for _, sn := range c.nodes {
		if in != nil && !in(sn.id) {
			continue
		}
		s := sn.disk.log
		if e.Index < s.FirstIndex() || e.Index > s.LastIndex() {
			continue
		}
		if _, bad := sn.disk.faulty[e.Index]; bad {
			continue
		}
		if ents, err := s.Entries(e.Index, e.Index+1, 0); err == nil && sameEntry(ents[0], e) {
			return sn.id
		}
	}
	return 0
}

// noteGone records the committed entries that no disk holds intact any
// more (a lost or halted cluster is then allowed).
func (k *checker) noteGone() {
	floor := k.c.retainedFloor()
	for i := floor; i <= uint64(len(k.history)); i++ {
		if k.gone[i] {
			continue
		}
		if k.c.intactCopy(k.history[i-1]) == 0 {
			if k.gone == nil {
				k.gone = map[uint64]bool{}
			}
			k.gone[i] = true
			k.c.tracef("committed entry %d has no intact copy left", i)
		}
	}
}

// checkHalt accepts a cluster that did not converge if its leader halted
// on lost entries, every one of which no disk holds intact.
func (c *cluster) checkHalt() bool {
	l := c.leader()
	if l == 0 {
		return false
	}
	nd := c.n(l).node
	if nd.rec == nil || len(nd.rec.lost) == 0 {
		return false
	}
	st := nd.Status()
	if !slices.Equal(st.Lost, nd.rec.lost) || (c.logs != nil && !strings.Contains(c.logs.String(), "Entries lost:")) {
		c.fail("leader %d halted on %v without reporting it", l, nd.rec.lost)
		return true
	}
	// (A node removed from the configuration is not asked: its copies
	// left the cluster with it.)
	member := func(id NodeID) bool { return nd.conf().IsMember(id) }
	for _, i := range nd.rec.lost {
		if i <= uint64(len(c.ck.history)) {
			if h := c.intactCopyAmong(c.ck.history[i-1], member); h != 0 {
				c.fail("leader %d reports index %d lost, but node %d holds it intact\n%s", l, i, h, c.dumpNodes())
				return true
			}
		}
	}
	c.stats.halts++
	return true
}

// acceptLoss is the operator's decision on a halted leader: a list
// other than the reported one is refused, the reported one accepted —
// unless a lost index held a membership change, which is refused too
// (ErrLostMembership): then the cluster stays halted (false).
func (c *cluster) acceptLoss(l NodeID) bool {
	if c.failed {
		return false
	}
	nd := c.n(l).node
	lost := slices.Clone(nd.rec.lost)
	member := func(id NodeID) bool { return nd.conf().IsMember(id) }
	for _, i := range lost {
		t, _ := nd.log.termAt(i)
		if h := c.recordAt(i, t, member); h != 0 {
			// A node outside the configuration (removed, or not yet
			// added) still holds a record there of the same term: the
			// operator brings that copy back instead. (An EntryLost
			// keeps the entry's term, so a node added later with that
			// record would keep it: README.)
			c.tracef("index %d is lost to the members, but node %d holds a record of term %d there: not accepted", i, h, t)
			return false
		}
	}
	if err := nd.AcceptLoss(append(slices.Clone(lost), lost[len(lost)-1]+1)); !errors.Is(err, ErrLossMismatch) {
		c.fail("leader %d accepted a loss other than the reported %v: %v", l, lost, err)
		return false
	}
	err := nd.AcceptLoss(lost)
	if errors.Is(err, ErrLostMembership) {
		for _, i := range lost {
			if i <= uint64(len(c.ck.history)) && c.ck.history[i-1].Type == EntryMembership {
				c.tracef("leader %d refused to accept the loss of %v: membership entry %d", l, lost, i)
				return false
			}
			for _, sn := range c.nodes {
				if sn.node != nil && sn.node.log.conf.isMembership(i) {
					c.tracef("leader %d refused to accept the loss of %v: node %d knows %d as a membership entry", l, lost, sn.id, i)
					return false
				}
			}
		}
		c.fail("leader %d refused the loss of %v as a membership change, but none of them is one", l, lost)
		return false
	}
	if err != nil {
		c.fail("leader %d refused to accept the reported loss %v: %v", l, lost, err)
		return false
	}
	if c.ck.accepted == nil {
		c.ck.accepted = map[uint64]bool{}
	}
	for _, i := range lost {
		c.ck.accepted[i] = true
	}
	c.stats.accepted += len(lost)
	c.tracef("operator accepted the loss of %v on leader %d", lost, l)
	return true
}

// checkNoDamagedReads: the core never asks Storage for a damaged record.
func (c *cluster) checkNoDamagedReads() {
	for _, sn := range c.nodes {
		if sn.disk.badReads > 0 {
			c.fail("node %d: the core read a damaged record %d times", sn.id, sn.disk.badReads)
		}
	}
}

// --- scripted cases ---

func storageCluster(t *testing.T) *cluster {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 60)
	c.rounds(2 * testElection)
	return c
}

func (c *cluster) requireHistory(t *testing.T, ids ...NodeID) {
	t.Helper()
	for _, id := range ids {
		if last := c.n(id).disk.log.LastIndex(); last != uint64(len(c.ck.history)) {
			t.Fatalf("node %d log ends at %d, history at %d\n%s", id, last, len(c.ck.history), c.logText())
		}
		for _, e := range c.diskLog(id) {
			if h := c.ck.history[e.Index-1]; !c.ck.inHistory(e) {
				t.Fatalf("node %d holds %s at %d, history %s", id, fmtEntry(e), e.Index, fmtEntry(h))
			}
		}
		if len(c.n(id).disk.faulty) > 0 {
			t.Fatalf("node %d still has damaged records %v", id, c.n(id).disk.faulty)
		}
	}
}

// The first row: a flipped bit on the leader and on one follower,
// each at its own place; the third node is intact. Nothing is lost.
func TestDamagedMajorityRecoversFromIntactCopy(t *testing.T) {
	c := storageCluster(t)
	for _, id := range c.ids {
		c.crash(id)
	}
	c.damageRecord(3, 20, false)
	c.damageRecord(2, 45, false)
	for _, id := range c.ids {
		c.restart(id)
	}
	l := c.waitLeader(200)
	if l == 0 {
		t.Fatalf("no leader\n%s", c.logText())
	}
	c.proposeAndCommit(1, 5)
	c.rounds(3 * testElection)
	c.requireHistory(t, 1, 2, 3)
	if len(c.ck.history) != 65 {
		t.Fatalf("history %d, want 65", len(c.ck.history))
	}
	c.checkNoDamagedReads()
}

// The two damaged nodes hold every entry between them, and the intact
// node is down: intact records after a damaged one are copies too.
func TestDamagedPairRecoversFromEachOther(t *testing.T) {
	c := storageCluster(t)
	for _, id := range c.ids {
		c.crash(id)
	}
	c.damageRecord(3, 20, false)
	c.damageRecord(2, 45, true)
	c.restart(2)
	c.restart(3)
	if l := c.waitLeader(200); l == 0 {
		t.Fatalf("no leader\n%s", c.logText())
	}
	c.proposeAndCommit(2, 5)
	c.restart(1)
	c.rounds(4 * testElection)
	c.requireHistory(t, 1, 2, 3)
	c.checkNoDamagedReads()
}

// A cut tail on two of three nodes (the leader's and a follower's): the
// positions up to Acked count as held, and the intact node refills them.
func TestLostTailsOnMajority(t *testing.T) {
	c := storageCluster(t)
	for _, id := range c.ids {
		c.crash(id)
	}
	c.cutTail(3, 30)
	c.cutTail(2, 50)
	for _, id := range []NodeID{3, 2, 1} {
		c.restart(id)
	}
	if l := c.waitLeader(200); l == 0 {
		t.Fatalf("no leader\n%s", c.logText())
	}
	c.proposeAndCommit(3, 5)
	c.rounds(3 * testElection)
	c.requireHistory(t, 1, 2, 3)
	if len(c.ck.history) != 65 {
		t.Fatalf("history %d, want 65 (an acknowledged tail was lost)\n%s", len(c.ck.history), c.logText())
	}
}

// No intact copy anywhere: the cluster halts and names the index.
func TestNoIntactCopyHalts(t *testing.T) {
	c := storageCluster(t)
	for _, id := range c.ids {
		c.crash(id)
		c.damageRecord(id, 33, id == 2)
	}
	for _, id := range c.ids {
		c.restart(id)
	}
	c.rounds(20 * testElection)
	l := c.leader()
	if l == 0 {
		t.Fatalf("no leader\n%s", c.logText())
	}
	st := c.n(l).node.Status()
	if !slices.Equal(st.Lost, []uint64{33}) || st.Sequencing {
		t.Fatalf("leader %d: lost %v sequencing %v; want [33], halted\n%s", l, st.Lost, st.Sequencing, c.logText())
	}
	if !strings.Contains(c.logText(), "Entries lost: no member holds an intact copy of log index [33]") {
		t.Fatalf("no report\n%s", c.logText())
	}
	if got := len(c.ck.history); got != 60 {
		t.Fatalf("history changed to %d entries while halted", got)
	}
	c.checkNoDamagedReads()

	// The operator accepts exactly the reported loss; the cluster goes on
	// with an EntryLost at 33 and nothing renumbered.
	for _, f := range c.ids {
		if f != l {
			if err := c.n(f).node.AcceptLoss([]uint64{33}); !errors.Is(err, ErrNothingLost) {
				t.Fatalf("follower %d: AcceptLoss = %v, want ErrNothingLost", f, err)
			}
		}
	}
	if err := c.n(l).node.AcceptLoss([]uint64{33, 34}); !errors.Is(err, ErrLossMismatch) {
		t.Fatalf("AcceptLoss of more than was lost = %v, want ErrLossMismatch", err)
	}
	c.ck.accepted = map[uint64]bool{33: true}
	if err := c.n(l).node.AcceptLoss([]uint64{33}); err != nil {
		t.Fatal(err)
	}
	c.proposeAndCommit(l, 5)
	c.rounds(3 * testElection)
	c.requireHistory(t, 1, 2, 3)
	if h := c.ck.history; len(h) != 65 || h[32].Type != EntryLost || h[31].Type != EntryNormal || h[33].Type != EntryNormal {
		t.Fatalf("history %d entries, 32-34 %s %s %s; want 65 with only 33 lost", len(h), fmtEntry(h[31]), fmtEntry(h[32]), fmtEntry(h[33]))
	}
	if err := c.n(l).node.AcceptLoss([]uint64{33}); !errors.Is(err, ErrNothingLost) {
		t.Fatalf("second AcceptLoss = %v, want ErrNothingLost", err)
	}
}

// A single-member cluster has nowhere to recover from: it halts on a
// damaged record like any cluster (it used to go on without it and
// renumber what followed) until the operator accepts the loss.
func TestSingleMemberHaltsOnDamageUntilAccepted(t *testing.T) {
	c := newTestCluster(t, 1)
	c.requireLeader(1, 30)
	c.proposeAndCommit(1, 20)
	c.crash(1)
	c.damageRecord(1, 7, false)
	c.restart(1)
	c.rounds(10 * testElection)
	st := c.n(1).node.Status()
	if st.Role != Leader || !slices.Equal(st.Lost, []uint64{7}) || st.Sequencing {
		t.Fatalf("role %v lost %v sequencing %v; want a halted leader reporting [7]\n%s", st.Role, st.Lost, st.Sequencing, c.logText())
	}
	c.ck.accepted = map[uint64]bool{7: true}
	if err := c.n(1).node.AcceptLoss([]uint64{7}); err != nil {
		t.Fatal(err)
	}
	c.proposeAndCommit(1, 3)
	c.rounds(2 * testElection)
	c.requireHistory(t, 1)
	if h := c.ck.history; len(h) != 23 || h[6].Type != EntryLost {
		t.Fatalf("history %d entries, index 7 %s; want 23 with 7 lost", len(h), fmtEntry(h[6]))
	}
}

// A torn write (a damaged record beyond what the node acknowledged, here
// because its hard state lagged) is dropped, not held.
func TestTornUnacknowledgedRecordDropped(t *testing.T) {
	c := storageCluster(t)
	c.isolate(3)
	c.propose(3)
	c.propose(3)
	for c.process(3) {
	}
	c.crash(3)
	d := &c.n(3).disk
	if d.log.LastIndex() != 62 {
		t.Fatalf("setup: leader log ends at %d", d.log.LastIndex())
	}
	d.hs.Acked = 60
	c.damageRecord(3, 61, false)
	c.heal()
	c.restart(3)
	if nd := c.n(3).node; len(nd.log.held) != 0 || nd.log.lastIndex() != 60 {
		t.Fatalf("node 3: held %v last %d; want a log ending at 60", nd.log.held, nd.log.lastIndex())
	}
	c.rounds(6 * testElection)
	c.requireHistory(t, 1, 2, 3)
}

// The real-process row "flipped bit / leader" (one damaged record, 562 of
// 1500): the leader holds every position after it as damaged and
// recovers them, mostly from its own intact spare records after it. Its
// store reads them in the background (ErrReadPending, as broker/store
// does for what its cache lacks). Asked one position at a time, each
// background read fetched one entry and the rest waited for the next
// heartbeat's query: one position per heartbeat, and the cluster did not
// sequence for minutes. Read in runs, the recovery takes a few heartbeats.
func TestDamagedLeaderRecoversSpareRunPromptly(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 400)
	c.rounds(2 * testElection)
	for _, id := range c.ids {
		c.crash(id)
	}
	c.damageRecord(3, 200, false)
	for _, id := range c.ids {
		c.restart(id)
		c.n(id).store.rate = 1 // every read not in memory goes to the background
	}
	if l := c.waitLeader(6 * testElection); l != 3 {
		held := 0
		if nd := c.n(3).node; nd != nil {
			held = len(nd.log.held)
		}
		t.Fatalf("no sequencing leader within %d ticks (want 3, which holds %d damaged positions; leader %d)",
			6*testElection, held, c.leader())
	}
	c.proposeAndCommit(1, 5)
	c.rounds(3 * testElection)
	c.requireHistory(t, 1, 2, 3)
	if len(c.ck.history) != 405 {
		t.Fatalf("history %d, want 405", len(c.ck.history))
	}
	c.checkNoDamagedReads()
}
