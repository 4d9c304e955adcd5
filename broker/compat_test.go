package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Scripted checks of Redis 7.2 behaviour that Debian's redis-server (7.0)
// cannot serve as a reference for, and of ordo's extensions.

func TestRESP3PublishReplyPrecedesSelfPush(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	c.do("HELLO", "3")
	if got := c.do("SUBSCRIBE", "a"); got != ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n" {
		t.Fatalf("subscribe: %q", got)
	}
	c.send("PUBLISH", "a", "hi")
	if got := c.read(); got != ":1\r\n" {
		t.Fatalf("first reply should be PUBLISH's count (Redis 7.2), got %q", got)
	}
	if got := c.read(); got != ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n" {
		t.Fatalf("then the push, got %q", got)
	}
}

func TestClientSetinfoAndList(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "SETINFO", "lib-name", "go-redis"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "LIB-VER", "9.0"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-name", "a b"}, "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "foo", "x"}, "-ERR Unrecognized option 'foo'\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-name"}, "-ERR wrong number of arguments for 'client|setinfo' command\r\n"},
	} {
		if got := c.do(tc.args...); got != tc.want {
			t.Errorf("%v: got %q want %q", tc.args, got, tc.want)
		}
	}
	id := strings.TrimSuffix(strings.TrimPrefix(c.do("CLIENT", "ID"), ":"), "\r\n")
	list := c.do("CLIENT", "LIST")
	if !strings.Contains(list, "id="+id+" ") || !strings.Contains(list, "lib-name=go-redis lib-ver=9.0") || !strings.Contains(list, "cmd=client|list") {
		t.Fatalf("CLIENT LIST: %q", list)
	}
	info := c.do("CLIENT", "INFO")
	if !strings.HasPrefix(info, "$") || !strings.Contains(info, "id="+id+" ") {
		t.Fatalf("CLIENT INFO: %q", info)
	}
}

func TestQuitDropsSubscriptionsBeforeOthersRun(t *testing.T) {
	srv := startServer(t, nil)
	a, b := dial(t, srv.Addr().String()), dial(t, srv.Addr().String())
	a.do("SUBSCRIBE", "x")
	a.do("PSUBSCRIBE", "y*")
	if got := a.do("QUIT"); got != "+OK\r\n" {
		t.Fatalf("QUIT: %q", got)
	}
	a.expectClosed()
	if got := b.do("PUBSUB", "NUMSUB", "x"); got != "*2\r\n$1\r\nx\r\n:0\r\n" {
		t.Fatalf("NUMSUB after QUIT: %q", got)
	}
	if got := b.do("PUBSUB", "NUMPAT"); got != ":0\r\n" {
		t.Fatalf("NUMPAT after QUIT: %q", got)
	}
}

func TestDisconnectDropsSubscriptions(t *testing.T) {
	srv := startServer(t, nil)
	a, b := dial(t, srv.Addr().String()), dial(t, srv.Addr().String())
	a.do("SUBSCRIBE", "x")
	a.c.Close()
	// A TCP close reaches the server asynchronously; it must be processed
	// promptly (bounded wait, not a sleep).
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := b.do("PUBSUB", "NUMSUB", "x"); got == "*2\r\n$1\r\nx\r\n:0\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscription of a closed client still counted after 5s")
		}
		time.Sleep(time.Millisecond)
	}
	if got := b.do("PUBLISH", "x", "m"); got != ":0\r\n" {
		t.Fatalf("PUBLISH to departed subscriber: %q", got)
	}
}

