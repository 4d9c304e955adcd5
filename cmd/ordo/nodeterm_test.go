package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// The guide's client-server demos as a person sees them in the three
// NODE terminals (`ordo node --print-channels chat`, its log on stderr in
// the same terminal) while two `ordo chat` terminals talk: CS-1 the
// conversation on every node, CS-3 the leader's death, CS-4 its return,
// CS-5/CS-7 the debug lines, CS-6 the log files with `ordo log`.
// (Hold-back, `Buffered out-of-order message`, cannot be forced with real
// processes: consensus's TestFollowerHoldsBackOutOfOrderAppends asserts
// its lines.)
func TestNodeTerminals(t *testing.T) {
	tm := newTmux(t)
	ports, dirs := map[int]int{}, map[int]string{}
	for i := 1; i <= 3; i++ {
		ports[i], dirs[i] = testkit.FreePort(t), t.TempDir()
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	peers := fmt.Sprintf("1:%s,2:%s,3:%s", addr(1), addr(2), addr(3))
	// Every node at debug level (CS-5/CS-7), with short timings: a
	// heartbeat line per 100 ms is little for a terminal.
	args := func(i int) []string {
		return []string{"node", "--id", strconv.Itoa(i), "--port", strconv.Itoa(ports[i]), "--data-dir", dirs[i],
			"--peers", peers, "--print-channels", "chat", "--log-level", "debug",
			"--heartbeat-interval", "100ms", "--leader-timeout", "1s"}
	}
	nodes := map[int]*pane{}
	for i := 1; i <= 3; i++ {
		nodes[i] = tm.start(fmt.Sprintf("node%d", i), args(i)...)
	}
	// A node's screen at the end is all heartbeat lines: on failure show
	// its whole history without them (before the tmux server goes).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i := 1; i <= 3; i++ {
			var keep []string
			for _, l := range strings.Split(nodes[i].history(), "\n") {
				if !strings.Contains(l, "Heartbeat received from leader") && !strings.Contains(l, "Sent heartbeat to") {
					keep = append(keep, l)
				}
			}
			t.Logf("terminal node%d, its whole history but the heartbeat lines:\n%s", i, strings.Join(keep, "\n"))
		}
	})
	// Nothing published yet: formation settles on the highest id (as
	// testkit's StartAll waits for), so the demo publishes into a settled
	// cluster.
	agreedLeader(t, addr, []int{1, 2, 3}, 3)

	chat101 := tm.start("chat101", "chat", "--host", "127.0.0.1", "--port", strconv.Itoa(ports[1]),
		"--addr", addr(2), "--addr", addr(3), "--client-id", "101")
	chat102 := tm.start("chat102", "chat", "--host", "127.0.0.1", "--port", strconv.Itoa(ports[2]),
		"--addr", addr(3), "--addr", addr(1), "--client-id", "102")
	chat101.waitText(screenWait, "Connected to "+addr(1)+" as client_101")
	chat102.waitText(screenWait, "Connected to "+addr(2)+" as client_102")
	chats := map[int]*pane{1: chat101, 2: chat102}

	var conv []chatLine
	// A node terminal shows the conversation from conv[from[i]] on, after
	// the line marker[i] (its start if "").
	marker, from := map[int]string{}, map[int]int{}
	// say types text in chat c (client_10c) and waits until the chat
	// terminals in onChats and the node terminals in onNodes show the
	// conversation so far.
	say := func(c int, text string, onChats, onNodes []int) {
		t.Helper()
		conv = append(conv, chatLine{uint64(len(conv) + 1), fmt.Sprintf("client_10%d", c), text})
		chats[c].typeLine(text)
		for _, j := range onChats {
			waitConversation(t, chats[j], conv)
		}
		for _, j := range onNodes {
			waitNodeConversation(t, nodes[j], marker[j], conv[from[j]:])
		}
	}

	// CS-1: every node's terminal prints every chat line, in one order.
	say(1, "Hello from node 1!", []int{1, 2}, []int{1, 2, 3})
	say(2, "Hello from node 2!", []int{1, 2}, []int{1, 2, 3})

	// CS-5/CS-7 at debug level: the leader says it sends heartbeats, a
	// follower that it receives them; every node logs each delivery.
	lead, term := agreedLeader(t, addr, []int{1, 2, 3}, 0)
	for i := 1; i <= 3; i++ {
		hb := fmt.Sprintf("failure.%d - DEBUG - Heartbeat received from leader, term=%s", i, term)
		if i == lead {
			hb = fmt.Sprintf("failure.%d - DEBUG - Sent heartbeat to 2 peers", i)
		}
		nodes[i].waitHistory(fmt.Sprintf("%q and both deliveries", hb), func(h string) bool {
			return strings.Contains(h, hb) &&
				strings.Contains(h, fmt.Sprintf("ordering.%d - DEBUG - Delivering seq_no=1", i)) &&
				strings.Contains(h, fmt.Sprintf("ordering.%d - DEBUG - Delivering seq_no=2", i))
		})
	}

	// CS-6, while the nodes run: `ordo log` refuses a directory a running
	// node holds.
	logp := tm.start("log", "log", "--data-dir", dirs[1])
	if st := logp.waitExit(screenWait); st != 1 {
		t.Fatalf("ordo log on a running node's directory exited with %d, want 1:\n%s", st, logp.scrollback())
	}
	mustContain(t, "ordo log on a running node's directory", logp.scrollback(),
		"is in use by a running ordo node: stop the node first")

	// CS-3: the leader (as STATUS says) dies; a survivor times out and
	// starts an election, a new leader says so, the chat goes on.
	dead := lead
	alive := testkit.Except([]int{1, 2, 3}, dead)
	before := map[int]string{}
	for _, i := range alive {
		before[i] = nodes[i].history()
	}
	nodes[dead].kill9()
	newLead, newTerm := agreedLeader(t, addr, alive, 0)
	nodes[newLead].waitHistory("the new leader's election", func(h string) bool {
		return strings.Contains(after(h, before[newLead]), fmt.Sprintf("node.%d - INFO - Became LEADER for term %s", newLead, newTerm))
	})
	timedOut := false
	for _, i := range alive {
		h := after(nodes[i].history(), before[i])
		timedOut = timedOut || strings.Contains(h, fmt.Sprintf("failure.%d - WARNING - Leader timeout!", i)) ||
			strings.Contains(h, fmt.Sprintf("election.%d - INFO - Starting election for term", i))
	}
	if !timedOut {
		t.Fatalf("no survivor showed Leader timeout! or Starting election after node %d died", dead)
	}
	talker := alive[0] // a chat whose node survives (chat 10i is on node i)
	if talker > 2 {
		talker = alive[1]
	}
	// Both lines are missed by the dead node.
	say(talker, fmt.Sprintf("While node_%d is down", dead), []int{talker}, alive)
	say(talker, "Still chatting", []int{talker}, alive)
	missedFrom := len(conv) - 1

	// CS-4: the dead node restarts with its data directory: it loads its
	// log, asks for what it missed, and prints the missed lines in order.
	// What the restart printed follows "Loaded 2 messages from log" (the
	// terminal may keep some of the first run's output above). It prints
	// every message after the applied index it restored: the commit index
	// is saved lazily, so after kill -9 that can be below what it had
	// printed, and a line or two it showed before the crash shows again.
	nodes[dead].restart(args(dead)...)
	loaded := fmt.Sprintf("storage.%d - INFO - Loaded %d messages from log", dead, missedFrom-1)
	restoredRE := regexp.MustCompile(fmt.Sprintf(`node\.%d - INFO - Restored term=\d+ .* applied=(\d+)\n`, dead))
	var applied int
	nodes[dead].waitHistory("the restored state", func(h string) bool {
		i := strings.LastIndex(h, loaded)
		if i < 0 {
			return false
		}
		m := restoredRE.FindStringSubmatch(h[i:])
		if m != nil {
			applied, _ = strconv.Atoi(m[1])
		}
		return m != nil
	})
	if applied > missedFrom-1 {
		t.Fatalf("restarted node %d restored applied=%d, beyond the %d messages it held", dead, applied, missedFrom-1)
	}
	marker[dead], from[dead] = loaded, applied
	waitNodeConversation(t, nodes[dead], loaded, conv[applied:])
	h := nodes[dead].history()
	h = h[strings.LastIndex(h, loaded):]
	catchup := fmt.Sprintf("ordering.%d - INFO - Requesting catch-up from seq_no=%d", dead, missedFrom)
	mustContain(t, fmt.Sprintf("restarted node %d's terminal", dead), h,
		fmt.Sprintf("ordering.%d - INFO - Set last_seq=%d, next_expected=%d", dead, missedFrom-1, missedFrom), catchup)
	if !(strings.Index(h, catchup) < strings.Index(h, fmt.Sprintf("[seq=%d] ", missedFrom))) {
		t.Fatalf("restarted node %d printed the missed lines before it asked for them:\n%s", dead, h)
	}
	say(talker, fmt.Sprintf("Welcome back node_%d", dead), []int{1, 2}, []int{1, 2, 3})

	// CS-6: Ctrl+C stops a node; `ordo log` on its directory shows the
	// conversation and that every record's checksum held.
	stop := alive[0]
	if stop == newLead {
		stop = alive[1]
	}
	nodes[stop].keys("C-c")
	if st := nodes[stop].waitExit(screenWait); st != 0 {
		t.Fatalf("node %d exited with %d after Ctrl+C", stop, st)
	}
	logp.restart("log", "--data-dir", dirs[stop])
	if st := logp.waitExit(screenWait); st != 0 {
		t.Fatalf("ordo log on stopped node %d's directory exited with %d:\n%s", stop, st, logp.scrollback())
	}
	out := logp.scrollback()
	var want []string
	for _, l := range conv {
		want = append(want, fmt.Sprintf(" chat %s: %s", l.sender, l.text))
	}
	mustContain(t, "ordo log", out, append(want, "checksums       all records verified",
		fmt.Sprintf("messages        %d", len(conv)))...)
	var prev int
	for k, l := range conv {
		i := strings.Index(out, fmt.Sprintf("[seq=%d] ", l.seq))
		if i < 0 || i < prev || !strings.Contains(strings.SplitN(out[i:], "\n", 2)[0], want[k]) {
			t.Fatalf("ordo log does not show seq=%d as %q in order:\n%s", l.seq, want[k], out)
		}
		prev = i
	}
}

