package broker

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// Redis Cluster's topology commands, compared with redis-server in cluster
// mode. Ids, ports, epochs, offsets and timestamps differ between any two
// clusters and are normalized away; everything else (types, field order,
// flags, line formats) must match byte for byte.

func TestKeySlotKnownValue(t *testing.T) {
	// The check value of CRC16/XMODEM, and Redis Cluster's documented example.
	if got := crc16([]byte("123456789")); got != 0x31c3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	if got := keySlot([]byte("{user1000}.following")); got != keySlot([]byte("user1000")) {
		t.Fatalf("hash tag ignored: %d", got)
	}
}

// CLUSTER KEYSLOT (hash tags, empty tags, binary keys) and the commands
// cluster clients send to any node answer exactly as Redis does.
func TestClusterKeyslotLikeRedis(t *testing.T) {
	keys := []string{"", "a", "foo", "123456789", "{user1000}.following", "{user1000}.followers",
		"foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}", "{", "}", "a{b", "a}b{c}", "{{}}", "\xff\x00\x80",
		strings.Repeat("x", 1000)}
	var steps []step
	for _, k := range keys {
		steps = append(steps, sa(0, "CLUSTER", "KEYSLOT", k))
	}
	steps = append(steps,
		s(0, "CLUSTER KEYSLOT"),
		s(0, "CLUSTER KEYSLOT a b"),
		s(0, "CLUSTER SLOTS x"),
		s(0, "CLUSTER MYID x"),
		s(0, "READONLY"),
		s(0, "READWRITE"),
		s(0, "ASKING"),
		s(0, "READONLY x"),
		s(0, "ASKING x"),
	)
	want := runScript(t, redisServer(t, "--cluster-enabled", "yes"), steps)
	got := runScript(t, startServer(t, nil).Addr().String(), steps)
	compareTranscripts(t, steps, want, got)
}

func compareTranscripts(t *testing.T, steps []step, want, got []string) {
	t.Helper()
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("reply %d (%v):\nredis: %q\nordo:  %q", i, steps[min(i, len(steps)-1)].args, w, g)
		}
	}
}

var topologyNormalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	// Ports: CLUSTER SLOTS (after the host), SHARDS (the port field),
	// NODES (ip:port@cport; a one-node Redis does not know its ip).
	{regexp.MustCompile(`:\d+\r\n\$40\r\n`), ":<port>\r\n$$40\r\n"},
	{regexp.MustCompile(`(\$4\r\nport\r\n):\d+`), "$1<port>"},
	{regexp.MustCompile(`(^|\n|txt:)(<\w+>) [\d.]*:\d+@\d+ `), "$1$2 <addr> "},
	{regexp.MustCompile(`(replication-offset\r\n):\d+`), "$1<offset>"},
	// NODES: ping-sent, pong-received, config epoch.
	{regexp.MustCompile(` \d+ \d+ \d+ (connected|disconnected)`), " <ping> <pong> <epoch> $1"},
	{regexp.MustCompile(`(cluster_(current|my)_epoch):\d+`), "$1:<epoch>"},
	// Redis counts its cluster bus messages by type; ordo has no bus.
	{regexp.MustCompile(`cluster_stats_messages_\w+:\d+\r\n`), ""},
	// The ip of a one-node cluster: Redis does not know it, ordo does.
	{regexp.MustCompile(`\$(0\r\n|9\r\n127\.0\.0\.1)\r\n`), "<ip>\r\n"},
	// Lengths of the whole text replies (NODES, INFO).
	{regexp.MustCompile(`^([$=])\d+\r\n`), "$1<len>\r\n"},
}

// normalizeTopology replaces the master's id with <master>, the other node
// ids with <id>, and the fields that differ between any two clusters; the
// lines of CLUSTER NODES are sorted (Redis lists nodes in hash order).
func normalizeTopology(s, master string) string {
	s = strings.ReplaceAll(s, master, "<master>")
	s = regexp.MustCompile(`[0-9a-f]{40}`).ReplaceAllString(s, "<id>")
	for _, n := range topologyNormalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	if head, body, ok := strings.Cut(s, "\r\n"); ok && strings.Contains(body, "connected") {
		body, _ = strings.CutPrefix(body, "txt:")
		body, tail, _ := strings.Cut(body, "\n\r\n")
		lines := strings.Split(body, "\n")
		slices.Sort(lines)
		s = head + "\r\n" + strings.Join(lines, "\n") + "\n\r\n" + tail
	}
	return s
}

var topologyCommands = []string{"CLUSTER SLOTS", "CLUSTER SHARDS", "CLUSTER NODES", "CLUSTER INFO", "CLUSTER MYID"}

// topology asks one node every topology command, in RESP2 and RESP3.
func topology(t *testing.T, addr, master string) []string {
	t.Helper()
	var out []string
	for _, proto := range []string{"2", "3"} {
		c := dial(t, addr)
		c.do("HELLO", proto)
		for _, cmd := range topologyCommands {
			out = append(out, proto+" "+cmd+": "+normalizeTopology(c.do(strings.Fields(cmd)...), master))
		}
		c.Close()
	}
	return out
}

func redisDo(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	return c.do(args...)
}

// bulkText is the text of a bulk string reply.
func bulkText(raw string) string {
	_, body, _ := strings.Cut(raw, "\r\n")
	return strings.TrimSuffix(body, "\r\n")
}

