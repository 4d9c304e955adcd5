package scale

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of the waits, from the leader timeout: a slower cluster (a
// longer timeout) gets proportionally longer.
func (h *harness) electionBound() time.Duration { return 15*time.Second + 10*h.o.LeaderTimeout }
func (h *harness) convergeBound() time.Duration { return 30*time.Second + 10*h.o.LeaderTimeout }
func (h *harness) membersBound() time.Duration {
	// Joins are handled one at a time by the leader (learner, catch-up,
	// promotion): allow a few seconds per peer.
	return 30*time.Second + time.Duration(h.o.Peers)*(2*time.Second+2*h.o.LeaderTimeout)
}

// startBound bounds a process start until it listens.
const startBound = 20 * time.Second

// agreedLeader returns the leader every listed node agrees on: all report
// the same leader_id and term, the leader is among them and reports role
// leader, the others follower. Else an error says what is missing.
func agreedLeader(nodes []*node) (int, uint64, error) {
	sts := make([]map[string]string, len(nodes))
	for i, n := range nodes {
		st, err := status(n.addr())
		if err != nil {
			return 0, 0, fmt.Errorf("node %d: %v", n.id, err)
		}
		sts[i] = st
	}
	lead, term := sts[0]["leader_id"], sts[0]["term"]
	for _, st := range sts {
		if st["leader_id"] != lead || st["term"] != term {
			return 0, 0, fmt.Errorf("no agreement: %s", describe(nodes, sts))
		}
	}
	l, _ := strconv.Atoi(lead)
	t, _ := strconv.ParseUint(term, 10, 64)
	found := false
	for i, n := range nodes {
		want := "follower"
		if n.id == l {
			want, found = "leader", true
		}
		if sts[i]["role"] != want {
			return 0, 0, fmt.Errorf("node %d is %s, want %s: %s", n.id, sts[i]["role"], want, describe(nodes, sts))
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("leader %q is not among the nodes: %s", lead, describe(nodes, sts))
	}
	return l, t, nil
}

func describe(nodes []*node, sts []map[string]string) string {
	var b strings.Builder
	for i, n := range nodes {
		fmt.Fprintf(&b, "[%d: %s term=%s leader=%s] ", n.id, sts[i]["role"], sts[i]["term"], sts[i]["leader_id"])
	}
	return strings.TrimSpace(b.String())
}

func (h *harness) byID(ids []int) []*node {
	out := make([]*node, len(ids))
	for i, id := range ids {
		out[i] = h.nodes[id]
	}
	return out
}

// waitLeader waits until the listed nodes agree on a leader.
func (h *harness) waitLeader(ctx context.Context, ids []int) (int, uint64, error) {
	var l int
	var t uint64
	err := poll(ctx, h.electionBound(), func() (err error) {
		l, t, err = agreedLeader(h.byID(ids))
		return err
	})
	if err != nil {
		return 0, 0, h.stepErr(ids, "nodes %v agree on no leader: %v", ids, err)
	}
	return l, t, nil
}

// checkLeader asks the live nodes who leads and counts a change of term
// since the last check as unexpected: it is called where nothing should
// have caused an election.
func (h *harness) checkLeader(ctx context.Context, step string) error {
	l, t, err := h.waitLeader(ctx, h.live())
	if err != nil {
		return err
	}
	if t != h.term || l != h.leader {
		h.rep.UnexpectedTerms += int(t - h.term)
		h.logf("WARNING: unexpected election during %s: leader %d term %d, was %d term %d", step, l, t, h.leader, h.term)
	}
	h.leader, h.term = l, t
	h.rep.LastTerm = t
	return nil
}

// waitVoters waits until the leader's CLUSTER MEMBERS lists exactly the
// given ids, every one a voter.
func (h *harness) waitVoters(ctx context.Context, leader int, want []int) error {
	want = slices.Sorted(slices.Values(want))
	var last []member
	err := poll(ctx, h.membersBound(), func() error {
		ms, err := members(h.nodes[leader].addr())
		if err != nil {
			return err
		}
		last = ms
		var ids []int
		for _, m := range ms {
			if m.State != "voter" {
				return fmt.Errorf("node %d is %s", m.ID, m.State)
			}
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			return fmt.Errorf("members %v, want %v", ids, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node %d's CLUSTER MEMBERS never listed voters %v: %v (last: %+v)", leader, want, err, last)
	}
	return nil
}

// histories reads the channel's history on every listed node.
func (h *harness) histories(ids []int) []NodeHistory {
	out := make([]NodeHistory, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hist, err := readHistory(h.nodes[id].addr(), h.o.Channel)
			out[i] = NodeHistory{Node: id, History: hist, Err: err}
		}()
	}
	wg.Wait()
	return out
}

// converge checks the listed nodes' histories (the leader first, as the
// reference) until they pass Check, or until the bound; followers apply
// a little after the leader, so a first difference is not yet a
// violation. If the nodes agree on a history that fails the check for a
// few seconds, waiting longer cannot fix it.
func (h *harness) converge(ctx context.Context, step string, ids []int) CheckResult {
	ids = slices.Clone(ids)
	if i := slices.Index(ids, h.leader); i > 0 {
		ids[0], ids[i] = ids[i], ids[0]
	}
	var res CheckResult
	var suspects []int
	var agreedBad time.Time
	stable := time.Second + h.o.LeaderTimeout
	err := poll(ctx, h.convergeBound(), func() error {
		hs := h.histories(ids)
		res = Check(hs, h.ledger.Snapshot())
		if res.OK() {
			return nil
		}
		suspects = suspects[:0]
		for _, n := range hs[1:] {
			if n.Err != nil || !slices.Equal(n.Seqs, hs[0].Seqs) || !slices.Equal(n.Payloads, hs[0].Payloads) {
				suspects = append(suspects, n.Node)
			}
		}
		if !Same(hs) {
			agreedBad = time.Time{}
		} else if agreedBad.IsZero() {
			agreedBad = time.Now()
		} else if time.Since(agreedBad) > stable {
			return nil // settled on a bad history: report it now
		}
		return errNotYet
	})
	if res.OK() {
		h.rep.Duplicates, h.rep.Entries = res.Duplicates, res.Entries
		h.logf("%s: %d peers hold the same history of %d messages, seqs 1..%d", step, len(ids), res.Entries, res.Entries)
		return res
	}
	if err != nil && ctx.Err() != nil {
		res.Violations = append(res.Violations, "check interrupted: "+ctx.Err().Error())
	}
	for _, v := range res.Violations {
		h.violation(step, append([]int{ids[0]}, suspects...), "%s", v)
	}
	return res
}

// publishRound publishes count messages from each listed peer, one
// goroutine per peer, each message with a unique payload
// "<tag>-p<id>-<k>". It returns the first publish that could not be
// acknowledged before the overall timeout.
func (h *harness) publishRound(ctx context.Context, tag string, ids []int, count int) error {
	start := time.Now()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := h.publisher(id)
			defer p.close()
			for k := 1; k <= count; k++ {
				if _, err := p.publish(ctx, h.ledger, h.o.Channel, fmt.Sprintf("%s-p%d-%d", tag, id, k)); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return h.stepErr([]int{ids[i], h.leader}, "publishing %s from peer %d: %v", tag, ids[i], err)
		}
	}
	h.logf("%s: %d peers published %d messages each in %s", tag, len(ids), count, since(start))
	return nil
}

func (h *harness) publisher(id int) *publisher {
	// Longer than the node's own publish timeout (5s by default), which
	// answers a publish that cannot commit: the reply, not this timeout,
	// should end a slow attempt.
	return &publisher{addr: h.nodes[id].addr(), timeout: 15*time.Second + 2*h.o.LeaderTimeout}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
