package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/ordo-broker/ordo/wal/waltest"
)

// Storage faults, as Jepsen tried them on NATS (issue 11): three nodes,
// publishes acknowledged, every node stopped (kill -9), a log damaged on
// disk on one node or on two of the three (the leader and a follower, each
// at its own place), every node restarted, more publishes, histories
// compared. Whatever one intact copy still holds must survive: nothing
// acknowledged is lost, an intact node never loses an entry, and no
// sequence number ever names another message.

// sfSegment keeps segments small so the log spans several files: damage
// lands in finished segments (read lazily) as well as in the last one
// (the one a node appends to, where a torn write would be).
const (
	sfSegment   = "16kb"
	sfChannel   = "sf"
	sfFirst     = 1500 // published before the damage (sfFirstRace under -race)
	sfFirstRace = 700
	sfSecond    = 100 // acknowledged after the restart
	sfCutBytes  = 4096
)

// damageFn damages node dir's log at its place (0 or 1: the two damaged
// nodes of a row are hit at different places) and says what it did.
type damageFn func(dir string, place int) (string, error)

var sfFaults = []struct {
	name   string
	damage damageFn
}{
	{"flipped bit mid-segment", func(dir string, place int) (string, error) {
		// Place 0: the middle of the second segment; place 1: a third of
		// the way into the last one.
		seg, frac := []int{1, -1}[place], []float64{0.5, 0.33}[place]
		i, err := waltest.FlipRecordBit(dir, seg, frac)
		return fmt.Sprintf("flipped a bit in record %d", i), err
	}},
	{"flipped length prefix", func(dir string, place int) (string, error) {
		// Place 1 is in the last segment: what follows the damaged prefix
		// there used to be taken for a torn write and dropped.
		seg, frac := []int{1, -1}[place], []float64{0.5, 0.33}[place]
		i, err := waltest.FlipLengthPrefix(dir, seg, frac)
		return fmt.Sprintf("flipped the length prefix of record %d", i), err
	}},
	{"last 4 KiB cut", func(dir string, _ int) (string, error) {
		i, err := waltest.CutTail(dir, sfCutBytes)
		return fmt.Sprintf("cut the last %d bytes (records from %d on)", sfCutBytes, i), err
	}},
}

func TestStorageFaults(t *testing.T) {
	for _, f := range sfFaults {
		for _, on := range []string{"leader", "follower", "leader+follower"} {
			t.Run(f.name+"/"+on, func(t *testing.T) { storageFaultRow(t, f.damage, on) })
		}
	}
}

func storageFaultRow(t *testing.T, damage damageFn, on string) {
	c := testkit.NewCluster(t, 3, false, "--segment-size", sfSegment)
	c.StartAll()
	leader, followers := c.Followers()
	n := sfFirst
	if testkit.Race { // every process is 5-10x slower: keep each row well under a minute
		n = sfFirstRace
	}
	publishBulk(t, c.Addr(leader), sfChannel, n, 2)
	before := c.WaitSameHistory(sfChannel)
	if len(before.Seqs) != n {
		t.Fatalf("%d messages before the damage, want %d", len(before.Seqs), n)
	}
	for _, i := range c.All() {
		c.Proc(i).Kill()
	}
	victims := map[string][]int{"leader": {leader}, "follower": {followers[0]}, "leader+follower": {leader, followers[0]}}[on]
	for place, v := range victims {
		what, err := damage(c.Dir(v), place)
		if err != nil {
			t.Fatalf("damaging node %d: %v", v, err)
		}
		t.Logf("node %d (%s before the stop): %s", v, map[bool]string{true: "leader", false: "follower"}[v == leader], what)
	}
	// The worst order: the damaged nodes come back first and may elect a
	// leader between them before the intact copy is back.
	for _, v := range victims {
		c.Start(v)
	}
	if len(victims) > 1 {
		if l, ok := watchForLeader(c, victims); ok {
			t.Logf("the damaged nodes %v elected node %d before the intact node was back", victims, l)
		}
	}
	for _, i := range testkit.Except(c.All(), victims...) {
		c.Start(i)
	}
	acked := publishAcked(t, c, sfChannel, "after-%03d", sfSecond)
	checkNothingLost(t, c, before, acked)
}

// watchForLeader watches nodes for four leader timeouts (an absence can
// only be watched for a while) and returns the leader they agree on, if
// they do in that time.
func watchForLeader(c *testkit.Cluster, nodes []int) (int, bool) {
	for end := time.Now().Add(testkit.Scale(4 * 500 * time.Millisecond)); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var lead string
		agree := true
		for _, i := range nodes {
			st := statusOf(c, i)
			if st == nil || st["leader_id"] == "0" || (lead != "" && st["leader_id"] != lead) {
				agree = false
				break
			}
			lead = st["leader_id"]
		}
		if l := 0; agree && lead != "" {
			fmt.Sscan(lead, &l)
			if st := statusOf(c, l); slices.Contains(nodes, l) && st != nil && st["role"] == "leader" {
				return l, true
			}
		}
	}
	return 0, false
}

