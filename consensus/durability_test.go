package consensus

import (
	"strings"
	"testing"
)

// The simulation must be able to catch a core that lets acknowledgements
// and votes leave before they are durable (the bug of Jepsen's NATS
// analysis: "fsync after ack"). With Config.TestOnlyBreakDurability the
// harness sends every message at Ready time, a crash before the persist
// loses what the peers were told is on disk, and within a bounded number
// of seeds the checker must report a safety violation: two leaders in one
// term (a forgotten vote), or a committed entry lost or replaced. If the
// switch did nothing, every schedule would pass and this test fails.
func TestSimCatchesBrokenDurability(t *testing.T) {
	const maxSeeds = 1000
	isSafety := func(msg string) bool {
		for _, s := range []string{"two leaders in term", "but the history has", "truncated committed entry",
			"log differs from history", "not in history", "committed twice", "beyond history end"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	var caught string
	var other []string
	seeds := 0
	for seed := int64(1); seed <= maxSeeds && caught == ""; seed++ {
		seeds++
		opts := scheduleOpts{breakDurability: true, onFail: func(msg string) {
			if isSafety(msg) {
				caught = msg
			} else {
				// (A node that lost acknowledged entries can also wedge
				// the cluster: the core refuses histories shorter than
				// its commit index. Keep looking for the violation.)
				other = append(other, msg)
			}
		}}
		// Alternately the random schedules and the churn macro-steps
		// (which include a follower dying between its Ready and fsync).
		if seed%2 == 0 {
			runScheduleWith(t, seed, *simSteps, false, opts)
		} else {
			runChurnWith(t, seed, false, opts)
		}
	}
	if caught == "" {
		t.Fatalf("%d schedules with TestOnlyBreakDurability showed no safety violation (other failures: %d %q)",
			seeds, len(other), other)
	}
	t.Logf("caught after %d schedules (%d other failures): %s", seeds, len(other), caught)
}
