package consensus

import (
	"bytes"
	"fmt"
	"math"
)

// checker asserts the safety properties after every step of a cluster:
//   - at most one leader per term (ever);
//   - every node applies one common history, contiguously, each index
//     once per node lifetime (Committed starts after Applied);
//   - no (Origin, ReqID) appears twice in the committed history, so every
//     acknowledged proposal is committed exactly once;
//   - per origin, committed ReqIDs strictly increase (proposals commit in
//     the order they were proposed), and no pending proposal is ever
//     reported dropped (superseded by a later one of its origin);
//   - no disk ever drops a committed entry (a truncation below the
//     committed history must rewrite identical entries).
type checker struct {
	c       *cluster
	history []Entry // history[i-1] is the committed entry at index i
	seen    map[reqKey]uint64
	acked   map[reqKey]bool
	leaders map[uint64]NodeID
	keep    []Entry // committed entries a truncation must preserve
	lastReq map[NodeID]uint64
	normals []uint64 // normals[i-1]: EntryNormal entries in history[:i]
	m       *memCheck
	gone    map[uint64]bool // committed indexes no disk held intact any more (storagefault_test.go)
	// accepted: lost indexes an operator gave up (Node.AcceptLoss); the
	// EntryLost committed there replaces the history's entry.
	accepted       map[uint64]bool
	lostMembership bool // an accepted loss replaced a membership entry

	noteGoneAfter bool
	keepResetting bool // keep is checked after a log restart (beforeReset)
}

func newChecker(c *cluster) *checker {
	return &checker{c: c, seen: map[reqKey]uint64{}, acked: map[reqKey]bool{}, leaders: map[uint64]NodeID{}, lastReq: map[NodeID]uint64{}}
}

func sameEntry(a, b Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && a.Origin == b.Origin &&
		a.ReqID == b.ReqID && bytes.Equal(a.Data, b.Data)
}

// inHistory: e is the committed history's entry at its index. The first
// EntryLost seen where an operator accepted the loss (AcceptLoss) takes
// the lost entry's place (with its term, which only the leader chose).
func (k *checker) inHistory(e Entry) bool {
	h := &k.history[e.Index-1]
	if k.accepted[e.Index] && e.Type == EntryLost && h.Type != EntryLost {
		if h.Type == EntryMembership {
			// A lost membership entry is taken for a message (nothing
			// tells the leader its type): the messages after it are
			// numbered one higher, and the configuration it set is
			// known only where it was already in force (documented).
			k.lostMembership = true
			for j := int(e.Index) - 1; j < len(k.normals); j++ {
				k.normals[j]++
			}
		}
		*h = e
	}
	return sameEntry(*h, e)
}

func fmtEntry(e Entry) string {
	return fmt.Sprintf("{i%d t%d %d/%d}", e.Index, e.Term, e.Origin, e.ReqID)
}

func (k *checker) afterStep() {
	k.memAfterStep()
	for _, sn := range k.c.nodes {
		nd := sn.node
		if nd == nil || nd.role != Leader {
			continue
		}
		if l, ok := k.leaders[nd.term]; ok && l != sn.id {
			k.c.fail("two leaders in term %d: node %d and node %d", nd.term, l, sn.id)
		}
		k.leaders[nd.term] = sn.id
	}
}

func (k *checker) applied(sn *simNode, e Entry) {
	if e.Index != sn.disk.applied+1 {
		k.c.fail("node %d applied index %d after %d (not contiguous / applied twice)", sn.id, e.Index, sn.disk.applied)
		return
	}
	switch i := int(e.Index); {
	case i <= len(k.history):
		if h := k.history[i-1]; !k.inHistory(e) {
			k.c.fail("node %d committed %s at index %d, but the history has %s", sn.id, fmtEntry(e), i, fmtEntry(h))
		}
	case i == len(k.history)+1:
		if e.ReqID != 0 {
			key := reqKey{e.Origin, e.ReqID}
			// (A proposal whose entry was lost and accepted may commit
			// again: its origin never saw it acknowledged and retried.)
			at, dup := k.seen[key]
			retried := dup && k.accepted[at]
			if dup && !retried {
				k.c.fail("proposal %d/%d committed twice: index %d and %d", e.Origin, e.ReqID, at, e.Index)
			}
			k.seen[key] = e.Index
			if e.ReqID <= k.lastReq[e.Origin] && !retried {
				k.c.fail("proposal %d/%d committed at index %d after %d/%d: out of order", e.Origin, e.ReqID, e.Index, e.Origin, k.lastReq[e.Origin])
			}
			k.lastReq[e.Origin] = e.ReqID
		}
		k.history = append(k.history, e)
		n := uint64(0)
		if len(k.normals) > 0 {
			n = k.normals[len(k.normals)-1]
		}
		if e.Type != EntryMembership {
			n++ // (an EntryLost keeps its message's number)
		}
		if e.Type == EntryLost && !k.accepted[e.Index] {
			k.c.fail("node %d committed a lost entry at %d that no operator accepted", sn.id, e.Index)
		}
		k.normals = append(k.normals, n)
		if e.Type == EntryMembership && !k.lostMembership {
			k.checkChange(sn, e)
		}
	default:
		k.c.fail("node %d committed index %d beyond history end %d", sn.id, i, len(k.history))
	}
}

