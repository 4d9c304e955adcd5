package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/acl"
	"github.com/ordo-broker/ordo/clients/testkit"
)

func expect(t *testing.T, c *respConn, want string, args ...string) {
	t.Helper()
	if got := c.do(args...); got != want {
		t.Errorf("%v: %q, want %q", args, got, want)
	}
}

// Redis 7.2's texts, which the differential test (against 7.0) can only
// compare normalized.
func TestACLTexts(t *testing.T) {
	srv := startServer(t, nil)
	admin := dial(t, srv.Addr().String())
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "pub", "on", ">pw", "+publish", "+multi", "+exec", "&orders:*")
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "default", "resetpass", ">adminpw")
	c := dial(t, srv.Addr().String())
	expect(t, c, "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n", "HELLO", "3")
	expect(t, c, "+OK\r\n", "AUTH", "pub", "pw")
	expect(t, c, "-NOPERM User pub has no permissions to run the 'subscribe' command\r\n", "SUBSCRIBE", "orders:1")
	expect(t, c, "-NOPERM No permissions to access a channel\r\n", "PUBLISH", "other", "x")
	expect(t, admin, "$57\r\nUser pub has no permissions to access the 'other' channel\r\n", "ACL", "DRYRUN", "pub", "publish", "other", "x")
	expect(t, admin, "$53\r\nUser pub has no permissions to run the 'ping' command\r\n", "ACL", "DRYRUN", "pub", "ping")
	// Rules that change between MULTI and EXEC apply at EXEC.
	expect(t, c, "+OK\r\n", "MULTI")
	expect(t, c, "+QUEUED\r\n", "PUBLISH", "orders:1", "x")
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "pub", "-publish")
	expect(t, c, "*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: User pub has no permissions to run the 'publish' command\r\n", "EXEC")
	if got := admin.do("CLIENT", "LIST"); !strings.Contains(got, "user=pub") || !strings.Contains(got, "user=default") {
		t.Errorf("CLIENT LIST: %q", got)
	}
}

// Every command flagged admin (membership changes, CONFIG SET, CLIENT
// KILL, MONITOR, SHUTDOWN, ACL SETUSER...) is in @admin, so a user
// without @admin cannot run it; COMMAND INFO shows the categories.
func TestAdminCommandsNeedAdmin(t *testing.T) {
	for _, top := range commandTable {
		for _, cmd := range append([]*command{top}, values(top.subs)...) {
			admin := false
			for _, f := range cmd.cmdFlags {
				admin = admin || f == "admin"
			}
			if admin && cmd.acl.Categories&acl.Admin == 0 {
				t.Errorf("%s is flagged admin but not in @admin", cmd.fullName)
			}
		}
	}
	for _, name := range []string{"config|set", "client|kill", "cluster|leave", "cluster|remove", "cluster|stepdown", "acl|setuser"} {
		top, sub, _ := strings.Cut(name, "|")
		if cmd := commandTable[top].subs[sub]; cmd.acl.Categories&acl.Admin == 0 {
			t.Errorf("%s is not in @admin", name)
		}
	}
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	if got := c.do("COMMAND", "INFO", "publish"); !strings.Contains(got, "~2\r\n+@pubsub\r\n+@fast\r\n") && !strings.Contains(got, "*2\r\n+@pubsub\r\n+@fast\r\n") {
		t.Errorf("COMMAND INFO publish: %q", got)
	}
	expect(t, c, "+OK\r\n", "ACL", "SETUSER", "ops", "on", "nopass", "+@all", "-@admin")
	expect(t, c, "+OK\r\n", "AUTH", "ops", "x")
	expect(t, c, "-NOPERM User ops has no permissions to run the 'cluster|stepdown' command\r\n", "CLUSTER", "STEPDOWN")
	expect(t, c, "-NOPERM User ops has no permissions to run the 'config|set' command\r\n", "CONFIG", "SET", "requirepass", "x")
}

func values(m map[string]*command) []*command {
	var out []*command
	for _, c := range m {
		out = append(out, c)
	}
	return out
}

