package consensus

import (
	"fmt"
	"strings"
	"testing"
)

// TestSimChurn: macro-step schedules of pure leader churn on 3 nodes —
// leaders that sequence entries nobody else receives and die, nodes that
// return, elections in between. These are the ingredients of Raft's
// Figure 8 and of the "commit on unsynced acknowledgements" trap, which
// fine-grained random schedules rarely assemble.
func TestSimChurn(t *testing.T) {
	n := *simSchedules / 5
	if *simSeed != 0 {
		runChurn(t, *simSeed, *simTrace)
		return
	}
	if raceEnabled && !flagSet("sim.schedules") {
		n /= 10
	}
	for i := 0; i < n && !t.Failed(); i++ {
		runChurn(t, *simFirst+int64(i), false)
	}
}

func runChurn(t *testing.T, seed int64, trace bool) {
	runChurnWith(t, seed, trace, scheduleOpts{})
}

func runChurnWith(t *testing.T, seed int64, trace bool, opts scheduleOpts) {
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
	c := newCluster(t, 3, seed, defaultSimConfig)
	if opts.breakDurability {
		c.breakDurability = true
		for _, sn := range c.nodes {
			c.start(sn)
		}
	}
	c.fifo = rng.Intn(2) == 0
	c.trace = &strings.Builder{}
	c.logs = &strings.Builder{}
	c.fail = func(format string, args ...any) {
		if c.failed {
			return
		}
		c.failed = true
		t.Helper()
		if trace {
			t.Logf("trace:\n%s\nlog:\n%s", c.trace.String(), c.logs.String())
		}
		if opts.onFail != nil {
			panic(simFailure{fmt.Sprintf("churn seed %d: %s", seed, fmt.Sprintf(format, args...))})
		}
		t.Fatalf("churn seed %d: %s\nreplay: go test ./consensus -run 'TestSimChurn$' -sim.seed=%d -sim.trace",
			seed, fmt.Sprintf(format, args...), seed)
	}
	if !trace {
		c.trace, c.logs = nil, nil
	} else {
		defer func() { t.Logf("trace:\n%s\nlog:\n%s", c.trace.String(), c.logs.String()) }()
	}
	for step := 0; step < 12 && !c.failed; step++ {
		switch rng.Intn(7) {
		case 6: // a follower dies between its Ready (acks out) and its fsync
			l := c.waitLeader(40)
			if l == 0 {
				break
			}
			a, b := l%3+1, (l+1)%3+1
			c.tracef("follower %d dies before persisting what leader %d sent (node %d cut off)", a, l, b)
			c.cut[[2]NodeID{l, b}] = true
			c.propose(l)
			if c.settleUntil(func() bool {
				rd := c.n(a).rd
				return rd != nil && len(rd.Entries) > 0
			}) {
				c.crash(a)
			}
			c.settleUntil(func() bool { return rng.Intn(10) == 0 })
			c.crash(l)
			c.heal()
			c.restart(a)
		case 5: // a follower dies right after syncing, before persisting it
			victim := NodeID(0)
			c.settleUntil(func() bool {
				for _, sn := range c.nodes {
					if sn.node != nil && sn.node.role == Follower && sn.node.acceptedTerm > sn.disk.hs.AcceptedTerm {
						victim = sn.id
						return true
					}
				}
				return rng.Intn(50) == 0
			})
			if victim != 0 {
				c.crash(victim)
			}
		case 0, 1:
			if l := c.waitLeader(40); l != 0 {
				c.tracef("leader %d appends alone and crashes", l)
				c.isolate(l)
				for k := rng.Intn(2); k >= 0; k-- {
					c.propose(l)
				}
				for c.process(l) {
				}
				// Sometimes its followers hear the commit news first.
				c.heal()
				if rng.Intn(2) == 0 {
					c.settleUntil(func() bool { return rng.Intn(8) == 0 })
				}
				c.crash(l)
			}
		case 2:
			var down []NodeID
			for _, id := range c.ids {
				if c.n(id).node == nil {
					down = append(down, id)
				}
			}
			if len(down) > 0 {
				c.restart(down[rng.Intn(len(down))])
			}
		case 3:
			c.propose(c.pick(rng))
			c.settleUntil(func() bool { return rng.Intn(20) == 0 })
		case 4:
			c.crash(c.pick(rng))
		}
		c.rounds(rng.Intn(3 * testElection))
	}
	c.checkLiveness()
}
