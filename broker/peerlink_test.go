package broker

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// startPair runs a two-member cluster in this process (both on loopback,
// with a cluster secret) and returns both servers once a leader is known.
func startPair(t *testing.T, mod func(*Config)) (*Server, *Server) {
	t.Helper()
	srvs := startMembers(t, 2, mod)
	return srvs[0], srvs[1]
}

// startMembers runs an n-member cluster in this process, as startPair.
func startMembers(t *testing.T, n int, mod func(*Config)) []*Server {
	t.Helper()
	lns := make([]net.Listener, n)
	var peers []Peer
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		peers = append(peers, Peer{ID: uint64(i + 1), Addr: ln.Addr().String()})
	}
	srvs := make([]*Server, n)
	for i := range srvs {
		cfg := Config{ID: uint64(i + 1), DataDir: t.TempDir(), Peers: peers, ClusterSecret: []byte("pair-secret")}
		if mod != nil {
			mod(&cfg)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srvs[i] = s
		go s.Serve(lns[i])
		t.Cleanup(func() { s.Close() })
	}
	for _, s := range srvs {
		waitLeader(t, s)
	}
	return srvs
}

// Peer links are not clients: with maxclients 1 a client still gets in,
// CLIENT LIST shows only it, CLIENT KILL cannot reach the link, and the
// link's traffic does not count as commands.
func TestPeerLinksAreNotClients(t *testing.T) {
	a, b := startPair(t, func(c *Config) { c.Limits.MaxClients = 1 })
	c := dial(t, a.Addr().String())
	list := c.do("CLIENT", "LIST")
	if n := strings.Count(list, "id="); n != 1 || strings.Contains(list, "node_") {
		t.Fatalf("CLIENT LIST shows %d entries, want only this client: %q", n, list)
	}
	if got := c.do("CLIENT", "KILL", "SKIPME", "yes"); got != ":0\r\n" {
		t.Fatalf("CLIENT KILL SKIPME yes killed something: %q", got)
	}
	// A publish needs peer traffic both ways to commit (a majority of two
	// is both); only the client's own commands may count.
	before := info(t, c, "total_commands_processed")
	for i := 0; i < 10; i++ {
		if got := c.do("PUBLISH", "ch", "x"); got != ":0\r\n" {
			t.Fatalf("PUBLISH: %q", got)
		}
	}
	cb := dial(t, b.Addr().String())
	testkit.Eventually(t, 10*time.Second, func() bool { return cb.do("XLEN", "ch") == ":10\r\n" },
		"the other member did not apply the 10 publishes")
	if after := info(t, c, "total_commands_processed"); after-before != 11 {
		t.Fatalf("commands went from %d to %d for 10 PUBLISH and 1 INFO", before, after)
	}
}

func info(t *testing.T, c *respConn, field string) int {
	t.Helper()
	for _, line := range strings.Split(c.do("INFO", "stats"), "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO %s: %q", field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}

// A client posing as a peer, with the old hash-token handshake or with
// internode commands, gets nothing but a refusal.
func TestClientCannotPoseAsPeer(t *testing.T) {
	a, _ := startPair(t, nil)
	c := dial(t, a.Addr().String())
	if got := c.do("ORDO.MSG", "anything"); !strings.HasPrefix(got, "-ERR unknown command 'ORDO.MSG'") {
		t.Fatalf("ORDO.MSG from a client: %q", got)
	}
	// The old handshake: ORDO.PEER <hash of the member ids> <id>.
	c2 := dial(t, a.Addr().String())
	c2.send("ORDO.PEER", "0123456789abcdef", "2")
	if got := c2.read(); !strings.HasPrefix(got, "-ERR peer handshake refused") {
		t.Fatalf("old handshake: %q", got)
	}
	c2.expectClosed()
}