func TestProtectedModeDecision(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 5000} }
	for _, c := range []struct {
		protected, nopass bool
		addr              net.Addr
		deny              bool
	}{
		{true, true, tcp("192.0.2.7"), true},
		{true, true, tcp("2001:db8::1"), true},
		{true, true, tcp("127.0.0.1"), false},
		{true, true, tcp("127.3.4.5"), false},
		{true, true, tcp("::1"), false},
		{true, false, tcp("192.0.2.7"), false}, // a password is set
		{false, true, tcp("192.0.2.7"), false}, // protected mode off
		{true, true, &net.UnixAddr{Name: "/tmp/s", Net: "unix"}, false},
	} {
		if got := protectedModeDenies(c.protected, c.nopass, c.addr); got != c.deny {
			t.Errorf("protected %v nopass %v %v: deny %v", c.protected, c.nopass, c.addr, got)
		}
	}
	if !strings.HasPrefix(deniedMessage, "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.") {
		t.Error(deniedMessage)
	}
}

// Protected mode refuses a client whose address is not loopback (here a
// pipe, which has none) until the default user gets a password.
func TestProtectedModeRefuses(t *testing.T) {
	srv := startServer(t, nil)
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		buf := make([]byte, len(deniedMessage))
		n := 0
		for n < len(buf) {
			m, err := b.Read(buf[n:])
			if err != nil {
				break
			}
			n += m
		}
		if string(buf[:n]) != deniedMessage {
			t.Errorf("got %q", buf[:n])
		}
	}()
	if !srv.refuseUnprotected(a) {
		t.Fatal("a non-loopback client was served")
	}
	srv.users.SetDefaultPassword("pw")
	x, y := net.Pipe()
	defer x.Close()
	defer y.Close()
	if srv.refuseUnprotected(x) {
		t.Fatal("refused although the default user has a password")
	}
}

// Users from the configuration: publish-only and subscribe-only services.
func TestUsersFromConfig(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		c.RequirePass = "adminpw"
		c.Users = []string{"svc-pub on >p1 +publish &orders:*", "user svc-sub on >p2 +subscribe +ping &orders:*"}
	})
	addr := srv.Addr().String()
	pub, sub := dial(t, addr), dial(t, addr)
	expect(t, pub, "-NOAUTH Authentication required.\r\n", "PUBLISH", "orders:1", "x")
	expect(t, pub, "+OK\r\n", "AUTH", "svc-pub", "p1")
	expect(t, sub, "+OK\r\n", "AUTH", "svc-sub", "p2")
	expect(t, sub, "*3\r\n$9\r\nsubscribe\r\n$8\r\norders:1\r\n:1\r\n", "SUBSCRIBE", "orders:1")
	expect(t, pub, ":1\r\n", "PUBLISH", "orders:1", "hello")
	if got := sub.read(); got != "*3\r\n$7\r\nmessage\r\n$8\r\norders:1\r\n$5\r\nhello\r\n" {
		t.Errorf("delivered %q", got)
	}
	expect(t, pub, "-NOPERM User svc-pub has no permissions to run the 'subscribe' command\r\n", "SUBSCRIBE", "orders:1")
	expect(t, sub, "-NOPERM User svc-sub has no permissions to run the 'publish' command\r\n", "PUBLISH", "orders:1", "x")
	admin := dial(t, addr)
	expect(t, admin, "+OK\r\n", "AUTH", "adminpw")
	if got := admin.do("ACL", "LIST"); strings.Contains(got, "p1") || !strings.Contains(got, "#"+acl.HashPassword([]byte("p1"))) {
		t.Errorf("ACL LIST: %q", got)
	}
}

