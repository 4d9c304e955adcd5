package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// The guide's demos, typed into real terminals (tmux): `ordo peer` for
// peer-to-peer mode, `ordo chat` against `ordo node`s for client-server
// mode. What a person would look at is what is asserted: the lines on
// the screen.

// screenWait bounds one wait for the screen (before testkit.Scale).
const screenWait = 15 * time.Second

// showsConversation reports whether a screen shows the conversation want
// in order and nothing else numbered: all of it while the screen still
// shows its first line (the greeting "You are ..."), else the end of it
// that fits (earlier lines scrolled away).
func showsConversation(screen string, want []chatLine) bool {
	got := chatLines(screen)
	if strings.Contains(screen, "You are ") {
		return slices.Equal(got, want)
	}
	return len(got) > 0 && len(got) <= len(want) && slices.Equal(got, want[len(want)-len(got):])
}

// waitConversation waits until a terminal shows the conversation want.
func waitConversation(t *testing.T, p *pane, want []chatLine) {
	t.Helper()
	p.waitScreen(screenWait, fmt.Sprintf("the conversation %v", want), func(s string) bool {
		return showsConversation(s, want)
	})
}

// statusCmd types /status and returns its output once complete (the
// member list has the count of lines it announces). Each call types
// "/status #k" (the terminal echoes a command with its arguments, which
// /status ignores) so that its output is told apart from earlier ones.
func statusCmd(t *testing.T, p *pane) string {
	t.Helper()
	statusCalls++
	echo := fmt.Sprintf("> /status #%d", statusCalls)
	p.typeLine(echo[2:])
	s := p.waitScreen(screenWait, "/status output", func(s string) bool {
		if !strings.Contains(s, echo) {
			return false
		}
		out := since(s, echo)
		i := strings.Index(out, "Members (")
		if i < 0 {
			return false
		}
		n, err := strconv.Atoi(out[i+len("Members (") : i+strings.Index(out[i:], ")")])
		return err == nil && strings.Count(out[i:], "\n  ") >= n
	})
	return since(s, echo)
}

var statusCalls int

func mustContain(t *testing.T, what, text string, parts ...string) {
	t.Helper()
	for _, x := range parts {
		if !strings.Contains(text, x) {
			t.Fatalf("%s lacks %q:\n%s", what, x, text)
		}
	}
}

// memberRow is a member's row of /status (empty if not listed).
func memberRow(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(l, "  "+name+" ") {
			return l
		}
	}
	return ""
}

