package consensus

import "testing"

// Catch-up reads off the hot loop: the leader's Storage answers
// ErrReadPending for entries not in memory; the leader must then send
// nothing to the lagging follower (and not read again on every answer),
// carry on with ticks and heartbeats, and resume when ReadReady comes —
// or, if it never comes, at the next heartbeat.
func TestCatchUpReadsInBackground(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.crash(1)
	c.proposeAndCommit(2, 100)
	c.restart(1)
	st := c.n(3).store
	st.rate = 1 // every read not yet fetched goes to the background

	// step runs the cluster without completing background reads.
	step := func(ticks int) {
		for r := 0; r < ticks; r++ {
			c.tickAll()
			for i := 0; i < 200; i++ {
				for _, id := range c.ids {
					c.process(id)
				}
				if len(c.net) == 0 {
					break
				}
				c.deliver(0)
			}
		}
	}
	step(2 * testElection)
	if len(st.fetching) == 0 {
		t.Fatalf("the leader never asked for a background read")
	}
	applied := c.n(1).disk.applied
	if applied >= 100 {
		t.Fatalf("setup: node 1 caught up without reads")
	}
	reads := st.reads
	step(4 * testElection)
	if got := c.n(1).disk.applied; got != applied {
		t.Fatalf("node 1 advanced from %d to %d while the read was pending", applied, got)
	}
	// At most one retry per heartbeat (the fallback), not one per message.
	if extra := st.reads - reads; extra > 4*testElection/defaultSimConfig.heartbeat+1 {
		t.Fatalf("%d Storage reads while one read was pending", extra)
	}
	if l := c.leader(); l != 3 {
		t.Fatalf("leader %d lost leadership while reading", l)
	}
	// ReadReady resumes at once; without it the heartbeat does.
	sent := 0
	c.setFilter(func(m Message) bool {
		if m.Type == MsgApp && m.To == 1 {
			sent++
		}
		return false
	})
	for k := 0; k < 400 && c.n(1).disk.applied < 100; k++ {
		if !c.completeReads(3, k%2 == 0) {
			step(1)
			continue
		}
		if k%2 == 0 {
			sent = 0
			c.process(3)
			if sent == 0 {
				t.Fatalf("ReadReady did not resume catch-up (node 1 at %d)", c.n(1).disk.applied)
			}
		}
		step(defaultSimConfig.heartbeat)
	}
	if got := c.n(1).disk.applied; got != 100 {
		t.Fatalf("node 1 applied %d of 100", got)
	}
	c.proposeAndCommit(1, 2)
}
