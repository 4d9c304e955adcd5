package metrics

import (
	"errors"
	"strings"
	"testing"

	"github.com/ordo-broker/ordo/consensus"
)

func TestReadiness(t *testing.T) {
	member := func(id consensus.NodeID, self, active, learner bool) consensus.MemberStatus {
		return consensus.MemberStatus{ID: id, Self: self, Active: active, Learner: learner}
	}
	leader := func(ms ...consensus.MemberStatus) consensus.Status {
		return consensus.Status{ID: 1, Role: consensus.Leader, Leader: 1, Members: ms}
	}
	for _, tc := range []struct {
		name   string
		st     consensus.Status
		broken error
		want   string // "" ready, else a substring of the reason
	}{
		{"lone leader", leader(member(1, true, true, false)), nil, ""},
		{"leader with a majority", leader(member(1, true, true, false), member(2, false, true, false), member(3, false, false, false)), nil, ""},
		{"leader with a minority", leader(member(1, true, true, false), member(2, false, false, false), member(3, false, false, false)), nil, "reaches only 1 of 3 voters"},
		{"learners do not count", leader(member(1, true, true, false), member(2, false, false, false), member(3, false, true, true), member(4, false, true, true)), nil, "reaches only 1 of 2 voters"},
		{"follower of a known leader", consensus.Status{ID: 2, Role: consensus.Follower, Leader: 3}, nil, ""},
		{"no leader", consensus.Status{ID: 2, Role: consensus.Candidate}, nil, "no leader known"},
		{"broken log", leader(member(1, true, true, false)), errors.New("disk full"), "log cannot be written: disk full"},
	} {
		err := readiness(tc.st, tc.broken)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want ready", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: reason %q spans lines", tc.name, err)
		}
	}
}
