package scale

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The scenario, one method per step of the demo guide's demo 7.

// form starts peer 1 alone, waits until it leads, starts every other peer
// at once with --seed naming peer 1, and waits until peer 1 lists them
// all as voters. Peer 1 must still lead: a join must not depose it.
func (h *harness) form(ctx context.Context) error {
	n1 := h.nodes[1]
	if err := n1.start(ctx, h.o.Binary, startBound); err != nil {
		return h.stepErr([]int{1}, "%v", err)
	}
	l, t, err := h.waitLeader(ctx, []int{1})
	if err != nil {
		return err
	}
	h.leader, h.term = l, t
	h.rep.FirstTerm, h.rep.LastTerm = t, t
	h.logf("peer 1 leads a cluster of one (term %d)", t)

	begin := time.Now()
	peers := make([]int, 0, h.o.Peers-1)
	for id := 2; id <= h.o.Peers; id++ {
		peers = append(peers, id)
	}
	if err := h.startAll(ctx, peers); err != nil {
		return err
	}
	h.logf("started peers 2..%d with --seed 1:%s", h.o.Peers, n1.addr())
	if err := h.waitVoters(ctx, 1, h.live()); err != nil {
		return h.stepErr([]int{1}, "formation: %v", err)
	}
	h.rep.Formation = time.Since(begin)
	h.logf("peer 1 lists %d voters after %s", h.o.Peers, since(begin))
	for _, id := range peers {
		if !h.waitLog(ctx, id, "Joined cluster") {
			h.violation("formation", []int{id}, "peer %d is a voter but never logged \"Joined cluster\" (no JOIN_ACK)", id)
		}
	}
	l, t, err = h.waitLeader(ctx, h.live())
	if err != nil {
		return err
	}
	if l != 1 {
		h.violation("formation", []int{1, l}, "peer %d leads after the joins (term %d): joining must not depose peer 1", l, t)
	}
	if t != h.term {
		h.rep.UnexpectedTerms += int(t - h.term)
	}
	h.leader, h.term, h.rep.LastTerm = l, t, t
	h.logf("peer %d leads all %d peers (term %d)", l, h.o.Peers, t)
	return nil
}

// waitLog waits (bounded) until node id's log has a line containing s.
// The leader lists a joiner as a voter when the promotion commits, a
// moment before the joiner hears of it (JOIN_ACK) and logs it.
func (h *harness) waitLog(ctx context.Context, id int, s string) bool {
	return poll(ctx, 10*time.Second+2*h.o.LeaderTimeout, func() error {
		if h.nodes[id].count(s) == 0 {
			return errNotYet
		}
		return nil
	}) == nil
}

// startAll starts the listed nodes concurrently.
func (h *harness) startAll(ctx context.Context, ids []int) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = h.nodes[id].start(ctx, h.o.Binary, startBound) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return h.stepErr([]int{ids[i]}, "%v", err)
		}
	}
	return nil
}

// publishAll publishes from every peer at once, then checks that all
// peers hold the same history.
func (h *harness) publishAll(ctx context.Context) error {
	live := h.live()
	if err := h.publishRound(ctx, "main", live, h.o.Messages); err != nil {
		return err
	}
	h.converge(ctx, "after publishing", live)
	return h.checkLeader(ctx, "publishing")
}

// few is how many messages each peer publishes after a failover or a
// join: enough to show the cluster commits from everywhere again.
func (h *harness) few() int { return min(h.o.Messages, 5) }