// Peer-to-peer mode, demos 1-6 of the guide in one cluster of three
// peers, each in its own terminal.
func TestPeerTerminals(t *testing.T) {
	tm := newTmux(t)
	ports, dirs := map[int]int{}, map[int]string{}
	args := func(i int) []string {
		a := []string{"peer", "--id", strconv.Itoa(i), "--port", strconv.Itoa(ports[i]), "--data-dir", dirs[i]}
		if i != 1 {
			a = append(a, "--seed", fmt.Sprintf("1:127.0.0.1:%d", ports[1]))
		}
		return a
	}
	peers := map[int]*pane{}
	for i := 1; i <= 3; i++ {
		ports[i], dirs[i] = testkit.FreePort(t), t.TempDir()
	}
	t.Cleanup(func() { showPeerLogs(t, dirs) })

	// Demo 1: peer 1 alone leads; peers 2 and 3 join through it; each
	// types a line and every terminal shows the same three lines.
	peers[1] = tm.start("peer1", args(1)...)
	peers[1].waitText(screenWait, "* Became LEADER for term", "Connected to 127.0.0.1:"+strconv.Itoa(ports[1])+" as peer_1")
	for _, i := range []int{2, 3} {
		peers[i] = tm.start(fmt.Sprintf("peer%d", i), args(i)...)
		peers[i].waitText(screenWait,
			fmt.Sprintf("* Attempting to join via peer_1 at 127.0.0.1:%d", ports[1]),
			"as follower of peer_1")
		peers[1].waitText(screenWait, fmt.Sprintf("* Sent JOIN_ACK to peer_%d", i))
	}
	var conv []chatLine
	say := func(i int, text string, on ...int) {
		t.Helper()
		conv = append(conv, chatLine{uint64(len(conv) + 1), fmt.Sprintf("peer_%d", i), text})
		peers[i].typeLine(text)
		for _, j := range on {
			waitConversation(t, peers[j], conv)
		}
	}
	for i := 1; i <= 3; i++ {
		say(i, fmt.Sprintf("Hello from peer %d!", i), 1, 2, 3)
	}

	// Demo 2: /status.
	st := statusCmd(t, peers[2])
	mustContain(t, "peer 2's /status", st, "Role: FOLLOWER", "Leader: peer_1", "Term: ", "Last seq: 3", "Members (3):")
	for i := 1; i <= 3; i++ {
		if row := memberRow(st, fmt.Sprintf("peer_%d", i)); !strings.Contains(row, "voter") {
			t.Fatalf("peer 2's /status lists peer_%d as %q:\n%s", i, row, st)
		}
	}
	mustContain(t, "peer 1's /status", statusCmd(t, peers[1]), "Role: LEADER", "Leader: peer_1")

	// Demos 3 and 6: Ctrl+C stops peer 3 without leaving; the others
	// chat on; restarted with the same data directory it is a member
	// again (no join) and shows what it missed, in order.
	peers[3].keys("C-c")
	if st := peers[3].waitExit(screenWait); st != 0 {
		t.Fatalf("peer 3 exited with status %d after Ctrl+C", st)
	}
	// The status bar counts members up as the leader sees them, on a
	// follower too; /status shows the state.
	peers[2].waitText(screenWait, "| FOLLOWER | term 1 | leader peer_1 | 2/3 members up |")
	testkit.Eventually(t, screenWait, func() bool {
		return strings.Contains(memberRow(statusCmd(t, peers[2]), "peer_3"), "unreachable")
	}, "peer 2's /status never showed peer_3 unreachable")
	say(1, "While peer 3 is away (1)", 1, 2)
	say(2, "While peer 3 is away (2)", 1, 2)
	peers[3].restart(args(3)...)
	waitConversation(t, peers[3], conv)
	st = statusCmd(t, peers[3])
	mustContain(t, "restarted peer 3's /status", st, "Role: FOLLOWER", "Leader: peer_1", "Members (3):", "(this node)")
	if s := peers[3].screen(); strings.Contains(s, "Attempting to join") {
		t.Fatalf("restarted peer 3 joined again instead of resuming its membership:\n%s", s)
	}

	// Demo 4: the leader's process dies (kill -9). The survivors show the
	// election and a new leader, and the chat goes on.
	peers[1].kill9()
	peers[3].waitText(screenWait, "* Became LEADER for term")
	peers[2].waitText(screenWait, "* New coordinator: peer_3")
	if !strings.Contains(peers[2].screen()+peers[3].screen(), "* Leader timeout!") {
		t.Fatalf("no survivor showed the leader timeout:\n%s\n%s", peers[2].screen(), peers[3].screen())
	}
	say(2, "After the failover", 2, 3)

	// The old leader comes back as a follower and catches up.
	peers[1].restart(args(1)...)
	waitConversation(t, peers[1], conv)
	peers[1].waitText(screenWait, "* New coordinator: peer_3")

	// Demo 5: /quit on the leader: it hands over, leaves, exits 0; the
	// others no longer list it and chat on.
	peers[3].typeLine("/quit")
	if st := peers[3].waitExit(screenWait); st != 0 {
		t.Fatalf("peer 3 exited with status %d after /quit", st)
	}
	if s := peers[3].scrollback(); !strings.Contains(s, "Left the cluster; peer_3 stops.") {
		t.Fatalf("peer 3 did not say it left:\n%s", s)
	}
	for _, i := range []int{1, 2} {
		var last string
		testkit.Eventually(t, screenWait, func() bool {
			last = statusCmd(t, peers[i])
			return strings.Contains(last, "Members (2):") && memberRow(last, "peer_3") == ""
		}, "peer %d still lists peer_3 after it left: %s", i, lazyText{&last})
	}
	say(1, "Goodbye peer 3", 1, 2)
}