// publishAcked publishes n messages through any node, retrying (with a
// new payload: an unanswered publish may still commit) until each of n
// payloads was acknowledged or the deadline passes. It returns the
// acknowledged payloads.
func publishAcked(t *testing.T, c *testkit.Cluster, channel, format string, n int) []string {
	t.Helper()
	var acked []string
	deadline := time.Now().Add(testkit.Scale(30 * time.Second))
	var last error
	for try := 0; len(acked) < n; try++ {
		if time.Now().After(deadline) {
			for _, i := range c.All() {
				st, _ := c.Status(i)
				t.Logf("node %d: role=%s leader_id=%s term=%s commit_seq=%s", i, st["role"], st["leader_id"], st["term"], st["commit_seq"])
			}
			t.Fatalf("only %d of %d publishes acknowledged after the restart (last error: %v)", len(acked), n, last)
		}
		node := c.All()[try%c.N]
		r, err := resp.Dial(c.Addr(node), testkit.Scale(5*time.Second))
		if err != nil {
			last = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		for len(acked) < n {
			msg := fmt.Sprintf(format, len(acked)) + fmt.Sprintf("-t%d", try)
			v, err := r.Do("PUBLISH", channel, msg)
			if err == nil {
				err = v.Err()
			}
			if err != nil {
				last = err
				try++
				time.Sleep(20 * time.Millisecond)
				break
			}
			acked = append(acked, msg)
		}
		r.Close()
	}
	return acked
}

// checkNothingLost waits for every node to hold the same history and
// checks it: the history before the damage unchanged at its own sequence
// numbers, every acknowledged publish after it present, numbering dense.
func checkNothingLost(t *testing.T, c *testkit.Cluster, before testkit.History, acked []string) {
	t.Helper()
	h := c.WaitSameHistory(sfChannel)
	if len(h.Seqs) < len(before.Seqs) {
		t.Fatalf("history has %d messages, %d were acknowledged before the damage", len(h.Seqs), len(before.Seqs))
	}
	for k := range before.Seqs {
		if h.Seqs[k] != before.Seqs[k] || h.Payloads[k] != before.Payloads[k] {
			t.Fatalf("entry %d: seq %d %q after the damage, was seq %d %q", k, h.Seqs[k], h.Payloads[k], before.Seqs[k], before.Payloads[k])
		}
	}
	for k, s := range h.Seqs {
		if s != uint64(k+1) {
			t.Fatalf("numbering has a gap: entry %d is seq %d", k, s)
		}
	}
	have := map[string]bool{}
	for _, p := range h.Payloads[len(before.Payloads):] {
		have[p] = true
	}
	var lost []string
	for _, p := range acked {
		if !have[p] {
			lost = append(lost, p)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged publishes after the restart are missing, e.g. %v", len(lost), lost[:min(3, len(lost))])
	}
	t.Logf("all %d nodes hold the same %d messages: %d from before the damage, %d acknowledged after",
		c.N, len(h.Seqs), len(before.Seqs), len(acked))
}

// A member whose disk was wiped, restarted without --rejoin-empty, in the
// worst order: messages were committed while another member was down,
// so only the leader and the wiped node ever held them. The wiped node
// knows from its peers that it is a member that lost its data and must
// not help the stale member lead; nothing committed is lost.
func TestStorageFaultWipedFollowerWithoutRejoinFlag(t *testing.T) {
	c := testkit.NewCluster(t, 3, false, "--segment-size", sfSegment)
	c.StartAll()
	leader, followers := c.Followers()
	wiped, stale := followers[0], followers[1]
	publishN(t, c.Addr(leader), sfChannel, "early-%03d", 20)
	c.WaitSameHistory(sfChannel)
	c.Proc(stale).Kill()
	publishBulk(t, c.Addr(leader), sfChannel, 1000, 2)
	before := c.WaitSameHistory(sfChannel, leader, wiped)
	c.Proc(wiped).Kill()
	c.Proc(leader).Kill()
	if err := waltest.Wipe(c.Dir(wiped)); err != nil {
		t.Fatal(err)
	}
	c.Start(stale)
	c.Start(wiped)
	// Give the two a chance to elect the stale node (the failure this test
	// is about); a correct wiped node never lets them.
	if l, ok := watchForLeader(c, []int{stale, wiped}); ok {
		t.Logf("the wiped node %d and the stale node %d elected node %d", wiped, stale, l)
	}
	c.Start(leader)
	acked := publishAcked(t, c, sfChannel, "after-%03d", sfSecond)
	checkNothingLost(t, c, before, acked)
	if !strings.Contains(c.Proc(wiped).Logs(), "lost its data") {
		t.Errorf("node %d did not say that it is a member that lost its data", wiped)
	}
}

// No intact copy anywhere: the same record damaged on all three nodes.
// The leader halts and names the log index in STATUS; the operator's
// CLUSTER ACCEPT-LOSS (exactly that list, on the leader) lets it go on:
// that one message stays gone, every other keeps its sequence number.
func TestStorageFaultNoIntactCopyAcceptLoss(t *testing.T) {
	c := testkit.NewCluster(t, 3, false, "--segment-size", sfSegment)
	c.StartAll()
	leader, _ := c.Followers()
	n := 600
	publishBulk(t, c.Addr(leader), sfChannel, n, 2)
	before := c.WaitSameHistory(sfChannel)
	for _, i := range c.All() {
		c.Proc(i).Kill()
	}
	var lost uint64
	for _, i := range c.All() {
		idx, err := waltest.FlipRecordBit(c.Dir(i), 1, 0.5)
		if err != nil {
			t.Fatalf("damaging node %d: %v", i, err)
		}
		if lost != 0 && idx != lost {
			t.Fatalf("node %d damaged at %d, the others at %d: the logs should be identical", i, idx, lost)
		}
		lost = idx
	}
	for _, i := range c.All() {
		c.Start(i)
	}
	want := strconv.FormatUint(lost, 10)
	var halted int
	testkit.Eventually(t, testkit.Scale(30*time.Second), func() bool {
		for _, i := range c.All() {
			if st := statusOf(c, i); st != nil && st["role"] == "leader" && st["lost_log_indexes"] == want {
				halted = i
				return true
			}
		}
		return false
	}, "a leader reporting lost_log_indexes:%s", want)
	if !strings.Contains(c.Proc(halted).Logs(), "Entries lost: no member holds an intact copy of log index ["+want+"]") {
		t.Errorf("leader %d did not log the loss", halted)
	}
	cli := func(i int, args ...string) string {
		r, err := resp.Dial(c.Addr(i), testkit.Scale(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		v, err := r.Do(args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Err(); err != nil {
			return err.Error()
		}
		return v.String()
	}
	follower := testkit.Except(c.All(), halted)[0]
	if got := cli(follower, "CLUSTER", "ACCEPT-LOSS", want); !strings.Contains(got, "not the leader") {
		t.Errorf("ACCEPT-LOSS on follower %d: %q, want a not-the-leader error", follower, got)
	}
	wider := want + "-" + strconv.FormatUint(lost+1, 10)
	if got := cli(halted, "CLUSTER", "ACCEPT-LOSS", wider); !strings.Contains(got, "the lost log indexes are "+want) {
		t.Errorf("ACCEPT-LOSS %s: %q, want the lost indexes named", wider, got)
	}
	if got := cli(halted, "CLUSTER", "ACCEPT-LOSS", "x"); !strings.Contains(got, "invalid log indexes") {
		t.Errorf("ACCEPT-LOSS x: %q", got)
	}
	if got := cli(halted, "CLUSTER", "ACCEPT-LOSS", want); got != "OK" {
		t.Fatalf("ACCEPT-LOSS %s: %q", want, got)
	}
	acked := publishAcked(t, c, sfChannel, "after-%03d", sfSecond)
	h := c.WaitSameHistory(sfChannel)
	var kept testkit.History
	for k, s := range before.Seqs {
		if s != lost {
			kept.Seqs = append(kept.Seqs, s)
			kept.Payloads = append(kept.Payloads, before.Payloads[k])
		}
	}
	if len(kept.Seqs) != n-1 || len(h.Seqs) != n-1+len(acked) {
		t.Fatalf("history has %d messages, want %d before (all but seq %d) and %d after", len(h.Seqs), len(kept.Seqs), lost, len(acked))
	}
	for k := range kept.Seqs {
		if h.Seqs[k] != kept.Seqs[k] || h.Payloads[k] != kept.Payloads[k] {
			t.Fatalf("entry %d: seq %d %q, was seq %d %q", k, h.Seqs[k], h.Payloads[k], kept.Seqs[k], kept.Payloads[k])
		}
	}
	for k, p := range acked {
		if h.Payloads[n-1+k] != p || h.Seqs[n-1+k] != uint64(n+1+k) {
			t.Fatalf("after the loss, entry %d is seq %d %q, want seq %d %q", n-1+k, h.Seqs[n-1+k], h.Payloads[n-1+k], n+1+k, p)
		}
	}
	if st := statusOf(c, halted); st["lost_log_indexes"] != "" {
		t.Errorf("STATUS still reports lost_log_indexes %s", st["lost_log_indexes"])
	}
	t.Logf("seq %d lost on every node, accepted; %d messages kept under their numbers, %d published after", lost, len(kept.Seqs), len(acked))
}
