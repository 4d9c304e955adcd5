package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// Which node leads after start-up depends on which processes were up when
// the first election ran, so no test here assumes an id: the kit derives
// roles from STATUS. What the bully election does promise, "the highest
// live id leads", is checked where it is deterministic: after a failover
// among nodes that are all up and connected.

func TestClusterElectsHighestLiveID(t *testing.T) {
	// The lower survivor defers only if the higher one answers ALIVE
	// within a fifth of the leader timeout: scale it with the machine's
	// speed so a starved process still answers in time.
	c := testkit.NewCluster(t, 3, false, "--leader-timeout", testkit.Scale(time.Second).String())
	c.StartAll()
	start := time.Now()
	first := c.WaitLeader()
	t.Logf("three nodes agreed on node %d after %s", first, time.Since(start).Round(time.Millisecond))
	c.Proc(first).WaitLog("Became LEADER for term")

	c.Proc(first).Kill()
	live := testkit.Except(c.All(), first)
	if l := c.WaitLeader(live...); l != slices.Max(live) {
		t.Fatalf("after killing leader %d, node %d leads; the highest live id is %d", first, l, slices.Max(live))
	}
	c.Proc(slices.Max(live)).WaitLog("Became LEADER for term")
}

// Publishers on every node; every subscriber on every node receives every
// message once, in one identical order, with contiguous sequence numbers.
func TestClusterTotalOrder(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	c.WaitLeader()
	const each = 200
	subs := make([][]string, 4)
	var swg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		r := testkit.Dial(t, c.Addr(i))
		r.Do("SUBSCRIBE", "o")
		swg.Add(1)
		go func(i int, r *resp.Conn) {
			defer swg.Done()
			for len(subs[i]) < 3*each {
				v, err := r.Receive()
				if err != nil {
					t.Errorf("subscriber on node %d after %d messages: %v", i, len(subs[i]), err)
					return
				}
				subs[i] = append(subs[i], v.Array()[2].String())
			}
		}(i, r.RESP)
	}
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		r := testkit.Dial(t, c.Addr(i))
		wg.Add(1)
		go func(i int, r *resp.Conn) {
			defer wg.Done()
			for k := 0; k < each; k++ {
				if err := r.Send("PUBLISH", "o", fmt.Sprintf("n%d-%d", i, k)); err != nil {
					t.Errorf("node %d publish %d: %v", i, k, err)
					return
				}
			}
			for k := 0; k < each; k++ {
				if v, err := r.Receive(); err != nil || v.Err() != nil {
					t.Errorf("node %d publish %d: %+v %v", i, k, v, err)
				}
			}
		}(i, r.RESP)
	}
	wg.Wait()
	swg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := 1; i <= 3; i++ {
		if !slices.Equal(subs[i], subs[1]) {
			t.Fatalf("subscriber on node %d saw a different order", i)
		}
	}
	h := c.WaitSameHistory("o")
	if len(h.Seqs) != 3*each {
		t.Fatalf("history has %d entries, want %d", len(h.Seqs), 3*each)
	}
	for k := range h.Seqs {
		if h.Seqs[k] != uint64(k+1) || h.Payloads[k] != subs[1][k] {
			t.Fatalf("history entry %d: seq %d %q, delivered %q", k, h.Seqs[k], h.Payloads[k], subs[1][k])
		}
	}
}

// kill -9 of the leader under load: a follower takes over, nothing
// acknowledged is lost or duplicated; the killed node returns as a
// follower and catches up to the identical history.
func TestClusterLeaderKill9(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	old, followers := c.Followers()
	subs := map[int]*liveSub{}
	for _, f := range followers {
		subs[f] = subscribe(t, c.Addr(f), "k")
	}
	load := startLoad(t, c, "k", c.All()...)
	load.waitCount(t, 300)

	probe := testkit.Dial(t, c.Addr(followers[0]))
	c.Proc(old).Kill()
	killed := time.Now()
	var last resp.Value
	testkit.Eventually(t, 15*time.Second, func() bool {
		last = probe.Do("PUBLISH", "probe", "x")
		return last.Err() == nil
	}, "no successful publish after kill -9 of the leader; last reply %v", &last)
	failover := time.Since(killed)
	t.Logf("failover: first successful publish %s after kill -9 of the leader", failover.Round(time.Millisecond))
	if os.Getenv("ORDO_REPORT") != "" {
		fmt.Fprintf(os.Stderr, "FAILOVER_MS %d\n", failover.Milliseconds())
	}
	leader := c.WaitLeader(followers...)
	load.waitCount(t, load.count()+200)
	acked := load.finish()
	h := c.WaitSameHistory("k", followers...)
	checkAllAcked(t, acked, h)
	for _, f := range followers {
		subs[f].waitFor(t, f, h.Payloads)
	}

	c.Start(old)
	c.WaitSameHistory("k")
	if l := c.WaitLeader(); l != leader {
		t.Fatalf("returning node %d deposed leader %d: node %d leads", old, leader, l)
	}
}

