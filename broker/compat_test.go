package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
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

// Redis 7.2: messages a transaction publishes to the client's own
// subscriptions follow EXEC's reply instead of landing inside it;
// subscribe confirmations inside the transaction are part of it. (The
// expected bytes are Redis 7.2's, which Debian's 7.0 cannot serve.)
func TestRESP3PushesAfterExec(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.Addr().String())
	c.do("HELLO", "3")
	c.do("SUBSCRIBE", "a")
	msg := func(ch, payload string) string {
		return fmt.Sprintf(">3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(ch), ch, len(payload), payload)
	}
	for _, tc := range []struct {
		name  string
		cmds  [][]string
		exec  string
		after []string
	}{
		{"publish-then-ping", [][]string{{"PUBLISH", "a", "x"}, {"PING"}},
			"*2\r\n:1\r\n+PONG\r\n", []string{msg("a", "x")}},
		{"two-publishes", [][]string{{"PUBLISH", "a", "1"}, {"PUBLISH", "a", "2"}, {"ECHO", "e"}},
			"*3\r\n:1\r\n:1\r\n$1\r\ne\r\n", []string{msg("a", "1"), msg("a", "2")}},
		{"subscribe-then-publish", [][]string{{"SUBSCRIBE", "b"}, {"PUBLISH", "b", "y"}, {"PING"}},
			"*3\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n:1\r\n+PONG\r\n", []string{msg("b", "y")}},
		{"unsubscribe-then-publish", [][]string{{"UNSUBSCRIBE", "b"}, {"PUBLISH", "b", "z"}},
			"*2\r\n>3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n:0\r\n", nil},
		{"publish-then-unsubscribe", [][]string{{"PUBLISH", "a", "w"}, {"UNSUBSCRIBE", "a"}},
			"*2\r\n:1\r\n>3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n", []string{msg("a", "w")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.do("MULTI"); got != "+OK\r\n" {
				t.Fatalf("MULTI: %q", got)
			}
			for _, cmd := range tc.cmds {
				if got := c.do(cmd...); got != "+QUEUED\r\n" {
					t.Fatalf("%v: %q", cmd, got)
				}
			}
			if got := c.do("EXEC"); got != tc.exec {
				t.Fatalf("EXEC reply:\n got  %q\n want %q", got, tc.exec)
			}
			for _, want := range tc.after {
				if got := c.read(); got != want {
					t.Fatalf("after EXEC:\n got  %q\n want %q", got, want)
				}
			}
			// Nothing else was queued: the next reply is PING's.
			if got := c.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING after: %q", got)
			}
		})
	}
}

// With slowlog-log-slower-than 0 every command is logged, newest first,
// in Redis's entry shape, with credentials redacted.
func TestSlowlogRecordsCommands(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		if err := optionByKey(t, "slowlog_log_slower_than").Set(c, "0"); err != nil {
			t.Fatal(err)
		}
		c.Slowlog.MaxLen = 3
	})
	c := dial(t, srv.Addr().String())
	c.do("CLIENT", "SETNAME", "me")
	c.do("AUTH", "default", "secret")
	c.do("ECHO", strings.Repeat("x", 130))
	c.do("MULTI")
	c.do("PING")
	c.do("EXEC") // EXEC itself is not logged (skip_slowlog); PING is
	v := c.Do("SLOWLOG", "GET", "-1")
	if len(v.Elems) != 3 {
		t.Fatalf("SLOWLOG GET -1 kept %d entries, want 3 (slowlog-max-len): %v", len(v.Elems), v)
	}
	args := func(i int) []string {
		var out []string
		for _, a := range v.Elems[i].Elems[3].Elems {
			out = append(out, string(a.Str))
		}
		return out
	}
	if a := args(0); len(a) != 1 || a[0] != "PING" {
		t.Errorf("newest entry: %q", a)
	}
	if a := args(1); len(a) != 1 || a[0] != "MULTI" {
		t.Errorf("second entry: %q", a)
	}
	if a := args(2); len(a) != 2 || a[1] != strings.Repeat("x", 128)+"... (2 more bytes)" {
		t.Errorf("long argument not trimmed as Redis does: %q", a)
	}
	e := v.Elems[0].Elems
	if e[0].Num != 4 || string(e[5].Str) != "me" || !strings.HasPrefix(string(e[4].Str), "127.0.0.1:") {
		t.Errorf("entry fields: %v", e)
	}
	c.do("SLOWLOG", "RESET")
	c.do("AUTH", "default", "secret")
	if got := c.Do("SLOWLOG", "GET", "1").Elems[0].Elems[3]; len(got.Elems) != 3 || string(got.Elems[1].Str) != "(redacted)" || string(got.Elems[2].Str) != "(redacted)" {
		t.Errorf("AUTH not redacted: %v", got)
	}
	if got := c.do("SLOWLOG", "LEN"); got != ":3\r\n" { // SLOWLOG RESET, AUTH, SLOWLOG GET
		t.Errorf("SLOWLOG LEN: %q", got)
	}
}

func TestMonitorClientListed(t *testing.T) {
	srv := startServer(t, nil)
	m, c := dial(t, srv.Addr().String()), dial(t, srv.Addr().String())
	m.do("MONITOR")
	if list := c.do("CLIENT", "LIST"); !strings.Contains(list, "flags=O ") {
		t.Fatalf("CLIENT LIST shows no monitor: %q", list)
	}
	m.c.Close()
	testkit.Eventually(t, 10*time.Second, func() bool {
		return srv.monitors.n.Load() == 0
	}, "monitor not removed after disconnect")
}

func optionByKey(t *testing.T, key string) Option {
	for _, o := range Options() {
		if o.Key == key {
			return o
		}
	}
	t.Fatalf("no option %s", key)
	return Option{}
}
