package consensus

import (
	"strings"
	"testing"
)

func requirePanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, ok := r.(string); !ok || !strings.Contains(s, "invariant violated") {
			t.Fatalf("%s: recovered %v, want an invariant panic", what, r)
		}
	}()
	f()
}

// Impossible states stop the node instead of being logged and carried
// on from (the old "BUG:" log line): truncating committed entries, or a
// log that starts after the commit index (the caller dropped unapplied
// entries).
func TestInvariantViolationsPanic(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 5)
	requirePanic(t, "truncate below commit", func() { c.n(1).node.log.truncateTo(3) })

	c = newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.crash(1)
	c.proposeAndCommit(2, 5)
	l := c.n(3)
	// The caller drops entries the core has not even seen committed.
	l.node.log.committed = 2
	l.disk.log.Compact(5)
	requirePanic(t, "retention beyond commit", func() {
		l.node.prs[1].becomeProbe()
		l.node.prs[1].next = 1
		l.node.sendAppend(1)
	})
}

// An acknowledgement from a faulty voter claiming the most advanced log
// yet ending below the coordinator's commit index must not make the new
// leader truncate committed history (nor reach the invariant panic).
func TestForgedAckCannotTruncateCommitted(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.proposeAndCommit(1, 5)
	c.crash(3)
	c.setFilter(func(m Message) bool { return m.Type == MsgCoordinatorAck && m.From == 1 && !m.Pre })
	if !c.settleUntil(func() bool { return c.n(2).node.phase == phaseCandidate }) {
		t.Fatalf("setup: node 2 never became coordinator\n%s", c.logText())
	}
	n2 := c.n(2).node
	if n2.log.committed != 5 {
		t.Fatalf("setup: node 2 commit %d", n2.log.committed)
	}
	forged := Message{Type: MsgCoordinatorAck, From: 1, To: 2, Term: n2.term, AcceptedTerm: n2.term, LastIndex: 0}
	if err := n2.Step(forged); err != nil {
		t.Fatalf("Step: %v", err)
	}
	if n2.role == Leader || n2.log.lastIndex() != 5 {
		t.Fatalf("node 2: role %v, log ends at %d after a forged acknowledgement", n2.role, n2.log.lastIndex())
	}
	c.setFilter(nil)
	c.requireLeader(2, 80)
	c.proposeAndCommit(1, 2)
}