// kill -9 of every node, then restart: nothing acknowledged is lost and
// numbering continues.
func TestClusterFullRestart(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	_, followers := c.Followers()
	publishN(t, c.Addr(followers[0]), "r", "m%d", 100)
	for i := 1; i <= 3; i++ {
		c.Proc(i).Kill()
	}
	c.StartAll()
	c.WaitLeader()
	h := c.WaitSameHistory("r")
	if len(h.Seqs) != 100 || h.Seqs[99] != 100 {
		t.Fatalf("after full restart: %d entries, last %v", len(h.Seqs), testkit.Tail(h.Seqs))
	}
	if v := testkit.Dial(t, c.Addr(followers[1])).Do("PUBLISH", "r", "next"); v.Err() != nil {
		t.Fatal(v.Err())
	}
	h = c.WaitSameHistory("r")
	if len(h.Seqs) != 101 || h.Seqs[100] != 101 || h.Payloads[100] != "next" {
		t.Fatalf("numbering did not continue: %v %v", testkit.Tail(h.Seqs), testkit.Tail(h.Payloads))
	}
}

// The leader cut off from the others: the majority elects a new leader, the
// old one refuses publishes within its leader timeout, and after healing it
// rejoins as a follower with the majority's history.
func TestClusterPartitionedLeader(t *testing.T) {
	c := testkit.NewCluster(t, 3, true)
	c.StartAll()
	old, majority := c.Followers()
	onIsolated := subscribe(t, c.Addr(old), "p")
	load := startLoad(t, c, "p", majority...)
	load.waitCount(t, 100)

	c.Isolate(old, true)
	cut := time.Now()
	stale := testkit.Dial(t, c.Addr(old))
	// Whatever the isolated leader still acknowledges must be in the
	// majority's history in the end: it can only have been committed
	// through a majority.
	acked := map[string]bool{}
	var refused time.Duration
	for k := 0; refused == 0; k++ {
		start := time.Now()
		msg := fmt.Sprintf("from-isolated-leader-%d", k)
		v := stale.Do("PUBLISH", "p", msg)
		if took := time.Since(start); took > testkit.Scale(6*time.Second) {
			t.Fatalf("PUBLISH on the isolated leader hung for %s", took)
		}
		switch {
		case v.IsErr("CLUSTERDOWN") || v.IsErr("TRYAGAIN"):
			refused = time.Since(cut)
		case v.Err() == nil:
			acked[msg] = true
		}
		if refused == 0 && time.Since(cut) > testkit.Scale(10*time.Second) {
			t.Fatalf("isolated leader still answers PUBLISH with %v after %s", v, time.Since(cut))
		}
	}
	t.Logf("isolated leader refused publishes %s after the cut (%d acknowledged before)", refused.Round(time.Millisecond), len(acked))
	if refused > testkit.Scale(3*time.Second) {
		t.Errorf("isolated leader took %s to refuse publishes (leader timeout 500ms)", refused)
	}
	leader := c.WaitLeader(majority...)
	load.waitCount(t, load.count()+100)

	c.Isolate(old, false)
	for m := range load.finish() {
		acked[m] = true
	}
	h := c.WaitSameHistory("p")
	checkAllAcked(t, acked, h)
	// The subscriber on the partitioned node gets the backlog, in order.
	onIsolated.waitFor(t, old, h.Payloads)
	if l := c.WaitLeader(); l != leader {
		t.Fatalf("after healing node %d leads, want %d", l, leader)
	}
}

// A leader paused (SIGSTOP) past the leader timeout and resumed cannot
// commit in its stale term.
func TestClusterPausedLeaderCannotCommit(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	old, majority := c.Followers()
	stale := testkit.Dial(t, c.Addr(old))
	stale.Do("PING")
	c.Proc(old).Signal(syscall.SIGSTOP)
	leader := c.WaitLeader(majority...)
	publishN(t, c.Addr(majority[0]), "s", "m%d", 20)
	// Queue a publish at the paused leader; it runs the moment it resumes.
	stale.Send("PUBLISH", "s", "stale")
	c.Proc(old).Signal(syscall.SIGCONT)
	v := stale.Read()
	h := c.WaitSameHistory("s")
	want := make([]string, 20)
	for k := range want {
		want[k] = fmt.Sprintf("m%d", k)
	}
	if v.Err() == nil {
		// Accepted: then the new leader committed it, after everything
		// the majority committed meanwhile.
		want = append(want, "stale")
	} else if len(h.Payloads) == 21 && h.Payloads[20] == "stale" {
		// Refused but committed later is allowed: a refusal promises
		// nothing either way; only an acknowledgement does.
		want = append(want, "stale")
	}
	if !slices.Equal(h.Payloads, want) {
		t.Fatalf("history %v, want %v (stale publish answered %v)", h.Payloads, want, v)
	}
	if l := c.WaitLeader(); l != leader {
		t.Fatalf("after resuming node %d, node %d leads, want %d", old, l, leader)
	}
}