func TestStatusCommand(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	c.do("PUBLISH", "a", "1")
	c.do("PUBLISH", "a", "2")
	got := c.do("STATUS")
	for _, want := range []string{"$7\r\nnode_id\r\n$1\r\n1\r\n", "$4\r\nrole\r\n$6\r\nleader\r\n", "$9\r\nleader_id\r\n$1\r\n1\r\n", "$8\r\nlast_seq\r\n$1\r\n2\r\n", "$10\r\ncommit_seq\r\n$1\r\n2\r\n", "$7\r\nmembers\r\n$1\r\n1\r\n", "$4\r\nterm\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("STATUS lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasPrefix(got, "*") {
		t.Errorf("RESP2 STATUS must be a flat array: %q", got)
	}
	c.do("HELLO", "3")
	if got := c.do("STATUS"); !strings.HasPrefix(got, "%") {
		t.Errorf("RESP3 STATUS must be a map: %q", got)
	}
}

func TestInfoSections(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	all := c.do("INFO")
	for _, want := range []string{"# Server\r\n", "redis_version:", "# Clients\r\n", "connected_clients:1\r\n", "# Stats\r\n", "total_commands_processed:", "# Persistence\r\n", "ordo_fsync:always", "# Replication\r\n", "role:master", "# Cluster\r\n", "ordo_role:leader", "ordo_term:"} {
		if !strings.Contains(all, want) {
			t.Errorf("INFO lacks %q", want)
		}
	}
	one := c.do("INFO", "clients")
	if strings.Contains(one, "# Server") || !strings.Contains(one, "# Clients") {
		t.Errorf("INFO clients: %q", one)
	}
	if got := c.do("INFO", "nosuch"); got != "$0\r\n\r\n" {
		t.Errorf("INFO nosuch: %q", got)
	}
	c.do("HELLO", "3")
	if got := c.do("INFO", "server"); !strings.HasPrefix(got, "=") || !strings.Contains(got, "txt:# Server") {
		t.Errorf("RESP3 INFO must be verbatim: %q", got[:20])
	}
}

func TestCommandIntrospection(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	if got := c.do("COMMAND", "COUNT"); got != fmt.Sprintf(":%d\r\n", len(commandTable)) {
		t.Errorf("COMMAND COUNT: %q", got)
	}
	got := c.do("COMMAND", "INFO", "publish", "nosuch")
	if !strings.HasPrefix(got, "*2\r\n*10\r\n$7\r\npublish\r\n:3\r\n") || !strings.HasSuffix(got, "*-1\r\n") {
		t.Errorf("COMMAND INFO: %q", got)
	}
	if got := c.do("COMMAND", "DOCS", "publish"); !strings.Contains(got, "summary") {
		t.Errorf("COMMAND DOCS: %q", got)
	}
	if got := c.do("COMMAND"); !strings.HasPrefix(got, fmt.Sprintf("*%d\r\n", len(commandTable))) {
		t.Errorf("COMMAND: %q", got[:20])
	}
}

func TestMaxClients(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.Limits.MaxClients = 2 })
	a, b := dial(t, srv.Addr().String()), dial(t, srv.Addr().String())
	a.do("PING")
	b.do("PING")
	c := dial(t, srv.Addr().String())
	if got := c.read(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("third client: %q", got)
	}
	c.expectClosed()
}

func TestMessageTooLarge(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.Limits.MaxMessageBytes = 10 })
	c := dial(t, srv.Addr().String())
	if got := c.do("PUBLISH", "a", strings.Repeat("x", 11)); got != "-ERR message too large: 11 bytes exceeds max-message-size 10\r\n" {
		t.Fatalf("oversized: %q", got)
	}
	// Nothing was logged and the connection still works.
	if got := c.do("PUBLISH", "a", "small"); got != ":0\r\n" {
		t.Fatalf("after oversized: %q", got)
	}
	if got := c.do("XLEN", "a"); got != ":1\r\n" {
		t.Fatalf("XLEN: %q", got)
	}
}

func TestRequestTooLargeClosesBeforePayload(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.Limits.MaxRequestBytes = 1 << 20; c.Limits.MaxMessageBytes = 1 << 10 })
	c := dial(t, srv.Addr().String())
	// Only the header is sent: the server must refuse without waiting for
	// (or buffering) the announced 2 MB.
	c.sendRaw([]byte("*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$2097152\r\n"))
	if got := c.read(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectClosed()
	d := dial(t, srv.Addr().String())
	if got := d.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("server unusable after: %q", got)
	}
}

func TestTooBigInlineRequest(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	c.sendRaw([]byte(strings.Repeat("a", 70<<10)))
	if got := c.read(); got != "-ERR Protocol error: too big inline request\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectClosed()
}

func TestDataDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	startServer(t, func(c *Config) { c.DataDir = dir })
	_, err := New(Config{ID: 1, DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another ordo process") {
		t.Fatalf("second node on the same data dir: %v", err)
	}
}