// showPeerLogs shows the end of each peer's full log (peer.log in its
// data directory) when the test failed or ORDO_TEST_LOG is set.
func showPeerLogs(t *testing.T, dirs map[int]string) {
	if !t.Failed() && os.Getenv(testkit.LogEnv) == "" {
		return
	}
	for i := 1; i <= len(dirs); i++ {
		b, err := os.ReadFile(filepath.Join(dirs[i], "peer.log"))
		if err != nil {
			t.Logf("peer %d: %v", i, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		t.Logf("peer %d, the end of peer.log:\n%s", i, strings.Join(lines[max(0, len(lines)-80):], "\n"))
	}
}

// Client-server mode: three `ordo node`s, `ordo chat` terminals on two of
// them (CS-1, CS-2), the input line under a flood, and a chat whose node
// dies (CS-8).
func TestChatTerminals(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	tm := newTmux(t)
	a := tm.start("chat101", "chat", "--host", "127.0.0.1", "--port", strconv.Itoa(port(c, 1)),
		"--addr", c.Addr(2), "--addr", c.Addr(3), "--client-id", "101")
	b := tm.start("chat102", "chat", "--port", strconv.Itoa(port(c, 2)), "--addr", c.Addr(3), "--client-id", "102")
	a.waitText(screenWait, "Connected to "+c.Addr(1)+" as client_101")
	b.waitText(screenWait, "Connected to "+c.Addr(2)+" as client_102")

	// CS-1: each chat sees both lines, in the same order.
	var conv []chatLine
	say := func(p *pane, who, text string) {
		t.Helper()
		conv = append(conv, chatLine{uint64(len(conv) + 1), who, text})
		p.typeLine(text)
		for _, q := range []*pane{a, b} {
			waitConversation(t, q, conv)
		}
	}
	say(a, "client_101", "Hello from client 101")
	say(b, "client_102", "Hello from client 102")

	// CS-2: /status of the node the chat uses.
	mustContain(t, "chat 101's /status", statusCmd(t, a),
		"Node: node_1 at "+c.Addr(1), "Role: FOLLOWER", "Leader: node_3", "Last seq: 2", "Members (3):")

	// The input line stays whole while 200 messages arrive.
	const draft = "a half-typed line that must survive"
	a.typeText(draft)
	a.waitScreen(screenWait, "the draft in the input line", func(s string) bool { return strings.HasSuffix(lastLine(s), draft) })
	r := testkit.Dial(t, c.Addr(3))
	for k := 1; k <= 200; k++ {
		r.Send("PUBLISH", "chat", fmt.Sprintf("flood %d", k))
	}
	for k := 1; k <= 200; k++ {
		if v := r.Read(); v.Err() != nil {
			t.Fatalf("PUBLISH flood %d: %v", k, v.Err())
		}
	}
	a.waitScreen(screenWait, "the flood's last line above the draft", func(s string) bool {
		if !strings.HasSuffix(lastLine(s), draft) {
			t.Fatalf("the input line was disturbed by incoming messages: %q\n%s", lastLine(s), s)
		}
		ls := chatLines(s)
		return len(ls) > 0 && ls[len(ls)-1].seq == 202
	})
	a.keys("C-u") // clear the draft
	a.waitScreen(screenWait, "an empty input line", func(s string) bool { return !strings.Contains(lastLine(s), draft) })

	// CS-8: chat 101's node dies. It says so, moves to the next address
	// and resumes after the last message it showed; what was published
	// meanwhile shows once, in order.
	c.Proc(1).Kill()
	b.typeLine("While 101 moves")
	a.waitText(screenWait, "Lost connection to "+c.Addr(1), "Connected to "+c.Addr(2)+"; resuming after seq=202")
	a.typeLine("Back through node 2")
	s := a.waitText(screenWait, "[seq=203] client_102: While 101 moves", "[seq=204] client_101: Back through node 2")
	ls := chatLines(s)
	for k := 1; k < len(ls); k++ {
		if ls[k].seq != ls[k-1].seq+1 {
			t.Fatalf("chat 101 shows seq %d after seq %d (a gap or a duplicate across the reconnect):\n%s", ls[k].seq, ls[k-1].seq, s)
		}
	}
	if ls[len(ls)-1].seq != 204 || ls[0].seq > 180 {
		t.Fatalf("chat 101 shows seqs %d..%d, want the flood's end up to 204:\n%s", ls[0].seq, ls[len(ls)-1].seq, s)
	}
	b.waitText(screenWait, "[seq=204] client_101: Back through node 2")
}

func port(c *testkit.Cluster, i int) int {
	_, p, _ := strings.Cut(c.Addr(i), "127.0.0.1:")
	n, _ := strconv.Atoi(p)
	return n
}

// --headless, for scripts: lines in on stdin, the conversation and
// command output on stdout, /quit ends it with status 0.
func TestHeadlessTerminals(t *testing.T) {
	peerPort, dir := testkit.FreePort(t), t.TempDir()
	peer := headless(t, "peer", "--id", "1", "--port", strconv.Itoa(peerPort), "--data-dir", dir, "--headless")
	peer.waitLine(t, "* Became LEADER for term")
	chat := headless(t, "chat", "--port", strconv.Itoa(peerPort), "--client-id", "7", "--headless")
	chat.waitLine(t, fmt.Sprintf("Connected to 127.0.0.1:%d as client_7", peerPort))
	peer.say(t, "Hello from peer 1!")
	chat.waitLine(t, "[seq=1] peer_1: Hello from peer 1!")
	chat.say(t, "Hello from client 7")
	peer.waitLine(t, "[seq=1] peer_1: Hello from peer 1!\n[seq=2] client_7: Hello from client 7\n")
	chat.say(t, "/status")
	chat.waitLine(t, "Role: LEADER")
	chat.waitLine(t, "Leader: node_1")
	chat.say(t, "/quit")
	peer.say(t, "/quit")
	peer.waitLine(t, "peer_1 is the cluster's only member")
	for _, p := range []*headlessProc{peer, chat} {
		if err := p.wait(); err != nil {
			t.Fatalf("%s: %v\n%s", p.name, err, p.output())
		}
	}
	if !strings.Contains(peer.stderr.String(), "node.1 - INFO - Became LEADER for term") {
		t.Fatalf("headless peer's full log (stderr) lacks the election:\n%s", peer.stderr.String())
	}
}
