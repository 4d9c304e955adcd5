package broker

import (
	"fmt"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/broker/acl"
)

// cmdFlags describe where a command may run.
type cmdFlags uint16

const (
	// flagPubsub: allowed in RESP2 subscribed mode.
	flagPubsub cmdFlags = 1 << iota
	// flagNoQueue: runs at once inside MULTI instead of being queued.
	flagNoQueue
	// flagPublish: a publish; not a barrier for earlier publishes.
	flagPublish
)

// command is one entry of the command table. arity follows Redis: n > 0
// means exactly n arguments including the name, n < 0 at least -n.
type command struct {
	name  string
	arity int
	flags cmdFlags
	fn    func(c *client, args [][]byte)
	subs  map[string]*command // container commands (CLIENT, PUBSUB, ...)
	acl   *acl.Command        // its ACL identity and categories (access.go)
	// fullName is how Redis names the command in errors and CLIENT LIST:
	// "publish", "client|list".
	fullName string
	// Fields COMMAND reports.
	cmdFlags []string
	// From cmdFlags: admin commands are not shown to MONITOR (and need
	// admin rights); skip_slowlog ones are not logged as slow.
	admin, skipSlowlog, noMulti bool
	firstKey                    int
	lastKey                     int
	keyStep                     int
}

var commandTable map[string]*command

func init() {
	commandTable = map[string]*command{}
	for _, c := range commandList() {
		commandTable[c.name] = c
		c.fullName = c.name
		c.setFlagBits()
		for _, sc := range c.subs {
			sc.fullName = c.name + "|" + sc.name
			sc.setFlagBits()
		}
	}
	aclTable = newACLTable(commandTable)
}

func (c *command) setFlagBits() {
	for _, f := range c.cmdFlags {
		c.admin = c.admin || f == "admin"
		// (A blocking command's wait is not execution time: Redis never
		// logs it, so neither is the command here.)
		c.skipSlowlog = c.skipSlowlog || f == "skip_slowlog" || f == "blocking"
		c.noMulti = c.noMulti || f == "no_multi"
	}
}

func sub(name string, arity int, fn func(*client, [][]byte)) *command {
	return &command{name: name, arity: arity, fn: fn}
}

// adminSub is a subcommand that changes the cluster (Redis's "admin" flag).
func adminSub(name string, arity int, fn func(*client, [][]byte)) *command {
	return &command{name: name, arity: arity, fn: fn, cmdFlags: []string{"admin", "noscript"}}
}

// adminSubFlags is a subcommand with Redis's flags for it.
func adminSubFlags(name string, arity int, fn func(*client, [][]byte), flags ...string) *command {
	return &command{name: name, arity: arity, fn: fn, cmdFlags: flags}
}

func subs(cs ...*command) map[string]*command {
	m := map[string]*command{}
	for _, c := range cs {
		m[c.name] = c
	}
	return m
}

// findCommand looks a name up case-insensitively without allocating (this
// runs for every command).
func findCommand(table map[string]*command, name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil // longer than any command
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return table[string(buf[:len(name)])]
}

