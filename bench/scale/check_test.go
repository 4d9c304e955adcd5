package scale

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/ordo-broker/ordo/clients/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// hist is a history of the payloads with seqs 1..n.
func hist(node int, payloads ...string) NodeHistory {
	h := NodeHistory{Node: node}
	for i, p := range payloads {
		h.Seqs = append(h.Seqs, uint64(i+1))
		h.Payloads = append(h.Payloads, p)
	}
	return h
}

// acked is a ledger in which every payload was acknowledged at the
// first attempt.
func acked(payloads ...string) map[string]Record {
	l := map[string]Record{}
	for _, p := range payloads {
		l[p] = Record{Payload: p, Attempts: 1, Acked: true}
	}
	return l
}

// wantViolation asserts that res has exactly one violation and that it
// mentions every one of words.
func wantViolation(t *testing.T, res CheckResult, words ...string) {
	t.Helper()
	if len(res.Violations) != 1 {
		t.Fatalf("want 1 violation mentioning %q, got %d: %q", words, len(res.Violations), res.Violations)
	}
	for _, w := range words {
		if !strings.Contains(res.Violations[0], w) {
			t.Fatalf("violation %q does not mention %q", res.Violations[0], w)
		}
	}
}

func TestCheckPassesIdenticalCompleteHistories(t *testing.T) {
	res := Check([]NodeHistory{hist(1, "a", "b", "c"), hist(2, "a", "b", "c"), hist(3, "a", "b", "c")}, acked("a", "b", "c"))
	if !res.OK() || res.Entries != 3 || res.Duplicates != 0 {
		t.Fatalf("clean histories: %+v", res)
	}
}

func TestCheckReportsGap(t *testing.T) {
	h := hist(2, "a", "b", "c")
	h.Seqs[2] = 4 // 1, 2, 4
	ref := hist(1, "a", "b", "c")
	ref.Seqs[2] = 4
	res := Check([]NodeHistory{ref, h}, acked("a", "b", "c"))
	// Both nodes have the gap; they agree with each other.
	if len(res.Violations) != 2 {
		t.Fatalf("want a gap violation per node, got %q", res.Violations)
	}
	for _, v := range res.Violations {
		if !strings.Contains(v, "gap: seq 4 follows 2") {
			t.Fatalf("violation %q does not describe the gap", v)
		}
	}
}

func TestCheckReportsDuplicateSeq(t *testing.T) {
	h := hist(1, "a", "b", "c")
	h.Seqs[2] = 2 // 1, 2, 2
	wantViolation(t, Check([]NodeHistory{h}, acked("a", "b", "c")), "node 1", "duplicate seq 2")
}

func TestCheckReportsOutOfOrderSeq(t *testing.T) {
	h := hist(1, "a", "b", "c")
	h.Seqs[1], h.Seqs[2] = 3, 2
	wantViolation(t, Check([]NodeHistory{h}, acked("a", "b", "c")), "node 1", "out of order")
}

func TestCheckReportsHistoryNotStartingAtOne(t *testing.T) {
	h := hist(1, "a")
	h.Seqs[0] = 2
	wantViolation(t, Check([]NodeHistory{h}, acked("a")), "starts at seq 2")
}

func TestCheckReportsMissingAcknowledgedMessage(t *testing.T) {
	res := Check([]NodeHistory{hist(1, "a", "b"), hist(2, "a", "b")}, acked("a", "b", "c"))
	wantViolation(t, res, "1 acknowledged messages missing", `"c" on nodes [1 2]`)
}

func TestCheckToleratesMissingUnacknowledgedMessage(t *testing.T) {
	l := acked("a")
	// Given up after an ambiguous error: it may or may not be there.
	l["b"] = Record{Payload: "b", Attempts: 3, Ambiguous: 1}
	if res := Check([]NodeHistory{hist(1, "a")}, l); !res.OK() {
		t.Fatalf("an unacknowledged, uncertain message is not required: %q", res.Violations)
	}
}

func TestCheckReportsDivergentPeers(t *testing.T) {
	res := Check([]NodeHistory{hist(1, "a", "b", "c"), hist(2, "a", "c", "b")}, acked("a", "b", "c"))
	wantViolation(t, res, "node 2 diverges from node 1", "at entry 2")
}

func TestCheckReportsLaggingPeer(t *testing.T) {
	l := acked("a", "b")
	l["c"] = Record{Payload: "c", Attempts: 1, Ambiguous: 1} // so only the lag is wrong
	res := Check([]NodeHistory{hist(1, "a", "b", "c"), hist(2, "a", "b")}, l)
	wantViolation(t, res, "node 2 diverges from node 1", "1 behind")
}

func TestCheckReportsPeerAhead(t *testing.T) {
	l := acked("a", "b")
	l["c"] = Record{Payload: "c", Attempts: 1, Ambiguous: 1}
	res := Check([]NodeHistory{hist(1, "a", "b"), hist(3, "a", "b", "c")}, l)
	wantViolation(t, res, "node 3 diverges from node 1", "1 more than the reference")
}