// history is everything the terminal printed (its scrollback and screen),
// wrapped lines joined.
func (p *pane) history() string { return p.capture("-J", "-S", "-") }

// waitHistory polls the terminal's history until cond holds.
func (p *pane) waitHistory(what string, cond func(h string) bool) string {
	p.t.Helper()
	var last string
	testkit.Eventually(p.t, screenWait, func() bool {
		last = p.history()
		return cond(last)
	}, "terminal %s never showed %s; its last lines:\n%s", p.name, what, lazyTail{&last})
	return last
}

// lazyTail shows the last 60 lines of a string when printed.
type lazyTail struct{ s *string }

func (l lazyTail) String() string {
	ls := strings.Split(*l.s, "\n")
	return strings.Join(ls[max(0, len(ls)-60):], "\n")
}

// after is what a terminal's history h printed after the history before
// (the capture of the same terminal earlier).
func after(h, before string) string {
	// The earlier capture ends with the screen's blank rows trimmed; it is
	// a prefix of the later one but for its last row, which may have grown.
	if i := strings.LastIndex(before, "\n"); i >= 0 && strings.HasPrefix(h, before[:i]) {
		return h[i:]
	}
	return h
}

// waitNodeConversation waits until a node's terminal has printed exactly
// the conversation want, in order, after the line containing marker (from
// the start if marker is ""): the [seq=N] lines of print_channels, among
// its log lines.
func waitNodeConversation(t *testing.T, p *pane, marker string, want []chatLine) {
	t.Helper()
	p.waitHistory(fmt.Sprintf("the conversation %v after %q", want, marker), func(h string) bool {
		if marker != "" {
			i := strings.LastIndex(h, marker)
			if i < 0 {
				return false
			}
			h = h[i:]
		}
		got := chatLines(h)
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("terminal %s printed %v, want a prefix of %v:\n%s", p.name, got, want, h)
		}
		return len(got) == len(want)
	})
}

