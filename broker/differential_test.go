package broker

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The differential tests send the same command sequences to a real
// redis-server and to ordo and compare the raw replies byte for byte.
// Debian's redis-server is 7.0; behaviour that changed in 7.2 (CLIENT
// SETINFO, the RESP3 order of a PUBLISH reply and its self-delivered push)
// is checked by scripted tests in redis_compat_test.go instead.

// step sends args (or raw bytes) on connection c, then reads replies:
// reads[i] replies from connection i (default: one from c).
type step struct {
	c     int
	args  []string
	raw   string
	reads map[int]int
	// closed: the server must close connection c after the replies.
	closed bool
	// unordered: the replies of this step form a set (Redis iterates hash
	// tables, e.g. pattern matches), and so do the elements of a flat
	// array reply (PUBSUB CHANNELS).
	unordered bool
}

// u marks a step's replies as unordered.
func u(st step) step { st.unordered = true; return st }

// sortFlatArray sorts the elements of a flat array of bulk strings.
func sortFlatArray(s string) string {
	if !strings.HasPrefix(s, "*") {
		return s
	}
	lines := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
	var elems []string
	for i := 1; i+1 < len(lines); i += 2 {
		if !strings.HasPrefix(lines[i], "$") {
			return s
		}
		elems = append(elems, lines[i]+"\r\n"+lines[i+1])
	}
	sort.Strings(elems)
	return lines[0] + "\r\n" + strings.Join(elems, "\r\n") + "\r\n"
}

func s(c int, cmd string) step { return step{c: c, args: strings.Fields(cmd)} }

// sn is s with explicit reply counts.
func sn(c int, cmd string, reads map[int]int) step {
	st := s(c, cmd)
	st.reads = reads
	return st
}

func sa(c int, args ...string) step { return step{c: c, args: args} }

