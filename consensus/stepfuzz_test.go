package consensus

import (
	"errors"
	"math"
	"testing"
)

// Step must never panic on input from the network, and must refuse
// (ErrBadMessage, no state change) what it cannot accept. These tests
// feed arbitrary messages to a follower and a leader of a live cluster,
// persisting whatever they ask (as a caller would, without the checker:
// a forged message from a "leader" may legitimately be believed).

// stepTarget is a cluster whose nodes 1 (follower) and 3 (leader) have
// history, committed and uncommitted entries.
func stepTarget(tb testing.TB) *cluster {
	c := newCluster(tb, 3, 1, defaultSimConfig)
	c.fifo = true
	if l := c.waitLeader(30); l != 3 {
		tb.Fatalf("leader %d", l)
	}
	for i := 0; i < 6; i++ {
		c.propose(NodeID(i%3 + 1))
	}
	c.rounds(3)
	c.propose(3)
	for c.process(3) { // an uncommitted tail at the leader
	}
	return c
}

// persistRaw performs a Ready's duties on sn's disk, without checks.
func persistRaw(sn *simNode, rd Ready) {
	if rd.HardState != nil {
		sn.disk.hs = *rd.HardState
	}
	if rd.ResetLog > 0 {
		sn.disk.log.Reset(rd.ResetLog, rd.ResetLogTerm)
	}
	if rd.TruncateFrom > 0 {
		sn.disk.log.Truncate(rd.TruncateFrom)
	}
	_ = sn.disk.log.Append(rd.Entries)
}

func stepNoPanic(tb testing.TB, c *cluster, m Message) {
	for _, id := range []NodeID{1, 3} {
		sn := c.n(id)
		m.To = id
		before := nodeState(sn.node)
		err := sn.node.Step(m)
		if errors.Is(err, ErrBadMessage) {
			if after := nodeState(sn.node); after != before {
				tb.Fatalf("rejected %+v changed node %d:\n before %s\n after  %s", m, id, before, after)
			}
		} else if err != nil {
			tb.Fatalf("Step: unexpected %v", err)
		}
		for k := 0; k < 4 && sn.node.HasReady(); k++ {
			rd := sn.node.Ready()
			persistRaw(sn, rd)
			sn.node.Advance(rd)
		}
		sn.node.Tick()
	}
}

var interesting = []uint64{0, 1, 2, 3, 5, 7, 8, 9, 100, maxIndex - 1, maxIndex, maxIndex + 1, math.MaxUint64 - 1, math.MaxUint64}

// TestStepRandomMessagesNeverPanic: many random messages with extreme
// field values, deterministic (runs in every go test).
func TestStepRandomMessagesNeverPanic(t *testing.T) {
	iters := 3000
	if raceEnabled || testing.Short() {
		iters = 300
	}
	c := stepTarget(t)
	rng := newRand(7)
	pick := func() uint64 {
		if rng.Intn(3) == 0 {
			return rng.Uint64() >> uint(rng.Intn(64))
		}
		return interesting[rng.Intn(len(interesting))]
	}
	for i := 0; i < iters; i++ {
		term := c.n(3).node.term
		m := Message{Type: MsgType(rng.Intn(int(msgTypeEnd) + 1)), From: NodeID(rng.Intn(4) + 1),
			Term: term + uint64(rng.Intn(3)) - 1, Index: pick(), LogTerm: uint64(rng.Intn(int(term) + 2)), Commit: pick(),
			Reject: rng.Intn(4) == 0, RejectHint: pick(), Reset: rng.Intn(8) == 0, Repair: uint64(rng.Intn(2)),
			SyncIndex: pick(), AcceptedTerm: uint64(rng.Intn(int(term) + 2)), LastIndex: pick(), LastTerm: pick(), Pre: rng.Intn(6) == 0}
		if rng.Intn(10) == 0 {
			m.Term = pick()
		}
		if rng.Intn(3) == 0 && m.Index < maxIndex {
			for k := uint64(1); k <= uint64(rng.Intn(4)); k++ {
				m.Entries = append(m.Entries, Entry{Index: m.Index + k, Term: max(1, min(m.Term, uint64(rng.Intn(int(term)+2)))), Data: []byte("z")})
			}
		}
		if rng.Intn(4) == 0 {
			m.Proposals = []Proposal{{Origin: m.From, ReqID: pick(), Data: []byte("p")}}
		}
		stepNoPanic(t, c, m)
	}
}

// FuzzStep: go test ./consensus -run '^$' -fuzz FuzzStep -fuzztime 60s
func FuzzStep(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(m.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		stepNoPanic(t, stepTarget(t), m)
	})
}
