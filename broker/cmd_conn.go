package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redisVersion is the Redis version whose behaviour ordo reproduces; it
// is what HELLO and INFO report so that client libraries enable the right
// features.
const redisVersion = "7.2.4"

// Version is ordo's own version.
var Version = "0.1.0"

func cmdPing(c *client, args [][]byte) {
	if len(args) > 2 {
		c.w.Error("ERR wrong number of arguments for 'ping' command")
		return
	}
	if !c.resp3 && c.subCount.Load() > 0 {
		c.w.Array(2)
		c.w.BulkString("pong")
		if len(args) == 2 {
			c.w.Bulk(args[1])
		} else {
			c.w.BulkString("")
		}
		return
	}
	if len(args) == 2 {
		c.w.Bulk(args[1])
		return
	}
	c.w.Simple("PONG")
}

func cmdEcho(c *client, args [][]byte) { c.w.Bulk(args[1]) }

func cmdQuit(c *client, _ [][]byte) {
	c.w.OK()
	c.flush()
	c.quitting = true
	c.finish()
}

// cmdReset returns the connection to its initial state, as Redis's
// clearClientConnectionState does (lib-name and lib-ver survive).
func cmdReset(c *client, _ [][]byte) {
	c.multi = nil
	c.srv.reg.dropClient(c)
	c.name.Store("")
	c.setProtocol(false)
	c.replies.off, c.replies.skipNext = false, false // (a skipped RESET stays unanswered)
	c.tracking = tracking{}
	c.user.Store(c.srv.users.Default())
	c.authed = c.srv.defaultAuthenticated()
	c.w.Simple("RESET")
}

func cmdHello(c *client, args [][]byte) {
	proto := 0
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil || v < 0 || v > 1<<31 {
			c.w.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.w.Error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}
	var setName, user, pass []byte
	haveName := false
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		opt := strings.ToLower(string(args[i]))
		switch {
		case opt == "auth" && more >= 2:
			user, pass = args[i+1], args[i+2]
			i += 2
		case opt == "setname" && more >= 1:
			setName, haveName = args[i+1], true
			i++
		default:
			c.w.Error(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
			return
		}
	}
	if user != nil && !authOK(c, args[0], user, pass) {
		return
	}
	if !c.authed {
		c.w.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if haveName {
		if !validName(setName) {
			c.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.name.Store(string(setName))
	}
	if proto != 0 {
		c.setProtocol(proto == 3)
	}
	p := 2
	if c.resp3 {
		p = 3
	}
	c.w.Map(7)
	c.w.BulkString("server")
	c.w.BulkString("redis")
	c.w.BulkString("version")
	c.w.BulkString(redisVersion)
	c.w.BulkString("proto")
	c.w.Int(int64(p))
	c.w.BulkString("id")
	c.w.Int(c.id)
	c.w.BulkString("mode")
	c.w.BulkString("standalone")
	c.w.BulkString("role")
	c.w.BulkString("master")
	c.w.BulkString("modules")
	c.w.Array(0)
}

// setProtocol switches RESP2/RESP3. The delivery loop reads resp3 under
// the registry's read lock, so it is written under the write lock.
func (c *client) setProtocol(resp3 bool) {
	c.srv.reg.mu.Lock()
	c.resp3 = resp3
	c.srv.reg.mu.Unlock()
	c.w.resp3 = resp3
}

// authOK logs the connection in as user if the password matches (any
// password for a nopass user), else writes Redis's WRONGPASS.
func authOK(c *client, cmdName, user, pass []byte) bool {
	u := c.srv.users.Authenticate(user, pass)
	if u == nil {
		c.srv.acllog.add(c, "auth", string(cmdName), string(user))
		c.w.Error("WRONGPASS invalid username-password pair or user is disabled.")
		return false
	}
	c.login(u)
	return true
}

func cmdAuth(c *client, args [][]byte) {
	switch len(args) {
	case 2:
		if p := c.srv.users.Default().Perms(); p.NoPass() {
			c.w.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
		if authOK(c, args[0], []byte("default"), args[1]) {
			c.w.OK()
		}
	case 3:
		if authOK(c, args[0], args[1], args[2]) {
			c.w.OK()
		}
	default:
		c.w.Error("ERR syntax error")
	}
}

func cmdSelect(c *client, args [][]byte) {
	db, err := strconv.ParseInt(string(args[1]), 10, 64)
	switch {
	case err != nil:
		c.w.Error("ERR value is not an integer or out of range")
	case db < 0 || db >= 16:
		// Channels are global, as Redis's pub/sub ignores databases; the 16
		// indexes Redis accepts by default are accepted for compatibility.
		c.w.Error("ERR DB index is out of range")
	default:
		c.w.OK()
	}
}

func cmdTime(c *client, _ [][]byte) {
	now := time.Now()
	c.w.Array(2)
	c.w.BulkString(strconv.FormatInt(now.Unix(), 10))
	c.w.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

// validName is Redis's rule for client names and library attributes.
func validName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

// multiState holds a transaction being queued.
type multiState struct {
	cmds  [][][]byte
	dirty bool
}

func cmdMulti(c *client, _ [][]byte) {
	if c.multi != nil {
		c.w.Error("ERR MULTI calls can not be nested")
		return
	}
	c.multi = &multiState{}
	c.w.OK()
}

func (c *client) queueMulti(top *command, args [][]byte) {
	cmd := lookup(c, top, args)
	if cmd == nil || !c.permitted(top, cmd, args) || !c.allowedWhenSubscribed(top, cmd) {
		c.multi.dirty = true
		return
	}
	if cmd.noMulti {
		c.w.Error("ERR Command not allowed inside a transaction")
		c.multi.dirty = true
		return
	}
	// The reader reuses the argument slice for the next request (the
	// arguments' bytes it never reuses).
	c.multi.cmds = append(c.multi.cmds, slices.Clone(args))
	c.w.Simple("QUEUED")
}

func cmdDiscard(c *client, _ [][]byte) {
	if c.multi == nil {
		c.w.Error("ERR DISCARD without MULTI")
		return
	}
	c.multi = nil
	c.w.OK()
}

// cmdExec runs the queued commands back to back. Their replies, including
// the PUBLISH replies known only at commit, form EXEC's array in order.
func cmdExec(c *client, _ [][]byte) {
	m := c.multi
	if m == nil {
		c.w.Error("ERR EXEC without MULTI")
		return
	}
	c.multi = nil
	if m.dirty {
		c.w.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	c.w.Array(len(m.cmds))
	c.inExec = true
	// Messages the transaction publishes to the client's own
	// subscriptions (and any other delivery meanwhile) follow EXEC's
	// reply, as in Redis 7.2; subscribe confirmations are part of it.
	c.deferDeliveries(true)
	for _, args := range m.cmds {
		top := findCommand(commandTable, args[0])
		cmd := top
		if top.subs != nil {
			cmd = findCommand(top.subs, args[1])
		}
		if !c.stillPermitted(cmd, args) {
			continue
		}
		c.run(cmd, top, args)
	}
	c.inExec = false
	c.flush()
	c.deferDeliveries(false)
}
