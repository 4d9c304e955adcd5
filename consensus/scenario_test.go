package consensus

import (
	"strings"
	"testing"
)

func (c *cluster) requireLeader(want NodeID, maxRounds int) {
	c.tb.Helper()
	if l := c.waitLeader(maxRounds); l != want {
		c.tb.Fatalf("leader = %d, want %d\n%s", l, want, c.logText())
	}
}

func (c *cluster) logText() string {
	if c.logs == nil {
		return ""
	}
	return c.logs.String()
}

// commitAll proposes k entries at node id and waits until every running
// node applied them.
func (c *cluster) proposeAndCommit(id NodeID, k int) []reqKey {
	c.tb.Helper()
	var keys []reqKey
	for i := 0; i < k; i++ {
		key, err := c.propose(id)
		if err != nil {
			c.tb.Fatalf("propose at %d: %v", id, err)
		}
		keys = append(keys, key)
	}
	for r := 0; r < 100; r++ {
		c.round()
		done := true
		for _, key := range keys {
			if !c.ck.acked[key] {
				done = false
			}
		}
		if done {
			return keys
		}
	}
	c.tb.Fatalf("proposals at %d did not commit\n%s", id, c.logText())
	return nil
}

func newTestCluster(t *testing.T, size int) *cluster {
	c := newCluster(t, size, 1, defaultSimConfig)
	c.logs = &strings.Builder{}
	return c
}

func TestSingleNodeElectsItselfOnFirstTick(t *testing.T) {
	c := newTestCluster(t, 1)
	c.round()
	if nd := c.n(1).node; nd.role != Leader {
		t.Fatalf("role = %v after one tick", nd.role)
	}
	c.round()
	c.proposeAndCommit(1, 3)
}

func TestElectsHighestID(t *testing.T) {
	for _, size := range []int{3, 5} {
		c := newTestCluster(t, size)
		c.requireLeader(NodeID(size), 30)
		if term := c.n(NodeID(size)).node.term; term != 1 {
			t.Errorf("%d nodes: term = %d, want 1", size, term)
		}
		for _, want := range []string{"failure.1 Leader timeout!", "election." + utoa(size) + " Starting election for term 1",
			"election.1 Received COORDINATOR from node_" + utoa(size), "election." + utoa(size) + " Became LEADER for term 1",
			"election.1 New coordinator: node_" + utoa(size) + ", term=1"} {
			if !strings.Contains(c.logText(), want) {
				t.Errorf("%d nodes: log lacks %q", size, want)
			}
		}
		c.proposeAndCommit(1, 5)
		c.proposeAndCommit(NodeID(size), 5)
	}
}

func utoa(i int) string { return string(rune('0' + i)) }

func TestLeaderCrashNextHighestTakesOver(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 5)
	c.crash(3)
	c.requireLeader(2, 60)
	c.proposeAndCommit(1, 5)
	if got := len(c.ck.history); got != 10 {
		t.Fatalf("history has %d entries, want 10", got)
	}
}