// lookup resolves a command (top is findCommand's result for args[0]) and,
// for containers, its subcommand. It writes Redis's error and returns nil
// when the command cannot run.
func lookup(c *client, top *command, args [][]byte) *command {
	if top == nil {
		var b strings.Builder
		for i := 1; i < len(args) && b.Len() < 128; i++ {
			a := string(args[i])
			if max := 128 - b.Len(); len(a) > max {
				a = a[:max]
			}
			fmt.Fprintf(&b, "'%s' ", a)
		}
		n := string(args[0])
		if len(n) > 128 {
			n = n[:128]
		}
		msg := fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", n, b.String())
		if dataCommands[strings.ToLower(n)] {
			msg += brokerHint
		}
		c.w.Error(sanitize(msg))
		return nil
	}
	if top.subs != nil && len(args) >= 2 {
		sc := findCommand(top.subs, args[1])
		if sc == nil {
			c.w.Error(sanitize(fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", args[1], strings.ToUpper(top.name))))
			return nil
		}
		if !arityOK(sc.arity, len(args)) {
			c.w.Error(fmt.Sprintf("ERR wrong number of arguments for '%s' command", sc.fullName))
			return nil
		}
		return sc
	}
	if !arityOK(top.arity, len(args)) {
		c.w.Error(fmt.Sprintf("ERR wrong number of arguments for '%s' command", top.name))
		return nil
	}
	return top
}

// dataCommands are Redis's key-value commands most often tried first (by
// redis-benchmark's default run, or someone expecting a Redis): their
// unknown-command error says what ordo is. Other unknown commands get
// Redis's exact error.
var dataCommands = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(`set get getset setex setnx psetex mset msetnx mget getdel getex append strlen incr incrby incrbyfloat decr decrby
		del unlink exists keys scan expire pexpire expireat ttl pttl persist type rename randomkey flushdb flushall
		lpush rpush lpushx rpushx lpop rpop llen lrange lindex lset lrem ltrim blpop brpop lmove blmove
		sadd srem spop smembers sismember scard srandmember sunion sinter sdiff
		hset hsetnx hget hmset hmget hgetall hdel hincrby hexists hlen hkeys hvals
		zadd zrem zpopmin zpopmax zrange zrangebyscore zrevrange zscore zcard zincrby zrank
		xadd xtrim xdel`) {
		m[n] = true
	}
	return m
}()

// brokerHint ends the unknown-command error of a data command.
const brokerHint = "(ordo is a pub/sub broker, not a key-value store: it serves PUBLISH, SPUBLISH, SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, PUBSUB and channel history with XRANGE, XREVRANGE, XLEN and XREAD; benchmark it with ordo bench or redis-benchmark -t ping)"

func arityOK(arity, n int) bool {
	return (arity > 0 && n == arity) || (arity < 0 && n >= -arity)
}

// sanitize replaces newlines, which would break a RESP error line.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// execute runs one command and queues its reply. It returns false when the
// connection must stop reading (QUIT).
func (s *Server) execute(c *client, args [][]byte) bool {
	if len(args) == 0 {
		return true
	}
	s.stats.commands.Add(1)
	c.lastActive.Store(time.Now().UnixNano())
	c.w.resp3 = c.resp3
	top := findCommand(commandTable, args[0])
	defer c.afterCommand(top)
	if c.multi != nil && (top == nil || top.flags&flagNoQueue == 0) {
		c.queueMulti(top, args)
		c.flush()
		return true
	}
	cmd := lookup(c, top, args)
	if cmd == nil {
		c.flush()
		return true
	}
	c.lastCmd.Store(cmd)
	if !c.permitted(top, cmd, args) || !c.allowedWhenSubscribed(top, cmd) {
		c.flush()
		return true
	}
	c.run(cmd, top, args)
	c.flush()
	return !c.quitting
}

// run executes a resolved command. A command that is not itself a publish
// first waits for the connection's earlier publishes to commit, so that a
// pipeline behaves as if executed one command at a time (e.g. a PUBLISH
// followed by SUBSCRIBE on the same channel does not deliver to itself).
func (c *client) run(cmd, top *command, args [][]byte) {
	if top.flags&flagPublish == 0 && c.lastPub != nil {
		select {
		case <-c.lastPub.done:
		case <-c.quit:
		}
		c.lastPub = nil
	}
	start := time.Now()
	cmd.fn(c, args)
	c.srv.observe(c, cmd, args, start) // SLOWLOG, MONITOR
}

// allowedWhenSubscribed applies RESP2's subscribed-mode rule, writing
// Redis's error when the command is refused.
func (c *client) allowedWhenSubscribed(top, cmd *command) bool {
	if top.flags&flagPubsub != 0 || c.resp3 || c.subCount.Load() == 0 {
		return true
	}
	c.w.Error(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", cmd.fullName))
	return false
}

// flush moves the command's reply to the output, honouring CLIENT REPLY.
func (c *client) flush() {
	if len(c.w.b) == 0 {
		return
	}
	c.reply(c.w.b)
	c.w.b = c.w.b[:0]
}

// reply queues bytes that answer a command (not pushes).
func (c *client) reply(b []byte) {
	if !c.replies.silenced() {
		c.write(b, false)
	}
}

// push queues a subscribe or unsubscribe confirmation. Redis sends these
// (like messages) even when CLIENT REPLY is OFF or SKIP, in RESP2 too.
func (c *client) push(b []byte) { c.write(b, false) }

// reservePending flushes the reply so far and reserves the next place in
// the output for a reply known later.
func (c *client) reservePending() *pending {
	c.flush()
	p := newPending()
	if !c.replies.silenced() {
		c.reserve(p)
	}
	return p
}

func commandList() []*command {
	pubsubNames := []string{"pubsub", "fast"}
	return []*command{
		{name: "publish", arity: 3, fn: cmdPublish, flags: flagPublish, cmdFlags: []string{"pubsub", "loading", "stale", "fast"}},
		{name: "spublish", arity: 3, fn: cmdSPublish, flags: flagPublish, cmdFlags: []string{"pubsub", "loading", "stale", "fast"}, firstKey: 1, lastKey: 1, keyStep: 1},
		{name: "subscribe", arity: -2, fn: cmdSubscribe(kindChannel), flags: flagPubsub, cmdFlags: []string{"pubsub", "noscript", "loading", "stale"}},
		{name: "psubscribe", arity: -2, fn: cmdSubscribe(kindPattern), flags: flagPubsub, cmdFlags: []string{"pubsub", "noscript", "loading", "stale"}},
		{name: "ssubscribe", arity: -2, fn: cmdSubscribe(kindShard), flags: flagPubsub, cmdFlags: []string{"pubsub", "noscript", "loading", "stale"}, firstKey: 1, lastKey: -1, keyStep: 1},
		{name: "unsubscribe", arity: -1, fn: cmdUnsubscribe(kindChannel), flags: flagPubsub, cmdFlags: []string{"pubsub", "noscript", "loading", "stale"}},
		{name: "punsubscribe", arity: -1, fn: cmdUnsubscribe(kindPattern), flags: flagPubsub, cmdFlags: []string{"pubsub", "noscript", "loading", "stale"}},
		{name: "sunsubscribe", arity: -1, fn: cmdUnsubscribe(kindShard), flags: flagPubsub, cmdFlags: []string{"pubsub", "noscript", "loading", "stale"}, firstKey: 1, lastKey: -1, keyStep: 1},
		{name: "pubsub", arity: -2, cmdFlags: pubsubNames, subs: subs(
			sub("channels", -2, cmdPubsubChannels(kindChannel)),
			sub("shardchannels", -2, cmdPubsubChannels(kindShard)),
			sub("numsub", -2, cmdPubsubNumsub(kindChannel)),
			sub("shardnumsub", -2, cmdPubsubNumsub(kindShard)),
			sub("numpat", 2, cmdPubsubNumpat),
			sub("help", 2, helpFn("PUBSUB", pubsubHelp)),
		)},
		{name: "ping", arity: -1, fn: cmdPing, flags: flagPubsub, cmdFlags: []string{"fast", "sentinel"}},
		{name: "echo", arity: 2, fn: cmdEcho, cmdFlags: []string{"fast"}},
		{name: "quit", arity: -1, fn: cmdQuit, flags: flagPubsub | flagNoQueue, cmdFlags: []string{"allow_busy", "noscript", "loading", "stale", "fast", "no_auth"}},
		{name: "reset", arity: 1, fn: cmdReset, flags: flagPubsub | flagNoQueue, cmdFlags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}},
		{name: "hello", arity: -1, fn: cmdHello, cmdFlags: []string{"noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"}},
		{name: "auth", arity: -2, fn: cmdAuth, cmdFlags: []string{"noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"}},
		{name: "select", arity: 2, fn: cmdSelect, cmdFlags: []string{"loading", "stale", "fast"}},
		{name: "multi", arity: 1, fn: cmdMulti, flags: flagNoQueue, cmdFlags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}},
		{name: "exec", arity: 1, fn: cmdExec, flags: flagNoQueue, cmdFlags: []string{"noscript", "loading", "stale", "skip_slowlog"}},
		{name: "discard", arity: 1, fn: cmdDiscard, flags: flagNoQueue, cmdFlags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}},
		{name: "client", arity: -2, cmdFlags: []string{"sentinel"}, subs: subs(
			sub("id", 2, cmdClientID),
			sub("setname", 3, cmdClientSetname),
			sub("getname", 2, cmdClientGetname),
			sub("setinfo", 4, cmdClientSetinfo),
			sub("reply", 3, cmdClientReply),
			sub("list", -2, cmdClientList),
			sub("info", 2, cmdClientInfo),
			sub("kill", -3, cmdClientKill),
			sub("tracking", -3, cmdClientTracking),
			sub("caching", 3, cmdClientCaching),
			sub("getredir", 2, cmdClientGetredir),
			sub("trackinginfo", 2, cmdClientTrackinginfo),
			sub("help", 2, helpFn("CLIENT", clientHelp)),
		)},
		{name: "command", arity: -1, fn: cmdCommand, cmdFlags: []string{"loading", "stale", "sentinel"}, subs: subs(
			sub("count", 2, cmdCommandCount),
			sub("info", -2, cmdCommandInfo),
			sub("docs", -2, cmdCommandDocs),
			sub("list", -2, cmdCommandList),
			sub("help", 2, helpFn("COMMAND", commandHelp)),
		)},
		{name: "config", arity: -2, subs: subs(
			sub("get", -3, cmdConfigGet),
			sub("set", -4, cmdConfigSet),
			sub("resetstat", 2, cmdConfigResetstat),
			sub("help", 2, helpFn("CONFIG", configHelp)),
		)},
		{name: "cluster", arity: -2, subs: subs(
			sub("members", 2, cmdClusterMembers),
			staleSub("slots", 2, cmdClusterSlots),
			staleSub("shards", 2, cmdClusterShards),
			staleSub("nodes", 2, cmdClusterNodes),
			staleSub("info", 2, cmdClusterInfo),
			staleSub("myid", 2, cmdClusterMyID),
			staleSub("keyslot", 3, cmdClusterKeyslot),
			adminSub("leave", 2, cmdClusterLeave),
			adminSub("remove", 3, cmdClusterRemove),
			adminSub("stepdown", -2, cmdClusterStepdown),
			adminSub("accept-loss", 3, cmdClusterAcceptLoss),
			sub("help", 2, helpFn("CLUSTER", clusterHelp)),
		)},
		{name: "readonly", arity: 1, fn: cmdClusterOK, cmdFlags: []string{"loading", "stale", "fast"}},
		{name: "readwrite", arity: 1, fn: cmdClusterOK, cmdFlags: []string{"loading", "stale", "fast"}},
		{name: "asking", arity: 1, fn: cmdClusterOK, cmdFlags: []string{"fast"}},
		{name: "monitor", arity: 1, fn: cmdMonitor, cmdFlags: []string{"admin", "noscript", "loading", "stale"}},
		{name: "shutdown", arity: -1, fn: cmdShutdown, cmdFlags: []string{"admin", "noscript", "loading", "stale", "no_multi", "allow_busy"}},
		{name: "slowlog", arity: -2, subs: subs(
			adminSubFlags("get", -2, cmdSlowlogGet, "admin", "loading", "stale"),
			adminSubFlags("len", 2, cmdSlowlogLen, "admin", "loading", "stale"),
			adminSubFlags("reset", 2, cmdSlowlogReset, "admin", "loading", "stale"),
			adminSubFlags("help", 2, helpFn("SLOWLOG", slowlogHelp), "loading", "stale"),
		)},
		{name: "latency", arity: -2, subs: subs(
			adminSubFlags("latest", 2, cmdLatencyEmpty, "admin", "noscript", "loading", "stale"),
			adminSubFlags("history", 3, cmdLatencyEmpty, "admin", "noscript", "loading", "stale"),
			adminSubFlags("reset", -2, cmdLatencyReset, "admin", "noscript", "loading", "stale"),
			adminSubFlags("doctor", 2, cmdLatencyDoctor, "admin", "noscript", "loading", "stale"),
			adminSubFlags("graph", 3, cmdLatencyGraph, "admin", "noscript", "loading", "stale"),
			adminSubFlags("help", 2, helpFn("LATENCY", latencyHelp), "loading", "stale"),
		)},
		{name: "acl", arity: -2, subs: aclSubcommands()},
		{name: "info", arity: -1, fn: cmdInfo, cmdFlags: []string{"loading", "stale", "sentinel"}},
		{name: "status", arity: 1, fn: cmdStatus, cmdFlags: []string{"loading", "stale", "fast"}},
		{name: "dbsize", arity: 1, fn: func(c *client, _ [][]byte) { c.w.Int(0) }, cmdFlags: []string{"readonly", "fast"}},
		{name: "time", arity: 1, fn: cmdTime, cmdFlags: []string{"loading", "stale", "fast"}},
		{name: "xrange", arity: -4, fn: cmdXRange(false), cmdFlags: []string{"readonly"}, firstKey: 1, lastKey: 1, keyStep: 1},
		{name: "xrevrange", arity: -4, fn: cmdXRange(true), cmdFlags: []string{"readonly"}, firstKey: 1, lastKey: 1, keyStep: 1},
		{name: "xlen", arity: 2, fn: cmdXLen, cmdFlags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, keyStep: 1},
		{name: "xread", arity: -4, fn: cmdXRead, cmdFlags: []string{"readonly", "blocking"}},
	}
}