func TestACLLoadSaveAndDeluser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.acl")
	if err := os.WriteFile(path, []byte("user default on nopass ~* &* +@all\nuser alice on >a +publish &a:*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, func(c *Config) { c.ACLFile = path })
	addr := srv.Addr().String()
	admin, alice := dial(t, addr), dial(t, addr)
	expect(t, alice, "+OK\r\n", "AUTH", "alice", "a")
	expect(t, alice, ":0\r\n", "PUBLISH", "a:1", "x")
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "bob", "on", ">b", "+subscribe", "&b")
	expect(t, admin, "+OK\r\n", "ACL", "SAVE")
	saved, _ := os.ReadFile(path)
	if !strings.Contains(string(saved), "user bob on #"+acl.HashPassword([]byte("b"))+" resetchannels &b -@all +subscribe\n") {
		t.Errorf("saved %q", saved)
	}
	// Alice loses a:*: she stays connected (she subscribes to nothing)
	// with the new rules.
	if err := os.WriteFile(path, []byte("user alice on >a +publish &z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, admin, "+OK\r\n", "ACL", "LOAD")
	expect(t, alice, "-NOPERM No permissions to access a channel\r\n", "PUBLISH", "a:1", "x")
	expect(t, admin, "*2\r\n$5\r\nalice\r\n$7\r\ndefault\r\n", "ACL", "USERS")
	if err := os.WriteFile(path, []byte("user alice on +nosuch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := admin.do("ACL", "LOAD"); !strings.HasPrefix(got, "-ERR "+path+": Error in applying operation '+nosuch'") {
		t.Errorf("ACL LOAD of a bad file: %q", got)
	}
	expect(t, admin, ":1\r\n", "ACL", "DELUSER", "alice")
	alice.send("PING")
	alice.expectClosed()
}

// A subscriber whose user loses the channel is disconnected; the others
// stay.
func TestRevokedChannelDisconnects(t *testing.T) {
	srv := startServer(t, nil)
	addr := srv.Addr().String()
	admin, s1 := dial(t, addr), dial(t, addr)
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "s", "on", "nopass", "+@pubsub", "&a", "&b")
	expect(t, s1, "+OK\r\n", "AUTH", "s", "x")
	expect(t, s1, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", "SUBSCRIBE", "a")
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "s", "&c")
	expect(t, admin, "*2\r\n$1\r\na\r\n:1\r\n", "PUBSUB", "NUMSUB", "a")
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "s", "resetchannels", "&b")
	expect(t, admin, "*2\r\n$1\r\na\r\n:0\r\n", "PUBSUB", "NUMSUB", "a")
	s1.expectClosed()
}

// Reload changes users, passwords and limits of a running node; a reload
// that leaves the users' sources alone keeps users made by ACL SETUSER.
func TestReload(t *testing.T) {
	cfg := Config{ID: 1, DataDir: t.TempDir(), Users: []string{"alice on >a +publish &a"}}
	srv := startServerCfg(t, cfg)
	addr := srv.Addr().String()
	alice, admin := dial(t, addr), dial(t, addr)
	expect(t, alice, "+OK\r\n", "AUTH", "alice", "a")
	expect(t, alice, "-NOPERM No permissions to access a channel\r\n", "PUBLISH", "b", "x")
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "tmp", "on")

	cfg.Limits.MaxMessageBytes = 4
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	expect(t, admin, "*3\r\n$5\r\nalice\r\n$7\r\ndefault\r\n$3\r\ntmp\r\n", "ACL", "USERS")
	expect(t, alice, "-ERR message too large: 5 bytes exceeds max-message-size 4\r\n", "PUBLISH", "a", "12345")

	cfg.Users = []string{"alice on >a +publish &a &b"}
	cfg.RequirePass = "pw"
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, ":0\r\n", "PUBLISH", "b", "x")
	expect(t, admin, "*2\r\n$5\r\nalice\r\n$7\r\ndefault\r\n", "ACL", "USERS")
	expect(t, dial(t, addr), "-NOAUTH Authentication required.\r\n", "PING")

	cfg.Users = []string{"alice on +nosuch"}
	if err := srv.Reload(cfg); err == nil {
		t.Fatal("a bad user definition was applied")
	}
	expect(t, alice, ":0\r\n", "PUBLISH", "b", "x")
}