// agreedLeader waits until the nodes agree on a leader among them (all
// report its id and term, it reports leader, the others follower), node
// want if not 0, and returns it with the term.
func agreedLeader(t *testing.T, addr func(int) string, nodes []int, want int) (int, string) {
	t.Helper()
	var lead int
	var term, last string
	testkit.Eventually(t, testkit.LeaderTimeout, func() bool {
		sts := map[int]map[string]string{}
		last = ""
		for _, i := range nodes {
			st, err := testkit.Status(addr(i))
			if err != nil {
				last = fmt.Sprintf("node %d: %v", i, err)
				return false
			}
			sts[i] = st
			last += fmt.Sprintf("[node %d: role=%s term=%s leader_id=%s] ", i, st["role"], st["term"], st["leader_id"])
		}
		l, _ := strconv.Atoi(sts[nodes[0]]["leader_id"])
		term = sts[nodes[0]]["term"]
		if !slices.Contains(nodes, l) || want != 0 && l != want {
			return false
		}
		for _, i := range nodes {
			want := "follower"
			if i == l {
				want = "leader"
			}
			if sts[i]["leader_id"] != strconv.Itoa(l) || sts[i]["term"] != term || sts[i]["role"] != want {
				return false
			}
		}
		lead = l
		return true
	}, "nodes %v agreed on no leader: %s", nodes, lazyText{&last})
	return lead, term
}