func TestCheckToleratesDuplicateAfterUncertainRetry(t *testing.T) {
	l := acked("a", "b")
	// First attempt: -TRYAGAIN ... may or may not be delivered (it was);
	// the retry was acknowledged: two copies, both explained.
	l["c"] = Record{Payload: "c", Attempts: 2, Ambiguous: 1, Acked: true}
	res := Check([]NodeHistory{hist(1, "a", "c", "b", "c"), hist(2, "a", "c", "b", "c")}, l)
	if !res.OK() {
		t.Fatalf("a duplicate after an uncertain retry is not a violation: %q", res.Violations)
	}
	if res.Duplicates != 1 {
		t.Fatalf("duplicates = %d, want 1", res.Duplicates)
	}
}

func TestCheckReportsUnexplainedDuplicate(t *testing.T) {
	l := acked("a", "b")
	// Retried after refusals (CLUSTERDOWN): those attempts committed nothing.
	l["c"] = Record{Payload: "c", Attempts: 3, Acked: true}
	res := Check([]NodeHistory{hist(1, "a", "c", "b", "c")}, l)
	wantViolation(t, res, `"c" appears 2 times`, "can explain 1")
}

func TestCheckReportsMoreCopiesThanAmbiguousAttempts(t *testing.T) {
	l := acked("a")
	l["c"] = Record{Payload: "c", Attempts: 2, Ambiguous: 1, Acked: true}
	res := Check([]NodeHistory{hist(1, "a", "c", "c", "c")}, l)
	wantViolation(t, res, `"c" appears 3 times`, "can explain 2")
}

func TestCheckReportsRefusedMessageThatCommitted(t *testing.T) {
	l := acked("a")
	l["r"] = Record{Payload: "r", Attempts: 2} // both -CLUSTERDOWN, then given up
	wantViolation(t, Check([]NodeHistory{hist(1, "a", "r")}, l), `"r" appears 1 times`, "can explain 0")
}

func TestCheckReportsUnknownMessage(t *testing.T) {
	wantViolation(t, Check([]NodeHistory{hist(1, "a", "zz")}, acked("a")), `"zz" was never published`)
}

func TestCheckReportsUnreadableNode(t *testing.T) {
	res := Check([]NodeHistory{hist(1, "a"), {Node: 2, Err: errors.New("connection refused")}}, acked("a"))
	wantViolation(t, res, "node 2", "unreadable", "connection refused")
}

func TestCheckWithoutNodesFails(t *testing.T) {
	if res := Check(nil, acked("a")); res.OK() {
		t.Fatal("checking no node passed")
	}
}

func TestSame(t *testing.T) {
	if !Same([]NodeHistory{hist(1, "a", "b"), hist(2, "a", "b")}) {
		t.Fatal("equal histories are not Same")
	}
	if Same([]NodeHistory{hist(1, "a", "b"), hist(2, "a")}) {
		t.Fatal("a shorter history is Same")
	}
	if Same([]NodeHistory{hist(1, "a"), {Node: 2, Err: errors.New("x")}}) {
		t.Fatal("an unreadable history is Same")
	}
}

// The classification must follow what ordo actually replies: the error
// texts come from the broker, so a rewording there fails here.
func TestClassifyBrokerErrors(t *testing.T) {
	for _, c := range []struct {
		reply string
		want  Outcome
	}{
		{"CLUSTERDOWN " + replica.ErrNoLeader.Error(), Refused},
		{"TRYAGAIN " + replica.ErrNotSequenced.Error(), Refused},
		{"TRYAGAIN " + replica.ErrUnconfirmed.Error(), Ambiguous},
		{"TRYAGAIN something new", Ambiguous},
		{"ERR " + replica.ErrShuttingDown.Error(), Ambiguous},
		{"ERR message too large", Ambiguous},
	} {
		if got, kind := classify(c.reply); got != c.want {
			t.Errorf("classify(%q) = %v (%s), want %v", c.reply, got, kind, c.want)
		}
	}
	if !retryable("TRYAGAIN unconfirmed") || !retryable("connection") || retryable("ERR message too large") {
		t.Error("retryable: wrong answer")
	}
}

func TestLedger(t *testing.T) {
	l := NewLedger()
	l.Note("a", Acked, "")
	l.Note("b", Refused, "CLUSTERDOWN")
	l.Note("b", Ambiguous, "TRYAGAIN unconfirmed")
	l.Note("b", Acked, "")
	l.Note("c", Ambiguous, "connection")
	pub, ack, unc, retries := l.Counts()
	if pub != 3 || ack != 2 || unc != 2 || retries != 2 {
		t.Fatalf("counts: published %d acked %d uncertain %d retries %d", pub, ack, unc, retries)
	}
	if r := l.Snapshot()["b"]; r.MayCommit() != 2 || r.Attempts != 3 {
		t.Fatalf("record b: %+v", r)
	}
	if e := l.Errors(); e != "CLUSTERDOWN x1, TRYAGAIN unconfirmed x1, connection x1" {
		t.Fatalf("errors: %q", e)
	}
}

func TestMedianAndMax(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	if m := Median(ms(3, 1, 2)); m != 2*time.Millisecond {
		t.Fatalf("median of 3: %v", m)
	}
	if m := Median(ms(4, 1, 2, 3)); m != 2500*time.Microsecond {
		t.Fatalf("median of 4: %v", m)
	}
	if Median(nil) != 0 || Max(nil) != 0 || Max(ms(1, 5, 2)) != 5*time.Millisecond {
		t.Fatal("max or empty median")
	}
}
