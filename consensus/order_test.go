package consensus

import (
	"slices"
	"testing"
)

// originOrder checks that every origin's committed proposals appear in the
// order they were proposed (ReqIDs increase with each Propose), and that
// keys (in proposal order) all committed.
func (c *cluster) requireCommittedInOrder(keys []reqKey) {
	c.tb.Helper()
	at := map[reqKey]int{}
	for i, e := range c.ck.history {
		at[reqKey{e.Origin, e.ReqID}] = i + 1
	}
	last := map[NodeID]int{}
	for _, k := range keys {
		i, ok := at[k]
		if !ok {
			c.tb.Fatalf("proposal %d/%d never committed (dropped: %d)\n%s", k.origin, k.req, c.stats.dropped, c.logText())
		}
		if i < last[k.origin] {
			c.tb.Fatalf("proposal %d/%d committed at %d, before an earlier proposal of its origin at %d", k.origin, k.req, i, last[k.origin])
		}
		last[k.origin] = i
	}
}

// Per origin, proposals commit in the order they were proposed (a Redis
// client pipelining PUBLISHes), across a failover: node 1 proposes before
// the crash of leader 5, while node 4 is still a coordinator (node 1 has
// acknowledged it, so it forwards there), while node 4 synchronises, and
// after; node 4 proposes during and after its synchronisation. Nothing may
// be dropped or reordered.
func TestPerOriginOrderAcrossSync(t *testing.T) {
	c := newTestCluster(t, 5)
	c.requireLeader(5, 30)
	var keys []reqKey
	prop := func(id NodeID) {
		t.Helper()
		k, err := c.propose(id)
		if err != nil {
			t.Fatalf("propose at %d: %v", id, err)
		}
		keys = append(keys, k)
	}
	keys = append(keys, c.proposeAndCommit(1, 2)...)
	prop(1) // in flight when the leader dies
	for c.process(1) {
	}
	c.crash(5)
	c.net = nil

	// Node 1 has acknowledged coordinator 4, which still waits for others.
	if !c.settleUntil(func() bool {
		n1, n4 := c.n(1).node, c.n(4).node
		return n1.lead == 4 && n4.phase == phaseCandidate
	}) {
		t.Fatalf("setup: node 4 never became coordinator\n%s", c.logText())
	}
	prop(1)
	prop(1)
	for c.process(1) {
	}
	c.deliverWhere(func(m Message) bool { return m.Type == MsgForward && m.From == 1 })
	if c.n(4).node.role == Leader {
		t.Fatal("setup: node 4 already leads")
	}
	// During synchronisation.
	if !c.settleUntil(func() bool { n4 := c.n(4).node; return n4.role == Leader && n4.sync != syncDone }) {
		t.Fatalf("setup: node 4 never led")
	}
	prop(1)
	prop(4)
	prop(1)
	prop(4)
	// After.
	c.requireLeader(4, 60)
	prop(1)
	prop(4)
	prop(1)
	c.rounds(5 * testElection)
	c.requireCommittedInOrder(keys)
	if c.stats.dropped != 0 {
		t.Fatalf("%d proposals dropped", c.stats.dropped)
	}
}

// A lone node proposed to at once after its election, and a lone node
// restarted with a log, keep the order too.
func TestPerOriginOrderLoneNode(t *testing.T) {
	c := newTestCluster(t, 1)
	var keys []reqKey
	for r := 0; r < 3; r++ {
		c.tickAll()
		for i := 0; i < 3; i++ {
			if k, err := c.propose(1); err == nil {
				keys = append(keys, k)
			}
			c.process(1)
		}
		c.settle()
	}
	c.crash(1)
	c.restart(1)
	for r := 0; r < 3; r++ {
		c.tickAll()
		for i := 0; i < 3; i++ {
			if k, err := c.propose(1); err == nil {
				keys = append(keys, k)
			}
		}
		c.settle()
	}
	c.rounds(3)
	if len(keys) < 10 {
		t.Fatalf("only %d proposals accepted", len(keys))
	}
	c.requireCommittedInOrder(keys)
	if !slices.IsSortedFunc(c.ck.history, func(a, b Entry) int { return cmpU64(a.ReqID, b.ReqID) }) {
		t.Fatal("history out of order")
	}
}

// A forwarded batch lost in the middle of a stream (a dropped connection)
// is not overtaken by the next one: the leader refuses the next batch and
// the follower re-forwards from its oldest pending proposal at once,
// without waiting for its election-timeout retry.
func TestLostForwardBatchIsNotOvertaken(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	lost := false
	c.setFilter(func(m Message) bool {
		if m.Type == MsgForward && m.From == 1 && !lost {
			lost = true
			return true
		}
		return false
	})
	var keys []reqKey
	for i := 0; i < 3; i++ { // three batches: the first is lost
		k, err := c.propose(1)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		for c.process(1) {
		}
	}
	c.settle() // no tick: only the refusal can trigger the re-forward
	c.requireCommittedInOrder(keys)
	if c.stats.dropped != 0 {
		t.Fatalf("%d proposals dropped", c.stats.dropped)
	}
}
