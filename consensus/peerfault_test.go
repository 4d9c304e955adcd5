package consensus

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

// A faulty (even authenticated) peer must not be able to wedge or rewrite
// the cluster: Step refuses what no correct node sends, with
// ErrBadMessage and no change of state.

// nodeState renders everything Step could change.
func nodeState(nd *Node) string {
	return fmt.Sprintf("hs=%+v st=%+v msgs=%d ready=%v phase=%d elapsed=%d lead=%d held=%d fwd=%v recv=%v reqs=%v",
		nd.hardState(), nd.Status(), len(nd.msgs), nd.HasReady(), nd.phase, nd.electionElapsed, nd.lead,
		len(nd.held), nd.fwd.count, nd.fwdRecv, nd.log.reqs.max)
}

func requireBadMessage(t *testing.T, nd *Node, m Message) {
	t.Helper()
	before := nodeState(nd)
	err := nd.Step(m)
	if !errors.Is(err, ErrBadMessage) {
		t.Fatalf("Step(%v from %d, term %d, index %d): %v, want ErrBadMessage", m.Type, m.From, m.Term, m.Index, err)
	}
	if after := nodeState(nd); after != before {
		t.Fatalf("rejected %v changed state:\n before %s\n after  %s", m.Type, before, after)
	}
}

// Today's bug: a peer sending term 2^64-1 froze the cluster for good (the
// term is persisted, the next one wraps to 0). Terms above 2^62 and
// indexes that could wrap are refused, and the cluster carries on.
func TestStepRejectsOutOfRangeTermsAndIndexes(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 3)
	f, l := c.n(1).node, c.n(3).node
	term := l.term
	huge := []uint64{math.MaxUint64, math.MaxUint64 - 1, maxTerm + 1}
	for _, bad := range huge {
		for _, typ := range []MsgType{MsgHeartbeat, MsgApp, MsgCoordinator, MsgCoordinatorAck, MsgSyncReq, MsgHeartbeatResp, MsgAppResp} {
			requireBadMessage(t, f, Message{Type: typ, From: 2, To: 1, Term: bad})
			requireBadMessage(t, l, Message{Type: typ, From: 2, To: 3, Term: bad})
		}
		requireBadMessage(t, f, Message{Type: MsgCoordinator, Pre: true, From: 2, To: 1, Term: bad})
		// Indexes that could wrap.
		requireBadMessage(t, f, Message{Type: MsgHeartbeat, From: 3, To: 1, Term: term, Commit: bad})
		requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: bad, LogTerm: term})
		requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3, SyncIndex: bad})
		requireBadMessage(t, l, Message{Type: MsgAppResp, From: 1, To: 3, Term: term, Index: bad, LastIndex: bad})
		requireBadMessage(t, l, Message{Type: MsgAppResp, From: 1, To: 3, Term: term, Index: 1, Reject: true, RejectHint: bad})
		requireBadMessage(t, l, Message{Type: MsgCoordinatorAck, From: 1, To: 3, Term: term, LastIndex: bad})
	}
	// Entries whose range would wrap, or that do not form a log.
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: math.MaxUint64 - 1,
		Entries: []Entry{{Index: math.MaxUint64, Term: term}}})
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3,
		Entries: []Entry{{Index: 4, Term: term}, {Index: 6, Term: term}}})
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3,
		Entries: []Entry{{Index: 4, Term: term}, {Index: 5, Term: term - 1}}}) // terms decrease
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3,
		Entries: []Entry{{Index: 4, Term: 0}}})
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3,
		Entries: []Entry{{Index: 4, Term: term + 1}}})
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3,
		Entries: []Entry{{Index: 4, Term: term, Type: 9}}})
	requireBadMessage(t, f, Message{Type: MsgHeartbeat, From: 3, To: 1, Term: term, Index: 3,
		Entries: []Entry{{Index: 4, Term: term}}})
	// Terms a message names beyond its own.
	requireBadMessage(t, f, Message{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3, LogTerm: term + 1})
	requireBadMessage(t, l, Message{Type: MsgCoordinatorAck, From: 1, To: 3, Term: term, AcceptedTerm: term + 1})
	// Unknown types.
	requireBadMessage(t, f, Message{Type: 0, From: 3, To: 1, Term: term})
	requireBadMessage(t, f, Message{Type: msgTypeEnd, From: 3, To: 1, Term: term})

	// The cluster carries on in the same term.
	c.proposeAndCommit(1, 2)
	c.proposeAndCommit(2, 2)
	if l := c.leader(); l != 3 || c.n(3).node.term != term {
		t.Fatalf("leader %d term %d, want 3 term %d", l, c.n(3).node.term, term)
	}
	// The ceiling itself is a valid term.
	if err := f.Step(Message{Type: MsgHeartbeatResp, From: 2, To: 1, Term: maxTerm}); err != nil {
		t.Fatalf("term 2^62: %v", err)
	}
}