// A follower whose log lost its tail or has a record failing its checksum
// repairs itself from its peers and serves nothing corrupt.
func TestClusterFollowerRepairsCorruptLog(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	leader, followers := c.Followers()
	victim := followers[0]
	publishN(t, c.Addr(leader), "x", "payload-%03d", 60)
	c.WaitSameHistory("x")
	c.Proc(victim).Kill()
	seg := lastSegment(t, c.Dir(victim))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(b), "payload-030")
	if at < 0 {
		t.Fatal("record not found")
	}
	b[at+9] ^= 0x04
	b = append(b, 0x7f, 0x00, 0x00) // and a torn tail
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	c.Start(victim).WaitLog("Corrupt record at seq_no=")
	h := c.WaitSameHistory("x")
	if len(h.Payloads) != 60 {
		t.Fatalf("history has %d entries after repair, want 60", len(h.Payloads))
	}
	for k, pl := range h.Payloads {
		if pl != fmt.Sprintf("payload-%03d", k) || h.Seqs[k] != uint64(k+1) {
			t.Fatalf("entry %d = seq %d %q", k, h.Seqs[k], pl)
		}
	}
}

// A follower that was down while retention dropped what it lacks restarts
// its log at the leader's first retained entry and follows from there.
func TestClusterFollowerCatchesUpPastRetention(t *testing.T) {
	// Retention keeps entries younger than twice the publish timeout; the
	// timeout must also let every publish commit on a loaded machine.
	pubTimeout := testkit.Scale(500 * time.Millisecond).String()
	c := testkit.NewCluster(t, 3, false, "--segment-size", "4kb", "--retention-bytes", "16kb", "--publish-timeout", pubTimeout)
	c.StartAll()
	leader, followers := c.Followers()
	victim := followers[0]
	pad := strings.Repeat("p", 100)
	publishN(t, c.Addr(leader), "ret", "a%03d"+pad, 50)
	c.WaitSameHistory("ret")
	c.Proc(victim).Kill()
	publishN(t, c.Addr(leader), "ret", "b%03d"+pad, 600)
	// Retention runs once a second on each live node, independently. A
	// returning node fetches what it lacks from any peer that still holds
	// it, so wait until no live node does; waiting for the leader alone
	// let the victim catch up from the other follower under load.
	testkit.Eventually(t, 15*time.Second, func() bool {
		for _, i := range testkit.Except(c.All(), victim) {
			if h := c.History(i, "ret"); len(h.Seqs) == 0 || h.Seqs[0] <= 51 {
				return false
			}
		}
		return true
	}, "retention on the live nodes did not drop what node %d lacks", victim)

	c.Start(victim).WaitLog("restarting the log at seq_no=")
	testkit.EventuallyNoError(t, 20*time.Second, func() error {
		hv, hl := c.History(victim, "ret"), c.History(leader, "ret")
		if len(hv.Seqs) == 0 || len(hl.Seqs) == 0 || hv.Seqs[len(hv.Seqs)-1] != hl.Seqs[len(hl.Seqs)-1] {
			return fmt.Errorf("tails %v vs %v", testkit.Tail(hv.Seqs), testkit.Tail(hl.Seqs))
		}
		// Same tail, and the victim holds a contiguous suffix of it.
		n := min(len(hv.Seqs), len(hl.Seqs))
		if !slices.Equal(hv.Seqs[len(hv.Seqs)-n:], hl.Seqs[len(hl.Seqs)-n:]) || !slices.Equal(hv.Payloads[len(hv.Payloads)-n:], hl.Payloads[len(hl.Payloads)-n:]) {
			t.Fatalf("node %d differs from the leader in the retained range", victim)
		}
		return nil
	}, "node %d did not catch up with leader %d", victim, leader)
	if v := testkit.Dial(t, c.Addr(victim)).Do("PUBLISH", "ret", "after"); v.Err() != nil {
		t.Fatalf("publish on the reset node: %v", v.Err())
	}
}

// A member whose disk was wiped rejoins with --rejoin-empty: it does not
// vote until the leader has refilled its log, then holds the same history.
func TestClusterWipedFollowerRejoins(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	leader, followers := c.Followers()
	victim := followers[0]
	publishN(t, c.Addr(leader), "w", "m%02d", 40)
	c.WaitSameHistory("w")
	c.Proc(victim).Kill()
	if err := os.RemoveAll(c.Dir(victim)); err != nil {
		t.Fatal(err)
	}
	c.Args = []string{"--rejoin-empty"}
	p := c.Start(victim)
	c.Args = nil
	p.WaitLog("Rejoining with an empty disk")
	h := c.WaitSameHistory("w")
	if len(h.Payloads) != 40 {
		t.Fatalf("history after rejoin: %d entries", len(h.Payloads))
	}
	if l := c.WaitLeader(); l != leader {
		t.Fatalf("leader after rejoin: %d, want %d", l, leader)
	}
	if v := testkit.Dial(t, c.Addr(victim)).Do("PUBLISH", "w", "after"); v.Err() != nil {
		t.Fatalf("publish through the rejoined node: %v", v.Err())
	}
}