// failovers kills the leader Kills times in a row. Killed peers stay down
// while a majority of the voters survives; when the next kill would leave
// none, the peer killed first is restarted (and must catch up) first.
func (h *harness) failovers(ctx context.Context) error {
	voters := h.o.Peers
	for k := 1; k <= h.o.Kills; k++ {
		if len(h.live())-1 < voters/2+1 {
			back := h.killed[0]
			h.logf("kill %d would leave no majority of %d: restarting peer %d first", k, voters, back)
			if err := h.restart(ctx, []int{back}); err != nil {
				return err
			}
		}
		if err := h.failover(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// failover kills the leader (kill -9) while every peer publishes, and
// measures how long until a PUBLISH sent after the kill through a
// survivor is acknowledged. Then every survivor publishes a few more
// messages and the survivors' histories are checked.
func (h *harness) failover(ctx context.Context, k int) error {
	old, oldTerm := h.leader, h.term
	live := h.live()
	survivors := slices.DeleteFunc(slices.Clone(live), func(id int) bool { return id == old })
	tag, name := fmt.Sprintf("kill%d", k), fmt.Sprintf("kill %d", k) // payloads, messages
	lo := h.startLoad(ctx, tag, live, 2*h.electionBound()+h.convergeBound())
	// Kill in mid-stream: every peer has publishes acknowledged and one
	// in flight.
	if err := lo.waitAcked(ctx, live, 3, false, h.electionBound()); err != nil {
		lo.abort()
		return h.stepErr(live, "%s: publishing before the kill: %v", name, err)
	}
	h.nodes[old].kill()
	killedAt := time.Now()
	lo.killed(old, killedAt)
	h.killed = append(h.killed, old)
	h.logf("%s: kill -9 of leader peer %d (term %d) while %d peers publish", name, old, oldTerm, len(live))

	// Agreement on the new leader is watched alongside, so its time is
	// measured from the kill too.
	type agreed struct {
		leader int
		term   uint64
		after  time.Duration
		err    error
	}
	agreedc := make(chan agreed, 1)
	go func() {
		l, t, err := h.waitLeader(ctx, survivors)
		agreedc <- agreed{l, t, time.Since(killedAt), err}
	}()
	if err := lo.waitAcked(ctx, survivors, int64(h.few()), true, h.electionBound()); err != nil {
		lo.abort()
		<-agreedc
		if lo.first.Load() == 0 {
			return h.stepErr(survivors, "%s: no publish acknowledged after killing peer %d: %v", name, old, err)
		}
		return h.stepErr(survivors, "%s: after the failover: %v", name, err)
	}
	ferr := lo.finish(survivors)
	a := <-agreedc
	switch {
	case ferr != nil:
		return h.stepErr(survivors, "%s: %v", name, ferr)
	case a.err != nil:
		return a.err
	}
	f := Failover{Killed: old, NewLeader: a.leader, OldTerm: oldTerm, NewTerm: a.term,
		Publish: time.Duration(lo.first.Load()), Agreed: a.after}
	h.rep.Failovers = append(h.rep.Failovers, f)
	if f.NewTerm <= oldTerm {
		h.violation(name, []int{a.leader}, "new leader %d has term %d, not above the killed leader's %d", a.leader, a.term, oldTerm)
	}
	h.leader, h.term, h.rep.LastTerm = a.leader, a.term, a.term
	h.logf("%s: publishing again after %s; peer %d leads (term %d→%d), all survivors agree after %s (highest survivor: %d); %d messages acknowledged in this round",
		name, f.Publish.Round(time.Millisecond), a.leader, oldTerm, a.term, f.Agreed.Round(time.Millisecond), slices.Max(survivors), lo.total())
	h.converge(ctx, "after "+name, survivors)
	return nil
}

// restartKilled restarts every peer still down, with its data directory
// and arguments, and checks the whole cluster again.
func (h *harness) restartKilled(ctx context.Context) error {
	if len(h.killed) == 0 {
		return nil
	}
	if err := h.restart(ctx, slices.Clone(h.killed)); err != nil {
		return err
	}
	if err := h.waitVoters(ctx, h.leader, h.live()); err != nil {
		return h.stepErr([]int{h.leader}, "after the restarts: %v", err)
	}
	h.converge(ctx, "after the restarts", h.live())
	// Returning peers, even higher ids, must join as followers.
	return h.checkLeader(ctx, "the restarts")
}

// restart starts killed peers again and measures each one's catch-up:
// from its start until its history equals the leader's (nothing is
// published meanwhile, so the leader's history is the target).
func (h *harness) restart(ctx context.Context, ids []int) error {
	target, err := readHistory(h.nodes[h.leader].addr(), h.o.Channel)
	if err != nil {
		return h.stepErr([]int{h.leader}, "history of leader %d: %v", h.leader, err)
	}
	durs := make([]time.Duration, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := h.nodes[id]
			begin := time.Now()
			if errs[i] = n.start(ctx, h.o.Binary, startBound); errs[i] != nil {
				return
			}
			errs[i] = poll(ctx, h.convergeBound(), func() error {
				got, err := readHistory(n.addr(), h.o.Channel)
				if err != nil {
					return err
				}
				if !slices.Equal(got.Seqs, target.Seqs) || !slices.Equal(got.Payloads, target.Payloads) {
					return fmt.Errorf("%d of %d entries", len(got.Seqs), len(target.Seqs))
				}
				return nil
			})
			durs[i] = time.Since(begin)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if errs[i] != nil {
			return h.stepErr([]int{id, h.leader}, "restarted peer %d did not catch up: %v", id, errs[i])
		}
		h.rep.CatchUps = append(h.rep.CatchUps, CatchUp{Peer: id, Took: durs[i]})
		h.killed = slices.DeleteFunc(h.killed, func(k int) bool { return k == id })
		h.logf("restarted peer %d caught up (%d messages) %s after its start", id, len(target.Seqs), durs[i].Round(time.Millisecond))
	}
	return nil
}

// leaveAndJoin has a follower leave with CLUSTER LEAVE, then a new peer
// (id N+1) join through a live follower, catch up and publish with the
// others; a final check covers every live peer.
func (h *harness) leaveAndJoin(ctx context.Context) error {
	live := h.live()
	leaver := 0
	for _, id := range live {
		if id != h.leader {
			leaver = id
			break
		}
	}
	n := h.nodes[leaver]
	h.logf("peer %d leaves with CLUSTER LEAVE", leaver)
	// The node replies once its removal is committed; it allows itself
	// 4 leader timeouts + 5s for that.
	if _, err := do(n.addr(), 4*h.o.LeaderTimeout+15*time.Second, "CLUSTER", "LEAVE"); err != nil {
		return h.stepErr([]int{leaver, h.leader}, "CLUSTER LEAVE on peer %d: %v", leaver, err)
	}
	code, err := n.wait(10*time.Second + 2*h.o.LeaderTimeout)
	switch {
	case err != nil:
		h.violation("leave", []int{leaver}, "%v after CLUSTER LEAVE replied +OK", err)
		n.kill()
	case code != 0:
		h.violation("leave", []int{leaver}, "peer %d exited with code %d after CLUSTER LEAVE, want 0", leaver, code)
	}
	rest := slices.DeleteFunc(slices.Clone(live), func(id int) bool { return id == leaver })
	if err := h.waitVoters(ctx, h.leader, rest); err != nil {
		h.violation("leave", []int{h.leader, leaver}, "%v", err)
	} else {
		h.logf("peer %d left: leader %d lists %d voters", leaver, h.leader, len(rest))
	}
	if err := h.checkLeader(ctx, "the leave"); err != nil {
		return err
	}

	// The joiner's seed: a live follower (peer 1 may be the one that left).
	seed := 0
	for _, id := range rest {
		if id != h.leader {
			seed = id
		}
	}
	joinerID := h.o.Peers + 1
	j := h.nodes[joinerID]
	j.args = append(j.args, "--seed", fmt.Sprintf("%d:%s", seed, h.nodes[seed].addr()))
	begin := time.Now()
	if err := j.start(ctx, h.o.Binary, startBound); err != nil {
		return h.stepErr([]int{joinerID}, "%v", err)
	}
	h.logf("peer %d joins through peer %d", joinerID, seed)
	all := append(slices.Clone(rest), joinerID)
	if err := h.waitVoters(ctx, h.leader, all); err != nil {
		return h.stepErr([]int{joinerID, seed, h.leader}, "join of peer %d: %v", joinerID, err)
	}
	h.rep.Join = time.Since(begin)
	target, err := readHistory(h.nodes[h.leader].addr(), h.o.Channel)
	if err != nil {
		return h.stepErr([]int{h.leader}, "history of leader %d: %v", h.leader, err)
	}
	if err := poll(ctx, h.convergeBound(), func() error {
		got, err := readHistory(j.addr(), h.o.Channel)
		if err != nil {
			return err
		}
		if !slices.Equal(got.Seqs, target.Seqs) || !slices.Equal(got.Payloads, target.Payloads) {
			return fmt.Errorf("%d of %d entries", len(got.Seqs), len(target.Seqs))
		}
		return nil
	}); err != nil {
		h.violation("join", []int{joinerID, h.leader}, "peer %d did not catch up: %v", joinerID, err)
	}
	h.rep.JoinCatchUp = time.Since(begin)
	h.logf("peer %d is a voter after %s, caught up after %s", joinerID, h.rep.Join.Round(time.Millisecond), h.rep.JoinCatchUp.Round(time.Millisecond))
	if !h.waitLog(ctx, joinerID, "Joined cluster") {
		h.violation("join", []int{joinerID}, "peer %d is a voter but never logged \"Joined cluster\" (no JOIN_ACK)", joinerID)
	}
	if err := h.checkLeader(ctx, "the join"); err != nil {
		return err
	}

	if err := h.publishRound(ctx, "final", all, h.few()); err != nil {
		return err
	}
	h.converge(ctx, "final check", all)
	return nil
}
