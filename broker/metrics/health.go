package metrics

import (
	"errors"
	"fmt"

	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/ordo-broker/ordo/consensus"
)

// Readiness reports why the node should not get traffic, or nil: /readyz.
// A node is ready when its log is usable, it knows a leader, and a
// majority of the voters is reachable as far as it can tell:
//
//   - a leader counts the voters it heard from within a leader timeout
//     (itself included);
//   - a follower counts on its leader: it forgets a leader it has not
//     heard from within a leader timeout, and a leader cut off from its
//     majority steps down within one, so a known leader means a majority
//     was reachable through it a moment ago.
func Readiness(r *replica.Replica) error {
	if r == nil {
		return errors.New("not ready: the node is starting")
	}
	return readiness(r.Status())
}

// readiness judges a replica's status (see Readiness).
func readiness(st consensus.Status, broken error) error {
	if broken != nil {
		return fmt.Errorf("not ready: the log cannot be written: %v", broken)
	}
	if st.Leader == 0 {
		return errors.New("not ready: no leader known (an election is under way, or a majority of the voters is unreachable)")
	}
	if st.Role != consensus.Leader {
		return nil
	}
	voters, reached := 0, 0
	for _, m := range st.Members {
		if m.Learner {
			continue
		}
		voters++
		if m.Self || m.Active {
			reached++
		}
	}
	if reached <= voters/2 {
		return fmt.Errorf("not ready: the leader reaches only %d of %d voters", reached, voters)
	}
	return nil
}