// The permission check costs the default user no allocation: PUBLISH
// throughput does not pay for ACLs nobody uses.
func TestPermittedDoesNotAllocate(t *testing.T) {
	srv := startServer(t, nil)
	c := &client{srv: srv}
	c.user.Store(srv.users.Default())
	c.authed = true
	top := commandTable["publish"]
	args := [][]byte{[]byte("PUBLISH"), []byte("ch"), []byte("x")}
	if n := testing.AllocsPerRun(1000, func() {
		if !c.permitted(top, top, args) {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

// BenchmarkPermitted is the cost ACLs add to every command of the default
// user (a PUBLISH costs microseconds).
func BenchmarkPermitted(b *testing.B) {
	srv := startServer(b, nil)
	c := &client{srv: srv}
	c.user.Store(srv.users.Default())
	c.authed = true
	top := commandTable["publish"]
	args := [][]byte{[]byte("PUBLISH"), []byte("ch"), []byte("x")}
	b.ReportAllocs()
	for b.Loop() {
		c.permitted(top, top, args)
	}
}

// ACL LOG records failed AUTHs and refusals, groups repeats, and RESET
// empties it (Redis 7.2's fields).
func TestACLLog(t *testing.T) {
	srv := startServer(t, nil)
	admin := testkit.Dial(t, srv.Addr().String())
	c := testkit.Dial(t, srv.Addr().String())
	if v := admin.Do("ACL", "SETUSER", "pub", "on", ">pw", "+publish", "&a"); v.Err() != nil {
		t.Fatal(v)
	}
	c.Do("AUTH", "pub", "wrong")
	c.Do("AUTH", "pub", "pw")
	c.Do("PUBLISH", "b", "x")
	c.Do("PUBLISH", "b", "y")
	c.Do("PING")
	entries := admin.Do("ACL", "LOG").Array()
	if len(entries) != 3 {
		t.Fatalf("ACL LOG: %d entries, want 3", len(entries))
	}
	want := []map[string]string{
		{"count": "1", "reason": "command", "context": "toplevel", "object": "ping", "username": "pub"},
		{"count": "2", "reason": "channel", "context": "toplevel", "object": "b", "username": "pub"},
		{"count": "1", "reason": "auth", "context": "toplevel", "object": "AUTH", "username": "pub"},
	}
	for i, e := range entries {
		m := e.StringMap()
		for k, v := range want[i] {
			if m[k] != v {
				t.Errorf("entry %d: %s = %q, want %q (%v)", i, k, m[k], v, m)
			}
		}
		if !strings.Contains(m["client-info"], "user=") || m["entry-id"] == "" || m["timestamp-created"] == "" {
			t.Errorf("entry %d: %v", i, m)
		}
	}
	if n := len(admin.Do("ACL", "LOG", "1").Array()); n != 1 {
		t.Errorf("ACL LOG 1: %d entries", n)
	}
	if v := admin.Do("ACL", "LOG", "RESET"); v.String() != "OK" {
		t.Fatal(v)
	}
	if n := len(admin.Do("ACL", "LOG").Array()); n != 0 {
		t.Errorf("after RESET: %d entries", n)
	}
}

func TestClientKillUser(t *testing.T) {
	srv := startServer(t, nil)
	admin, alice := dial(t, srv.Addr().String()), dial(t, srv.Addr().String())
	expect(t, admin, "+OK\r\n", "ACL", "SETUSER", "alice", "on", "nopass", "+@all")
	expect(t, alice, "+OK\r\n", "AUTH", "alice", "x")
	expect(t, admin, "-ERR No such user 'bob'\r\n", "CLIENT", "KILL", "USER", "bob")
	expect(t, admin, ":1\r\n", "CLIENT", "KILL", "USER", "alice")
	alice.expectClosed()
	expect(t, admin, ":0\r\n", "CLIENT", "KILL", "USER", "alice")
}

func TestACLConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Users: []string{"a on"}, ACLFile: filepath.Join(dir, "x.acl")}, "users and aclfile are both given"},
		{Config{ACLFile: filepath.Join(dir, "missing.acl")}, "opening file"},
		{Config{Users: []string{"a on +nosuch"}}, "Error in applying operation '+nosuch': Unknown command or category name in ACL"},
		{Config{Users: []string{"a on (+ping)"}}, "Selectors are not supported"},
	} {
		c.cfg.ID, c.cfg.DataDir = 1, t.TempDir()
		s, err := New(c.cfg)
		if err == nil {
			s.Close()
			t.Errorf("%+v: no error", c.cfg)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// Peer links share the client port but are not clients: a cluster whose
// default user needs a password still elects and commits (its peers never
// AUTH).
func TestPeerLinksIgnoreAuthentication(t *testing.T) {
	a, b := startPair(t, func(c *Config) {
		c.RequirePass = "pw"
		c.Users = []string{"writer on >w +publish &ch"}
	})
	c := dial(t, a.Addr().String())
	expect(t, c, "-NOAUTH Authentication required.\r\n", "PUBLISH", "ch", "x")
	expect(t, c, "+OK\r\n", "AUTH", "writer", "w")
	if got := c.do("PUBLISH", "ch", "x"); got != ":0\r\n" {
		t.Fatalf("PUBLISH: %q", got)
	}
	cb := dial(t, b.Addr().String())
	expect(t, cb, "+OK\r\n", "AUTH", "pw")
	testkit.Eventually(t, 10*time.Second, func() bool { return cb.do("XLEN", "ch") == ":1\r\n" },
		"the other member did not apply the publish")
}