// A forward may only carry the sender's own proposals: node 1 cannot
// speak for node 2 (nor poison its dedup high-water mark).
func TestForwardOfAnotherOriginRefused(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(2, 1)
	l := c.n(3).node
	last := l.log.lastIndex()
	requireBadMessage(t, l, Message{Type: MsgForward, From: 1, To: 3, Term: l.term,
		Proposals: []Proposal{{Origin: 2, ReqID: math.MaxUint64, Data: []byte("forged")}}})
	requireBadMessage(t, l, Message{Type: MsgForward, From: 1, To: 3, Term: l.term,
		Proposals: []Proposal{{Origin: 1, ReqID: 5}, {Origin: 2, ReqID: 6}}})
	// A refusal names the receiver's own proposals only.
	requireBadMessage(t, c.n(1).node, Message{Type: MsgForward, Reject: true, From: 3, To: 1, Term: l.term,
		Proposals: []Proposal{{Origin: 2, ReqID: 6}}})
	if l.log.lastIndex() != last {
		t.Fatalf("forged proposal appended")
	}
	c.proposeAndCommit(2, 2)
	if err := c.n(1).node.Propose(Proposal{Origin: 2, ReqID: 99}); err != ErrForeignOrigin {
		t.Fatalf("Propose for another origin: %v, want ErrForeignOrigin", err)
	}
}

// Today's bug: forwarded publishes carrying a maximal ReqID stopped all
// publishing for that origin (every later ReqID is "older"). A leader
// that knows the time refuses ReqIDs more than a day ahead of it in ns.
func TestForwardReqIDFarAheadRefused(t *testing.T) {
	c := newTestCluster(t, 3)
	const now = 1_750_000_000_000 // unix ms
	for _, sn := range c.nodes {
		sn.node.SetTime(now)
	}
	c.requireLeader(3, 30)
	l := c.n(3).node
	honest := uint64(now) * 1e6
	c.nextReq[1] = honest // node 1's ReqIDs, seeded from its clock
	c.proposeAndCommit(1, 1)
	for _, req := range []uint64{math.MaxUint64, (now + reqIDHorizonMs + 1) * 1e6} {
		requireBadMessage(t, l, Message{Type: MsgForward, From: 1, To: 3, Term: l.term,
			Proposals: []Proposal{{Origin: 1, ReqID: req, Data: []byte("x")}}})
	}
	if m := l.log.reqs.max[1]; m > honest+1 {
		t.Fatalf("dedup high-water mark of origin 1 raised to %d", m)
	}
	c.proposeAndCommit(1, 3) // publishing from node 1 still works
	// A clock a few hours ahead is tolerated.
	if err := l.Step(Message{Type: MsgForward, From: 1, To: 3, Term: l.term, Index: 0,
		Proposals: []Proposal{{Origin: 1, ReqID: (now + 3*3600*1000) * 1e6, Data: []byte("y")}}}); err != nil {
		t.Fatalf("ReqID 3h ahead: %v", err)
	}
}

// A MsgApp shaped to erase committed history — truncating below the
// commit index, or forging entries of a stale term at committed indexes,
// even from a peer claiming a newer term — changes no committed entry on
// disk (the checker's truncation check runs as well).
func TestFaultyAppendCannotEraseCommitted(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 5)
	f := c.n(1).node
	term := c.n(3).node.term
	if f.log.committed != 5 {
		t.Fatalf("setup: follower commit %d", f.log.committed)
	}
	forged := func(from, to uint64, t uint64) []Entry {
		var es []Entry
		for i := from; i <= to; i++ {
			es = append(es, Entry{Index: i, Term: t, Origin: 2, ReqID: 1000 + i, Data: []byte("forged")})
		}
		return es
	}
	for _, m := range []Message{
		// Stale-term entries over committed indexes, from the leader.
		{Type: MsgApp, From: 3, To: 1, Term: term, Index: 1, LogTerm: term, Commit: 5, Entries: forged(2, 7, term)},
		{Type: MsgApp, From: 3, To: 1, Term: term, Index: 0, Commit: 5, Entries: forged(1, 3, term)},
		// Prev at the commit index with another term.
		{Type: MsgApp, From: 3, To: 1, Term: term, Index: 5, LogTerm: term - 1 + 2, Commit: 5, Entries: forged(6, 6, term)},
		// A "retention restart" below the commit index.
		{Type: MsgApp, From: 3, To: 1, Term: term, Index: 3, LogTerm: 0, Reset: true, Commit: 9, Entries: forged(4, 5, term)},
		// A peer claiming a newer term and forging the committed prefix.
		{Type: MsgApp, From: 2, To: 1, Term: term + 1, Index: 0, Commit: 5, Entries: forged(1, 6, term+1)},
	} {
		_ = f.Step(m)
		for c.process(1) {
		}
		for _, e := range c.diskLog(1)[:5] {
			if h := c.ck.history[e.Index-1]; !sameEntry(e, h) {
				t.Fatalf("after a forged %v (index %d): committed %s replaced by %s", m.Type, m.Index, fmtEntry(h), fmtEntry(e))
			}
		}
		if f.log.lastIndex() < 5 || f.log.firstIndex() != 1 {
			t.Fatalf("after a forged %v: log [%d, %d] lost committed entries", m.Type, f.log.firstIndex(), f.log.lastIndex())
		}
	}
	c.net = nil
	c.rounds(5 * testElection)
	c.proposeAndCommit(1, 2)
}