// waitSameTopology waits until ordo's replies equal Redis's (both clusters
// settle: Redis gossips, ordo's leader hears every member).
func waitSameTopology(t *testing.T, what, redisAddr, redisMaster, ordoAddr, ordoMaster string) {
	t.Helper()
	testkit.EventuallyNoError(t, 20*time.Second, func() error {
		want := topology(t, redisAddr, redisMaster)
		got := topology(t, ordoAddr, ordoMaster)
		var diff []string
		for i := range want {
			if want[i] != got[i] {
				diff = append(diff, fmt.Sprintf("\nredis: %q\nordo:  %q", want[i], got[i]))
			}
		}
		if diff != nil {
			return errors.New(strings.Join(diff, ""))
		}
		return nil
	}, "%s: replies differ", what)
}

// A one-node ordo answers as a one-node Redis cluster holding every slot.
func TestClusterTopologyOneNodeLikeRedis(t *testing.T) {
	r := redisServer(t, "--cluster-enabled", "yes")
	if got := redisDo(t, r, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); got != "+OK\r\n" {
		t.Fatalf("ADDSLOTSRANGE: %q", got)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(redisDo(t, r, "CLUSTER", "INFO"), "cluster_state:ok")
	}, "redis-server did not reach cluster_state:ok")
	o := startServer(t, nil).Addr().String()
	waitSameTopology(t, "one node", r, bulkText(redisDo(t, r, "CLUSTER", "MYID")), o, bulkText(redisDo(t, o, "CLUSTER", "MYID")))
}

// Three ordo members answer as a Redis cluster of one master (the leader)
// and two replicas, seen from the master and from a replica.
func TestClusterTopologyThreeNodesLikeRedis(t *testing.T) {
	var rs []string
	for range 3 {
		rs = append(rs, redisServer(t, "--cluster-enabled", "yes"))
	}
	redisDo(t, rs[0], "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	for _, r := range rs[1:] {
		host, port, _ := net.SplitHostPort(rs[0])
		redisDo(t, r, "CLUSTER", "MEET", host, port)
	}
	redisMaster := bulkText(redisDo(t, rs[0], "CLUSTER", "MYID"))
	for _, r := range rs[1:] {
		testkit.Eventually(t, 20*time.Second, func() bool {
			return redisDo(t, r, "CLUSTER", "REPLICATE", redisMaster) == "+OK\r\n"
		}, "redis-server %s cannot replicate the master", r)
	}
	for _, r := range rs {
		testkit.Eventually(t, 20*time.Second, func() bool {
			info, nodes := redisDo(t, r, "CLUSTER", "INFO"), redisDo(t, r, "CLUSTER", "NODES")
			return strings.Contains(info, "cluster_state:ok") && strings.Count(nodes, "slave "+redisMaster) == 2
		}, "redis cluster did not settle at %s", r)
	}

	srvs := startMembers(t, 3, nil)
	var leader, follower *Server
	testkit.Eventually(t, 10*time.Second, func() bool {
		leader, follower = nil, nil
		for _, s := range srvs {
			st, _ := s.replica.Status()
			if uint64(st.Leader) == s.cfg.ID {
				leader = s
			} else {
				follower = s
			}
		}
		return leader != nil
	}, "no leader")
	ordoMaster := clusterNodeName(leader.replica.ClusterID(), leader.cfg.ID)
	waitSameTopology(t, "from the master", rs[0], redisMaster, leader.Addr().String(), ordoMaster)
	waitSameTopology(t, "from a replica", rs[1], redisMaster, follower.Addr().String(), ordoMaster)
}

// With no leader known (the other members never started) a node names
// itself the master, so clients go to a node that answers, and says
// cluster_state:fail.
func TestClusterTopologyWithoutLeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := []Peer{{ID: 1, Addr: ln.Addr().String()}}
	for id := uint64(2); id <= 3; id++ {
		peers = append(peers, Peer{ID: id, Addr: "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))})
	}
	srv, err := New(Config{ID: 1, DataDir: t.TempDir(), Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, ln.Addr().String())
	me := bulkText(c.do("CLUSTER", "MYID"))
	if info := c.do("CLUSTER", "INFO"); !strings.Contains(info, "cluster_state:fail\r\n") || !strings.Contains(info, "cluster_known_nodes:3\r\n") {
		t.Fatalf("CLUSTER INFO without a leader: %q", info)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	wantSlots := "*1\r\n*5\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:" + port + "\r\n$40\r\n" + me + "\r\n*0\r\n"
	if got := c.do("CLUSTER", "SLOTS"); !strings.HasPrefix(got, wantSlots) {
		t.Fatalf("CLUSTER SLOTS without a leader: %q, want it to start with %q", got, wantSlots)
	}
	if nodes := c.do("CLUSTER", "NODES"); !strings.Contains(nodes, me+" 127.0.0.1:"+port+"@"+port+" myself,master - ") ||
		strings.Count(nodes, " slave "+me+" ") != 2 {
		t.Fatalf("CLUSTER NODES without a leader: %q", nodes)
	}
}

// Node ids are stable per (cluster, member) and differ otherwise.
func TestClusterNodeNames(t *testing.T) {
	a, b := clusterNodeName("c1", 1), clusterNodeName("c1", 1)
	if a != b || len(a) != 40 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("node name %q, %q", a, b)
	}
	if a == clusterNodeName("c1", 2) || a == clusterNodeName("c2", 1) {
		t.Fatal("node names collide across members or clusters")
	}
}

// CLUSTER HELP lists every subcommand.
func TestClusterHelpListsSubcommands(t *testing.T) {
	help := strings.Join(clusterHelp, "\n")
	for name := range commandTable["cluster"].subs {
		if !regexp.MustCompile(`(?m)^` + strings.ToUpper(name) + `\b`).MatchString(help) {
			t.Errorf("CLUSTER HELP does not list %s", strings.ToUpper(name))
		}
	}
}