// checkChange: a committed membership entry changes one node only.
func (k *checker) checkChange(sn *simNode, e Entry) {
	me, err := DecodeMembership(e.Data)
	if err != nil {
		k.c.fail("node %d applied an undecodable membership entry at %d", sn.id, e.Index)
		return
	}
	prev := ConfState{Voters: k.c.initial}
	for i := int(e.Index) - 2; i >= 0; i-- {
		if h := k.history[i]; h.Type == EntryMembership {
			p, _ := DecodeMembership(h.Data)
			prev = ConfState{Voters: p.Voters, Learners: p.Learners}
			break
		}
	}
	want, err := prev.applyChange(me.Change)
	if err != nil || !sameMembers(&want, &ConfState{Voters: me.Voters, Learners: me.Learners}) {
		k.c.fail("membership entry %d (%v of %d) does not follow from voters %v learners %v: %v", e.Index,
			me.Change.Type, me.Change.ID, prev.Voters, prev.Learners, err)
	}
}

// (spareCut: the node drops its spare records from there, copies beyond a
// damaged one that a durable leader copy replaces; see recover.go.)
func (k *checker) beforeTruncate(sn *simNode, from, spareCut uint64) {
	k.keep = k.keep[:0]
	if from == 0 {
		return
	}
	last := sn.disk.log.LastIndex()
	if spareCut > 0 {
		last = min(last, spareCut-1)
	}
	if sn.disk.hs.MustReach == math.MaxUint64 {
		// A node that lost its hard state knows neither what it
		// acknowledged nor which history its log holds: it is refilled
		// from the leader, and its copies may go (noteGone, afterwards).
		k.noteGoneAfter = true
		return
	}
	if a := sn.disk.hs.Acked; a > 0 {
		// Records beyond how far the node's log reached when it last
		// acknowledged anything were never acknowledged by it (a torn
		// write, dropped at startup with what follows): the entries are
		// committed on other disks, not on this one's account.
		last = min(last, a)
	}
	for i := from; i <= last && i <= uint64(len(k.history)); i++ {
		if _, bad := sn.disk.faulty[i]; bad {
			continue
		}
		ents, err := sn.disk.log.Entries(i, i+1, 0)
		if err != nil {
			continue
		}
		if sameEntry(ents[0], k.history[i-1]) {
			k.keep = append(k.keep, ents[0])
		}
	}
}

func (k *checker) afterAppend(sn *simNode) {
	if k.noteGoneAfter {
		k.noteGoneAfter = false
		k.noteGone()
	}
	for _, e := range k.keep {
		ents, err := sn.disk.log.Entries(e.Index, e.Index+1, 0)
		if err != nil || !sameEntry(ents[0], e) {
			if k.keepResetting && k.c.intactCopy(e) != 0 {
				// A log restart (retention elsewhere) takes this node's
				// spare copies with it; another disk holds the entry.
				continue
			}
			k.c.fail("node %d truncated committed entry %s from its disk", sn.id, fmtEntry(e))
			return
		}
	}
	k.keep, k.keepResetting = k.keep[:0], false
}

// beforeReset: a log reset drops entries before rd.ResetLog (committed;
// the node does not deliver them), but committed entries at or after it
// must be rewritten identically, unless the node stops being trusted
// until it holds them again (its MustReach covers them).
func (k *checker) beforeReset(sn *simNode, rd Ready) {
	k.keep = k.keep[:0]
	if rd.ResetLog > uint64(len(k.history))+1 {
		k.c.fail("node %d resets its log to %d beyond the committed history %d", sn.id, rd.ResetLog, len(k.history))
	}
	if sn.disk.hs.MustReach >= sn.disk.log.LastIndex() { // (persisted first)
		return
	}
	k.beforeTruncate(sn, rd.ResetLog, 0)
	k.keepResetting = true
}

// beforePersist: AcceptedTerm may rise only in a Ready that changes no
// already-persisted entry, so that a crash persisting HardState but not the
// log never leaves AcceptedTerm describing a log that is not on disk.
func (k *checker) beforePersist(sn *simNode, rd Ready) {
	// (If a newer term intervened, the truncation is that term's sync and
	// the persisted log before it was this AcceptedTerm's history.)
	if rd.HardState == nil || rd.HardState.AcceptedTerm <= sn.disk.hs.AcceptedTerm ||
		rd.HardState.AcceptedTerm != rd.HardState.Term {
		return
	}
	if rd.TruncateFrom > 0 && rd.TruncateFrom <= sn.disk.log.LastIndex() {
		k.c.fail("node %d: Ready raises AcceptedTerm to %d while truncating its log from %d",
			sn.id, rd.HardState.AcceptedTerm, rd.TruncateFrom)
	}
}