var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	// HELLO's version and client id differ between any two servers.
	{regexp.MustCompile(`\$7\r\nversion\r\n\$\d+\r\n[0-9.]+\r\n`), "$7\r\nversion\r\n<v>\r\n"},
	{regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`), "$2\r\nid\r\n<id>\r\n"},
	// MONITOR lines: the time and the client's port.
	{regexp.MustCompile(`^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\]`), "+<time> [0 <addr>]"},
}

func normalize(s string) string {
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// runScript plays steps against one server and returns the transcript.
func runScript(t *testing.T, addr string, steps []step) []string {
	conns := map[int]*respConn{}
	get := func(i int) *respConn {
		if conns[i] == nil {
			conns[i] = dial(t, addr)
		}
		return conns[i]
	}
	var out []string
	for _, st := range steps {
		c := get(st.c)
		if st.raw != "" {
			c.sendRaw([]byte(st.raw))
		} else {
			c.send(st.args...)
		}
		reads := st.reads
		if reads == nil {
			reads = map[int]int{st.c: 1}
		}
		var got []string
		for i := 0; i < 4; i++ {
			for k := 0; k < reads[i]; k++ {
				r := normalize(get(i).read())
				if st.unordered {
					r = sortFlatArray(r)
				}
				got = append(got, r)
			}
		}
		if st.unordered {
			sort.Strings(got)
		}
		out = append(out, got...)
		if st.closed {
			c.expectClosed()
			out = append(out, "<closed>")
			delete(conns, st.c)
		}
	}
	return out
}

var differentialCases = map[string][]step{
	"connection": {
		s(0, "PING"), s(0, "PING hello"), s(0, "PING a b"), s(0, "ECHO x"), s(0, "ECHO"),
		s(0, "FOO bar baz"), s(0, "foo"), sa(0, "FOO", strings.Repeat("x", 200)),
		s(0, "SELECT 0"), s(0, "SELECT 1"), s(0, "SELECT x"),
		s(0, "AUTH x"), s(0, "AUTH default x"), s(0, "AUTH nobody x"), s(0, "AUTH a b c d"),
		s(0, "DBSIZE"),
	},
	"subscribe": {
		sn(0, "SUBSCRIBE a b", map[int]int{0: 2}),
		sn(0, "SUBSCRIBE a", map[int]int{0: 1}),
		sn(1, "PUBLISH a hello", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH zz hello", map[int]int{1: 1}),
		s(0, "PING"), s(0, "PING x"), s(0, "ECHO x"), s(0, "CLIENT LIST"), s(0, "NOSUCH"),
		s(1, "PUBSUB NUMSUB a b c"), u(s(1, "PUBSUB CHANNELS")), u(s(1, "PUBSUB CHANNELS a*")), s(1, "PUBSUB NUMPAT"),
		s(0, "UNSUBSCRIBE a"),
		sn(0, "UNSUBSCRIBE", map[int]int{0: 1}),
		s(0, "UNSUBSCRIBE"),
		s(0, "UNSUBSCRIBE nosuch"),
		s(0, "PING"),
		s(1, "PUBSUB NUMSUB a b"),
	},
	"unsubscribe-never-subscribed": {
		s(0, "UNSUBSCRIBE"), s(0, "PUNSUBSCRIBE"), s(0, "SUNSUBSCRIBE"),
		sn(0, "UNSUBSCRIBE x y", map[int]int{0: 2}), s(0, "PUNSUBSCRIBE p*"), s(0, "SUNSUBSCRIBE s"),
		s(0, "PING"),
	},
	"patterns": {
		sn(0, "PSUBSCRIBE h?llo h*llo h[ae]llo", map[int]int{0: 3}),
		u(sn(1, "PUBLISH hello x", map[int]int{1: 1, 0: 3})),
		u(sn(1, "PUBLISH hallo y", map[int]int{1: 1, 0: 3})),
		u(sn(1, "PUBLISH hxllo z", map[int]int{1: 1, 0: 2})),
		sn(1, "PUBLISH heeeello w", map[int]int{1: 1, 0: 1}),
		s(1, "PUBSUB NUMPAT"),
		s(0, "PUNSUBSCRIBE h?llo"),
		sn(0, "PUNSUBSCRIBE", map[int]int{0: 2}),
		s(0, "PUNSUBSCRIBE"),
		s(1, "PUBSUB NUMPAT"),
	},
	"pattern-classes-and-escapes": {
		sa(0, "PSUBSCRIBE", `h\*llo`), sa(0, "PSUBSCRIBE", `[a-c]x`), sa(0, "PSUBSCRIBE", `[^a-c]y`), sa(0, "PSUBSCRIBE", `z[\]]`), sa(0, "PSUBSCRIBE", `q[c-a]`), sa(0, "PSUBSCRIBE", `open[ab`),
		sn(1, "PUBLISH h*llo 1", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH hello 2", map[int]int{1: 1}),
		sn(1, "PUBLISH bx 3", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH dx 4", map[int]int{1: 1}),
		sn(1, "PUBLISH dy 5", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH by 6", map[int]int{1: 1}),
		sn(1, "PUBLISH z] 7", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH qb 8", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH opena 9", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH open[ 10", map[int]int{1: 1}),
	},
	// Several overlapping patterns per client, with and without literal
	// prefixes (the pattern index groups them by prefix): every matching
	// pattern delivers once to each of its subscribers. Redis sends a
	// publish's pmessages in its hash table's order, seeded at random per
	// process, so the deliveries of one publish are compared as a set.
	"overlapping-patterns": {
		sn(0, "PSUBSCRIBE news.* news.*.sports *sports n* news.?k.sports new[sz].uk.*", map[int]int{0: 6}),
		sn(2, "PSUBSCRIBE news.* *", map[int]int{2: 2}),
		s(0, "SUBSCRIBE news.uk.sports"),
		s(1, "PUBSUB NUMPAT"),
		u(sn(1, "PUBLISH news.uk.sports a", map[int]int{1: 1, 0: 7, 2: 2})),
		u(sn(1, "PUBLISH news.us b", map[int]int{1: 1, 0: 2, 2: 2})),
		sn(1, "PUBLISH sports c", map[int]int{1: 1, 0: 1, 2: 1}),
		sn(1, "PUBLISH x d", map[int]int{1: 1, 2: 1}),
		sn(1, "PUBLISH n e", map[int]int{1: 1, 0: 1, 2: 1}),
		s(0, "PUNSUBSCRIBE news.*"),
		s(1, "PUBSUB NUMPAT"),
		u(sn(1, "PUBLISH news.uk.sports f", map[int]int{1: 1, 0: 6, 2: 2})),
		s(2, "PUNSUBSCRIBE news.*"),
		s(1, "PUBSUB NUMPAT"),
		u(sn(1, "PUBLISH news.uk.sports g", map[int]int{1: 1, 0: 6, 2: 1})),
		// Named, not all: with no arguments Redis 7.0 confirms in
		// subscription order, ordo (like 7.2's hash table, arbitrarily) sorted.
		sn(0, "PUNSUBSCRIBE news.*.sports *sports n* news.?k.sports new[sz].uk.* nosuch*", map[int]int{0: 6}),
		s(1, "PUBSUB NUMPAT"),
		sn(1, "PUBLISH news.uk.sports h", map[int]int{1: 1, 0: 1, 2: 1}),
	},
	"channel-and-pattern": {
		s(0, "SUBSCRIBE foo"), s(0, "PSUBSCRIBE f*"),
		sn(1, "PUBLISH foo x", map[int]int{1: 1, 0: 2}),
		s(0, "UNSUBSCRIBE foo"),
		sn(1, "PUBLISH foo y", map[int]int{1: 1, 0: 1}),
		s(0, "PUNSUBSCRIBE f*"), s(0, "PING"),
	},
	"shard": {
		sn(0, "SSUBSCRIBE a b", map[int]int{0: 2}),
		s(0, "SUBSCRIBE c"),
		sn(1, "SPUBLISH a x", map[int]int{1: 1, 0: 1}),
		sn(1, "PUBLISH a x", map[int]int{1: 1}),
		sn(1, "SPUBLISH c x", map[int]int{1: 1}),
		u(s(1, "PUBSUB SHARDCHANNELS")), s(1, "PUBSUB SHARDCHANNELS b"), s(1, "PUBSUB SHARDNUMSUB a b z"), s(1, "PUBSUB CHANNELS"),
		s(0, "SUNSUBSCRIBE a"), s(0, "SUNSUBSCRIBE"), s(0, "SUNSUBSCRIBE"), s(0, "PING"), s(0, "UNSUBSCRIBE"), s(0, "PING"),
	},
	"resp3": {
		s(0, "HELLO 3"),
		s(0, "SUBSCRIBE a"),
		sn(1, "PUBLISH a hi", map[int]int{1: 1, 0: 1}),
		s(0, "PING"), s(0, "ECHO x"), s(0, "PSUBSCRIBE a*"),
		sn(1, "PUBLISH ab hi", map[int]int{1: 1, 0: 1}),
		s(0, "PUBSUB NUMSUB a"), s(0, "CLIENT GETNAME"), s(0, "CONFIG GET maxclients"),
		s(0, "UNSUBSCRIBE"), s(0, "PUNSUBSCRIBE"), s(0, "UNSUBSCRIBE"),
		s(0, "HELLO 2"), s(0, "CLIENT GETNAME"),
	},
	"hello": {
		s(0, "HELLO"), s(0, "HELLO 4"), s(0, "HELLO 1"), s(0, "HELLO x"), s(0, "HELLO 3 FOO"),
		s(0, "HELLO 3 SETNAME"), sa(0, "HELLO", "2", "SETNAME", "a b"), s(0, "HELLO 2 SETNAME bob"), s(0, "CLIENT GETNAME"),
		s(0, "HELLO 3 AUTH default pw"), s(0, "HELLO 3 AUTH bob pw"), s(0, "HELLO 2"),
	},
	"multi": {
		s(0, "MULTI"), s(0, "PUBLISH a x"), s(0, "PING"), s(0, "ECHO y"), s(0, "EXEC"),
		s(0, "MULTI"), s(0, "MULTI"), s(0, "FOO"), s(0, "PING"), s(0, "EXEC"),
		s(0, "MULTI"), s(0, "ECHO"), s(0, "EXEC"),
		s(0, "EXEC"), s(0, "DISCARD"),
		s(0, "MULTI"), s(0, "PING"), s(0, "DISCARD"), s(0, "PING"),
		s(0, "MULTI"), s(0, "PUBSUB NUMPAT"), s(0, "XLEN nokey"), s(0, "EXEC"),
	},
	"client": {
		s(0, "CLIENT GETNAME"), s(0, "CLIENT SETNAME foo"), s(0, "CLIENT GETNAME"),
		sa(0, "CLIENT", "SETNAME", "a b"), sa(0, "CLIENT", "SETNAME", "a\nb"), s(0, "CLIENT GETNAME"),
		sa(0, "CLIENT", "SETNAME", ""), s(0, "CLIENT GETNAME"),
		s(0, "CLIENT SETNAME"), s(0, "CLIENT"), s(0, "CLIENT FOO"), s(0, "client foo bar"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "OFF"}, reads: map[int]int{}},
		step{c: 0, args: []string{"PING"}, reads: map[int]int{}},
		s(0, "CLIENT REPLY ON"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "SKIP"}, reads: map[int]int{}},
		step{c: 0, args: []string{"ECHO", "skipped"}, reads: map[int]int{}},
		s(0, "ECHO shown"), s(0, "CLIENT REPLY MAYBE"),
		s(0, "CLIENT KILL 1.2.3.4:5"), s(0, "CLIENT KILL ID 999999"), s(0, "CLIENT KILL ID x"), s(0, "CLIENT KILL TYPE foo"),
		s(0, "CLIENT KILL FOO bar"), s(0, "CLIENT KILL ID 1 SKIPME maybe"), s(0, "CLIENT KILL TYPE pubsub"),
		s(0, "CLIENT LIST TYPE foo"), s(0, "CLIENT LIST ID x"), s(0, "CLIENT LIST FOO"),
	},
	// Subscribe confirmations and messages are pushes: Redis sends them
	// whatever CLIENT REPLY says, in RESP2 and RESP3.
	"reply-off-pushes-resp2": {
		step{c: 0, args: []string{"CLIENT", "REPLY", "OFF"}, reads: map[int]int{}},
		s(0, "SUBSCRIBE a"),
		sn(1, "PUBLISH a x", map[int]int{1: 1, 0: 1}),
		s(0, "PSUBSCRIBE b*"),
		sn(1, "PUBLISH bb y", map[int]int{1: 1, 0: 1}),
		step{c: 0, args: []string{"PING"}, reads: map[int]int{}},
		s(0, "UNSUBSCRIBE"), s(0, "PUNSUBSCRIBE"),
		s(0, "SSUBSCRIBE s"),
		sn(1, "SPUBLISH s z", map[int]int{1: 1, 0: 1}),
		s(0, "SUNSUBSCRIBE"), s(0, "UNSUBSCRIBE"),
		s(0, "CLIENT REPLY ON"), s(0, "PING"),
	},
	"reply-off-pushes-resp3": {
		s(0, "HELLO 3"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "OFF"}, reads: map[int]int{}},
		sn(0, "SUBSCRIBE a b", map[int]int{0: 2}),
		sn(1, "PUBLISH a x", map[int]int{1: 1, 0: 1}),
		s(0, "PSUBSCRIBE b*"),
		u(sn(1, "PUBLISH b y", map[int]int{1: 1, 0: 2})),
		s(0, "SSUBSCRIBE s"),
		sn(1, "SPUBLISH s z", map[int]int{1: 1, 0: 1}),
		step{c: 0, args: []string{"PING"}, reads: map[int]int{}},
		step{c: 0, args: []string{"PUBLISH", "nobody", "x"}, reads: map[int]int{}},
		sn(0, "UNSUBSCRIBE a b", map[int]int{0: 2}), s(0, "PUNSUBSCRIBE"), s(0, "SUNSUBSCRIBE"), s(0, "UNSUBSCRIBE"),
		s(0, "CLIENT REPLY ON"), s(0, "PING"),
	},
	"reply-skip": {
		s(0, "HELLO 3"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "SKIP"}, reads: map[int]int{}},
		s(0, "SUBSCRIBE a"), // its push is sent; the skip is spent on it
		s(0, "PING"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "SKIP"}, reads: map[int]int{}},
		s(0, "CLIENT REPLY ON"), // runs skipped but its OK is sent
		step{c: 0, args: []string{"CLIENT", "REPLY", "SKIP"}, reads: map[int]int{}},
		step{c: 0, args: []string{"ECHO", "skipped"}, reads: map[int]int{}},
		s(0, "ECHO shown"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "OFF"}, reads: map[int]int{}},
		step{c: 0, args: []string{"CLIENT", "REPLY", "SKIP"}, reads: map[int]int{}},
		step{c: 0, args: []string{"ECHO", "off"}, reads: map[int]int{}},
		s(0, "CLIENT REPLY ON"), s(0, "ECHO on"),
		step{c: 0, args: []string{"CLIENT", "REPLY", "OFF"}, reads: map[int]int{}},
		s(0, "RESET"), s(0, "PING"),
	},
	"tracking": {
		s(0, "CLIENT TRACKINGINFO"), s(0, "CLIENT GETREDIR"), s(0, "CLIENT CACHING YES"), s(0, "CLIENT CACHING maybe"),
		s(0, "CLIENT TRACKING"), s(0, "CLIENT TRACKING maybe"), s(0, "CLIENT TRACKING ON FOO"), s(0, "CLIENT TRACKING ON PREFIX a"),
		s(0, "CLIENT TRACKING ON REDIRECT x"), s(0, "CLIENT TRACKING ON REDIRECT 999999"),
		s(0, "CLIENT TRACKING ON BCAST OPTIN"), s(0, "CLIENT TRACKING ON OPTIN OPTOUT"),
		s(0, "CLIENT TRACKING ON BCAST PREFIX a PREFIX ab"),
		s(0, "CLIENT TRACKING ON OPTIN"), s(0, "CLIENT TRACKINGINFO"), s(0, "CLIENT GETREDIR"),
		s(0, "CLIENT CACHING NO"), s(0, "CLIENT CACHING YES"), s(0, "CLIENT TRACKINGINFO"), s(0, "PING"), s(0, "CLIENT TRACKINGINFO"),
		s(0, "CLIENT TRACKING ON OPTOUT"), s(0, "CLIENT TRACKING ON BCAST"), s(0, "CLIENT TRACKING OFF"),
		s(0, "CLIENT TRACKING ON OPTOUT NOLOOP"), s(0, "CLIENT CACHING NO"), s(0, "CLIENT TRACKINGINFO"),
		s(0, "CLIENT TRACKING OFF"), s(0, "CLIENT TRACKING ON BCAST PREFIX b PREFIX a"), s(0, "CLIENT TRACKINGINFO"),
		s(0, "CLIENT TRACKING ON BCAST PREFIX c"), s(0, "CLIENT TRACKING ON BCAST PREFIX bb"), s(0, "CLIENT TRACKINGINFO"),
		s(0, "CLIENT TRACKING OFF"), s(0, "CLIENT TRACKING ON BCAST NOLOOP"), s(0, "CLIENT TRACKINGINFO"),
		s(0, "HELLO 3"), s(0, "CLIENT TRACKINGINFO"), s(0, "RESET"), s(0, "CLIENT TRACKINGINFO"), s(0, "CLIENT CACHING YES"),
		s(0, "CLIENT TRACKING off"), s(0, "CLIENT GETREDIR x"),
	},
	"monitor": {
		s(0, "MONITOR"),
		sn(1, "PING", map[int]int{1: 1, 0: 1}),
		{c: 1, args: []string{"ECHO", "a \"b\"\n\x01\xff"}, reads: map[int]int{1: 1, 0: 1}},
		sn(1, "AUTH default x", map[int]int{1: 1, 0: 1}),
		sn(1, "HELLO 2 AUTH default x SETNAME n", map[int]int{1: 1, 0: 1}),
		sn(1, "SLOWLOG LEN", map[int]int{1: 1}),
		sn(1, "MULTI", map[int]int{1: 1, 0: 1}), s(1, "PING"), sn(1, "EXEC", map[int]int{1: 1, 0: 2}),
		s(1, "NOSUCH"),
		sn(1, "PUBLISH a x", map[int]int{1: 1, 0: 1}),
	},
	"diagnostics": {
		s(0, "SLOWLOG LEN"), s(0, "SLOWLOG RESET"), s(0, "SLOWLOG GET"), s(0, "SLOWLOG GET x"), s(0, "SLOWLOG GET -2"),
		s(0, "SLOWLOG GET 1 2"), s(0, "SLOWLOG FOO"), s(0, "SLOWLOG"), s(0, "SLOWLOG HELP"),
		s(0, "CONFIG GET slowlog-max-len"), s(0, "CONFIG GET slowlog-log-slower-than"),
		s(0, "LATENCY LATEST"), s(0, "LATENCY HISTORY foo"), s(0, "LATENCY RESET"), s(0, "LATENCY RESET a b"),
		s(0, "LATENCY DOCTOR"), s(0, "LATENCY GRAPH foo"), s(0, "LATENCY"), s(0, "LATENCY FOO"), s(0, "LATENCY HISTORY"),
		s(0, "HELLO 3"), s(0, "LATENCY DOCTOR"), s(0, "SLOWLOG GET"),
	},
	"command-docs": {
		s(0, "COMMAND DOCS publish xread nosuch subscribe hello"), // (containers: see TestCommandDocsMatchRedis)
		s(0, "HELLO 3"), s(0, "COMMAND DOCS publish xread nosuch subscribe hello"), s(0, "COMMAND DOCS monitor shutdown echo"),
	},
	"shutdown-refused": {
		s(0, "SHUTDOWN ABORT"), s(0, "SHUTDOWN FOO"), s(0, "SHUTDOWN NOSAVE SAVE"), s(0, "SHUTDOWN ABORT NOW"),
		s(0, "MULTI"), s(0, "SHUTDOWN"), s(0, "EXEC"), s(0, "PING"),
	},
	"multi-subscribe": {
		s(0, "MULTI"), s(0, "SUBSCRIBE a"), s(0, "SSUBSCRIBE b"), s(0, "PING"), s(0, "EXEC"),
		s(0, "PING"), s(0, "UNSUBSCRIBE"), s(0, "PING"),
	},
	"client-kill-pubsub": {
		s(1, "SUBSCRIBE a"), s(0, "CLIENT KILL TYPE pubsub"), s(0, "PUBSUB NUMSUB a"),
	},
	"config": {
		s(0, "CONFIG GET maxclients"), s(0, "CONFIG GET nosuch*"), s(0, "CONFIG"), s(0, "CONFIG GET"),
		s(0, "CONFIG SET nosuch 1"), s(0, "CONFIG FOO"), s(0, "CONFIG RESETSTAT"),
	},
	"pubsub-errors": {
		s(0, "PUBSUB"), s(0, "PUBSUB FOO"), s(0, "PUBSUB NUMPAT x"), s(0, "PUBSUB CHANNELS a b"), s(0, "PUBSUB NUMSUB"),
		s(0, "PUBLISH"), s(0, "PUBLISH a"), s(0, "PUBLISH a b c"), s(0, "SUBSCRIBE"), s(0, "SPUBLISH a"),
	},
	"reset": {
		s(0, "SUBSCRIBE a"), s(0, "PSUBSCRIBE b*"), s(0, "CLIENT SETNAME n"), s(0, "RESET"), s(0, "PING"), s(0, "CLIENT GETNAME"),
		s(1, "PUBSUB NUMSUB a"), s(1, "PUBSUB NUMPAT"),
		s(0, "HELLO 3"), s(0, "MULTI"), s(0, "RESET"), s(0, "PING"), s(0, "EXEC"),
	},
	"quit": {
		{c: 0, args: []string{"QUIT"}, closed: true},
	},
	"quit-subscribed": {
		s(0, "SUBSCRIBE a"), {c: 0, args: []string{"QUIT"}, closed: true},
	},
	"inline": {
		{c: 0, raw: "PING\r\n"}, {c: 0, raw: "ECHO hi\r\n"}, {c: 0, raw: "ECHO \"a b\"\r\n"}, {c: 0, raw: "\r\n\r\nPING\n"},
	},
	"protocol-bad-bulk-length": {{c: 0, raw: "*1\r\n$abc\r\n", closed: true}},
	"protocol-bad-multibulk":   {{c: 0, raw: "*abc\r\n", closed: true}},
	"protocol-expected-dollar": {{c: 0, raw: "*1\r\n+foo\r\n", closed: true}},
	"protocol-unbalanced":      {{c: 0, raw: "ECHO \"abc\r\n", closed: true}},
	"protocol-huge-bulk":       {{c: 0, raw: "*2\r\n$4\r\nECHO\r\n$99999999999\r\n", closed: true}},
	"protocol-huge-multibulk":  {{c: 0, raw: "*3000000000\r\n", closed: true}},
	"protocol-after-good":      {{c: 0, raw: "PING\r\n*1\r\n$x\r\n", reads: map[int]int{0: 2}, closed: true}},
	"streams-errors": {
		s(0, "XRANGE nokey - +"), s(0, "XREVRANGE nokey + -"), s(0, "XRANGE k x +"), s(0, "XRANGE k - y"),
		s(0, "XRANGE k - + COUNT"), s(0, "XRANGE k - + COUNT x"), s(0, "XRANGE k (- +"), s(0, "XRANGE k - + FOO 1"),
		s(0, "XRANGE k 1-x +"), s(0, "XRANGE k - + COUNT 0"), s(0, "XRANGE k - + COUNT -1"), s(0, "XRANGE"), s(0, "XRANGE k -"),
		s(0, "XLEN nokey"), s(0, "XLEN"),
		s(0, "XREAD STREAMS k"), s(0, "XREAD COUNT x STREAMS k 0"), s(0, "XREAD STREAMS k 0"),
		s(0, "XREAD BLOCK x STREAMS k 0"), s(0, "XREAD BLOCK -1 STREAMS k 0"), s(0, "XREAD STREAMS k $"),
		s(0, "XREAD FOO"), s(0, "XREAD STREAMS k abc"), s(0, "XREAD STREAMS k - "), s(0, "XREAD BLOCK 20 STREAMS k $"),
		s(0, "XREAD COUNT 1 STREAMS a b 0 0"), s(0, "XREAD STREAMS a b 0"), s(0, "XREAD"), s(0, "XREAD COUNT 1"),
	},
	"output-buffer-limits": {
		s(0, "CONFIG GET client-output-buffer-limit"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 512kb 10"),
		s(0, "CONFIG GET client-output-buffer-limit"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0 pubsub 64mb 16mb 30"),
		s(0, "CONFIG GET client-output-buffer-limit"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "master 1 2 3"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "normal x 2 3"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "normal 1 2 -3"),
		s(0, "CONFIG GET client-output-buffer-limit"),
		sa(0, "CONFIG", "SET", "client-output-buffer-limit", "normal 2k 3KB 1 pubsub 1m 1Mb 2 normal 5g 6gb 7"),
		s(0, "CONFIG GET client-output-buffer-limit"),
	},
}

func TestDifferentialAgainstRedis(t *testing.T) {
	for name, steps := range differentialCases {
		t.Run(name, func(t *testing.T) {
			// Fresh servers per case: no state leaks between scripts.
			redisAddr := redisServer(t)
			ordo := startServer(t, nil)
			want := runScript(t, redisAddr, steps)
			got := runScript(t, ordo.Addr().String(), steps)
			compareTranscripts(t, steps, want, got)
		})
	}
}
