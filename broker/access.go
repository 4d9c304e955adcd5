package broker

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/ordo-broker/ordo/broker/acl"
	"github.com/ordo-broker/ordo/broker/logging"
)

// Access control: authentication (NOAUTH), ACL permission checks
// (NOPERM) and protected mode, with Redis 7.2's texts. The users and their
// rules live in package acl; this file ties them to commands and clients.

// aclTable is the command table as package acl sees it.
var aclTable *acl.Table

// redisCategories are the ACL categories redis-server 7 gives the commands
// ordo shares with it (COMMAND INFO). Other commands get Redis's implicit
// categories from their flags (implicitCategories), so a command flagged
// admin is @admin @dangerous @slow.
var redisCategories = map[string]string{
	"publish": "pubsub fast", "spublish": "pubsub fast",
	"subscribe": "pubsub slow", "psubscribe": "pubsub slow", "ssubscribe": "pubsub slow",
	"unsubscribe": "pubsub slow", "punsubscribe": "pubsub slow", "sunsubscribe": "pubsub slow",
	"pubsub": "slow", "pubsub|channels": "pubsub slow", "pubsub|numpat": "pubsub slow", "pubsub|help": "slow",
	"pubsub|shardchannels": "pubsub slow", "pubsub|numsub": "pubsub slow", "pubsub|shardnumsub": "pubsub slow",
	"ping": "fast connection", "echo": "fast connection", "quit": "fast connection", "reset": "fast connection",
	"hello": "fast connection", "auth": "fast connection", "select": "fast connection",
	"multi": "fast transaction", "exec": "slow transaction", "discard": "fast transaction",
	"client": "slow", "client|caching": "slow connection", "client|tracking": "slow connection",
	"client|getredir": "slow connection", "client|list": "admin slow dangerous connection",
	"client|unpause": "admin slow dangerous connection", "client|trackinginfo": "slow connection",
	"client|pause": "admin slow dangerous connection", "client|unblock": "admin slow dangerous connection",
	"client|help": "slow connection", "client|setname": "slow connection", "client|kill": "admin slow dangerous connection",
	"client|info": "slow connection", "client|getname": "slow connection", "client|reply": "slow connection",
	"client|no-evict": "admin slow dangerous connection", "client|id": "slow connection",
	"client|setinfo": "slow connection", "client|no-touch": "slow connection",
	"command": "slow connection", "command|getkeys": "slow connection", "command|help": "slow connection",
	"command|getkeysandflags": "slow connection", "command|list": "slow connection", "command|info": "slow connection",
	"command|count": "slow connection", "command|docs": "slow connection",
	"config": "slow", "config|get": "admin slow dangerous", "config|help": "slow", "config|resetstat": "admin slow dangerous",
	"config|rewrite": "admin slow dangerous", "config|set": "admin slow dangerous",
	"cluster": "slow", "cluster|slots": "slow", "cluster|shards": "slow", "cluster|nodes": "slow", "cluster|info": "slow",
	"cluster|myid": "slow", "cluster|keyslot": "slow", "cluster|help": "slow", "cluster|links": "slow",
	"info": "slow dangerous", "dbsize": "keyspace read fast", "time": "fast",
	"xrange": "read stream slow", "xrevrange": "read stream slow", "xlen": "read stream fast", "xread": "read stream slow blocking",
	"acl": "slow", "acl|whoami": "slow", "acl|genpass": "slow", "acl|help": "slow", "acl|cat": "slow",
	"acl|load": "admin slow dangerous", "acl|save": "admin slow dangerous", "acl|setuser": "admin slow dangerous",
	"acl|list": "admin slow dangerous", "acl|log": "admin slow dangerous", "acl|dryrun": "admin slow dangerous",
	"acl|deluser": "admin slow dangerous", "acl|users": "admin slow dangerous", "acl|getuser": "admin slow dangerous",
	"monitor": "admin slow dangerous", "shutdown": "admin slow dangerous",
	"slowlog": "slow", "slowlog|get": "admin slow dangerous", "slowlog|help": "slow", "slowlog|reset": "admin slow dangerous",
	"slowlog|len": "admin slow dangerous",
	"latency":     "slow", "latency|help": "slow", "latency|graph": "admin slow dangerous", "latency|reset": "admin slow dangerous",
	"latency|latest": "admin slow dangerous", "latency|doctor": "admin slow dangerous",
	"latency|histogram": "admin slow dangerous", "latency|history": "admin slow dangerous",
	"memory": "slow", "memory|help": "slow", "memory|stats": "slow", "memory|doctor": "slow", "memory|usage": "read slow",
	"role": "admin fast dangerous", "asking": "fast connection", "readonly": "fast connection", "readwrite": "fast connection",
	"memory|malloc-stats": "slow", "memory|purge": "slow", "cluster|countkeysinslot": "slow", "cluster|getkeysinslot": "slow",
	"lolwut": "read fast", "wait": "slow connection", "debug": "admin slow dangerous", "save": "admin slow dangerous",
	"failover": "admin slow dangerous",
}

// implicitCategories derives categories from COMMAND flags as Redis does
// for commands without explicit ones (setImplicitACLCategories).
func implicitCategories(flags []string) acl.Category {
	var cat acl.Category
	for _, f := range flags {
		switch f {
		case "write":
			cat |= acl.Write
		case "readonly":
			cat |= acl.Read
		case "admin":
			cat |= acl.Admin | acl.Dangerous
		case "pubsub":
			cat |= acl.Pubsub
		case "fast":
			cat |= acl.Fast
		case "blocking":
			cat |= acl.Blocking
		}
	}
	if cat&acl.Fast == 0 {
		cat |= acl.Slow
	}
	return cat
}

func aclCommand(cmd *command) *acl.Command {
	var cat acl.Category
	if names, ok := redisCategories[cmd.fullName]; ok {
		for _, n := range strings.Fields(names) {
			c, _ := acl.CategoryByName(n)
			cat |= c
		}
	} else {
		cat = implicitCategories(cmd.cmdFlags)
	}
	ac := &acl.Command{Name: cmd.fullName, Categories: cat}
	for _, f := range cmd.cmdFlags {
		ac.NoAuth = ac.NoAuth || f == "no_auth"
	}
	cmd.acl = ac
	for _, sc := range cmd.subs {
		ac.Subs = append(ac.Subs, aclCommand(sc))
	}
	return ac
}

// newACLTable gives every command of the table its ACL identity.
func newACLTable(table map[string]*command) *acl.Table {
	var cmds []*acl.Command
	for _, c := range table {
		cmds = append(cmds, aclCommand(c))
	}
	return acl.NewTable(cmds)
}

// authRequired: the default user needs a password (or is off), so a
// connection that has not authenticated may only run AUTH, HELLO, QUIT
// and RESET.
func (s *Server) authRequired() bool {
	p := s.users.Default().Perms()
	return !p.NoPass() || !p.Enabled()
}

// defaultAuthenticated is a new (or RESET) connection's state: logged in
// as the default user if it needs no password, as in Redis.
func (s *Server) defaultAuthenticated() bool { return !s.authRequired() }

// permitted applies authentication and the ACL to a command about to run
// or be queued, writing Redis's error when it is refused. For a user
// with every permission (the default user unless changed) it costs two
// atomic loads.
func (c *client) permitted(top, cmd *command, args [][]byte) bool {
	if !c.authed && !cmd.acl.NoAuth && c.srv.authRequired() {
		c.reject(top, "NOAUTH Authentication required.")
		return false
	}
	u := c.user.Load()
	p := u.Perms()
	if p.Unrestricted() {
		return true
	}
	if d, arg := denied(p, cmd, args); d != allowed {
		c.srv.log.Logf(logging.Debug, "acl", "Refused %s to user %s (client id=%d addr=%s)", cmd.fullName, u.Name(), c.id, c.addr)
		c.logDenial(u, d, cmd, arg)
		c.reject(top, "NOPERM "+d.message(u, cmd, nil))
		return false
	}
	return true
}

// stillPermitted re-checks a queued command at EXEC: the rules may have
// changed since it was queued.
func (c *client) stillPermitted(cmd *command, args [][]byte) bool {
	u := c.user.Load()
	p := u.Perms()
	if p.Unrestricted() {
		return true
	}
	if d, arg := denied(p, cmd, args); d != allowed {
		c.logDenial(u, d, cmd, arg)
		c.w.Error("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: " + d.message(u, cmd, nil))
		return false
	}
	return true
}

// logDenial records a refusal in ACL LOG.
func (c *client) logDenial(u *acl.User, d denial, cmd *command, arg []byte) {
	reason, object := "command", cmd.fullName
	switch d {
	case deniedKey:
		reason, object = "key", string(arg)
	case deniedChannel:
		reason, object = "channel", string(arg)
	}
	c.srv.acllog.add(c, reason, object, u.Name())
}

// reject writes a refusal; a refused EXEC aborts the transaction and a
// refusal inside MULTI makes EXEC fail, as in Redis.
func (c *client) reject(top *command, msg string) {
	if top.name == "exec" {
		c.multi = nil
		msg = "EXECABORT Transaction discarded because of: " + msg
	} else if c.multi != nil {
		c.multi.dirty = true
	}
	c.w.Error(msg)
}

type denial uint8

const (
	allowed denial = iota
	deniedCommand
	deniedKey
	deniedChannel
)

// message is Redis 7.2's NOPERM text (verbose, with the refused key or
// channel, for ACL DRYRUN).
func (d denial) message(u *acl.User, cmd *command, verboseArg []byte) string {
	switch {
	case d == deniedCommand:
		return fmt.Sprintf("User %s has no permissions to run the '%s' command", u.Name(), cmd.fullName)
	case d == deniedKey && verboseArg != nil:
		return fmt.Sprintf("User %s has no permissions to access the '%s' key", u.Name(), verboseArg)
	case d == deniedKey:
		return "No permissions to access a key"
	case verboseArg != nil:
		return fmt.Sprintf("User %s has no permissions to access the '%s' channel", u.Name(), verboseArg)
	}
	return "No permissions to access a channel"
}

// denied checks a command against permissions: the command, then the
// keys it reads (stream names: XRANGE, XREVRANGE, XLEN, XREAD), then the
// channels it publishes or subscribes to. It returns the refused argument.
func denied(p *acl.Perms, cmd *command, args [][]byte) (denial, []byte) {
	var first []byte
	if len(args) > 1 {
		first = args[1]
	}
	if !p.CanRun(cmd.acl, first) {
		return deniedCommand, nil
	}
	switch cmd.fullName {
	case "xlen":
		// Redis's key spec for XLEN does not read data (no ACCESS flag):
		// any pattern that matches allows it, %W~ included.
		if !p.KeyOK(args[1], 0) {
			return deniedKey, args[1]
		}
	case "xrange", "xrevrange":
		if !p.KeyOK(args[1], acl.KeyRead) {
			return deniedKey, args[1]
		}
	case "xread":
		for _, k := range xreadKeys(args) {
			if !p.KeyOK(k, acl.KeyRead) {
				return deniedKey, k
			}
		}
	case "publish", "spublish":
		if !p.ChannelOK(args[1], false) {
			return deniedChannel, args[1]
		}
	case "subscribe", "ssubscribe", "psubscribe":
		pattern := cmd.fullName == "psubscribe"
		for _, ch := range args[1:] {
			if !p.ChannelOK(ch, pattern) {
				return deniedChannel, ch
			}
		}
	}
	return allowed, nil
}

// xreadKeys are XREAD's stream names: the first half of the arguments
// after STREAMS (Redis's key spec).
func xreadKeys(args [][]byte) [][]byte {
	for i := 1; i < len(args); i++ {
		if bytes.EqualFold(args[i], []byte("streams")) {
			rest := args[i+1:]
			return rest[:len(rest)/2]
		}
	}
	return nil
}

// login makes the connection act as u from its next command.
func (c *client) login(u *acl.User) {
	c.user.Store(u)
	c.authed = true
}

// userName is the connection's user, for CLIENT LIST.
func (c *client) userName() string {
	if u := c.user.Load(); u != nil {
		return u.Name()
	}
	return "default"
}

// closeUsersClients disconnects the connections of deleted users, and the
// subscribers whose user lost a channel they are subscribed to (as Redis
// does on ACL SETUSER, DELUSER and LOAD). The current connection cur, if
// affected, is closed after its reply.
func (s *Server) closeUsersClients(cur *client, removed []*acl.User, changed []acl.Change) {
	lost := map[*acl.User]bool{}
	for _, ch := range changed {
		if ch.LostChannels() {
			lost[ch.User] = true
		}
	}
	if len(removed) == 0 && len(lost) == 0 {
		return
	}
	for _, o := range s.allClients() {
		u := o.user.Load()
		if !u.Deleted() && !(lost[u] && o.lostChannel(u.Perms())) {
			continue
		}
		if o == cur {
			cur.quitting, cur.finishAfterReply = true, true
			continue
		}
		s.log.Logf(logging.Info, "acl", "Closing client id=%d addr=%s: its user %s was removed or lost a channel", o.id, o.addr, u.Name())
		s.kill(o)
	}
}

// lostChannel reports a subscription p no longer allows.
func (c *client) lostChannel(p *acl.Perms) bool {
	c.srv.reg.mu.RLock()
	defer c.srv.reg.mu.RUnlock()
	for ch := range c.channels {
		if !p.ChannelOK([]byte(ch), false) {
			return true
		}
	}
	for ch := range c.shardChannels {
		if !p.ChannelOK([]byte(ch), false) {
			return true
		}
	}
	for pat := range c.patterns {
		if !p.ChannelOK([]byte(pat), true) {
			return true
		}
	}
	return false
}

// finishIfAsked closes the connection after this reply when an ACL change
// removed its own user (or a subscription of it).
func (c *client) finishIfAsked() {
	if c.finishAfterReply {
		c.flush()
		c.srv.reg.dropClient(c)
		c.finish()
	}
}

// deniedMessage is Redis's reply to a client refused by protected mode.
const deniedMessage = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"

// protectedModeDenies is protected mode's decision: with protected mode on
// and no password for the default user, only loopback clients are served.
func protectedModeDenies(protected, defaultNoPass bool, remote net.Addr) bool {
	if !protected || !defaultNoPass || remote == nil {
		return false
	}
	var ip net.IP
	switch a := remote.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UnixAddr:
		return false
	default:
		host, _, err := net.SplitHostPort(remote.String())
		if err != nil {
			host = remote.String()
		}
		ip = net.ParseIP(host)
	}
	return ip == nil || !ip.IsLoopback()
}

// refuseUnprotected answers a client that protected mode refuses, and
// reports whether it did.
func (s *Server) refuseUnprotected(nc net.Conn) bool {
	p := s.users.Default().Perms()
	if !protectedModeDenies(!s.protectedOff.Load(), p.NoPass() && p.Enabled(), nc.RemoteAddr()) {
		return false
	}
	s.stats.rejected.Add(1)
	nc.Write([]byte(deniedMessage))
	nc.Close()
	return true
}

// aclSource is everything the users are built from, to tell whether a
// reload changes them (a reload that does not keeps users made at run time
// by ACL SETUSER).
func aclSource(cfg *Config) string {
	src := cfg.RequirePass + "\x00" + strings.Join(cfg.Users, "\n") + "\x00" + cfg.ACLFile
	if cfg.ACLFile != "" {
		b, _ := os.ReadFile(cfg.ACLFile)
		src += "\x00" + string(b)
	}
	return src
}

// buildUsers makes the users the configuration describes: requirepass,
// then the users list or the ACL file.
func buildUsers(cfg *Config) (map[string]*acl.Perms, error) {
	defs, err := cfg.userDefs()
	if err != nil {
		return nil, err
	}
	where := func(i int) string { return fmt.Sprintf("users[%d]: ", i) }
	if cfg.ACLFile != "" {
		if defs, err = acl.LoadFile(cfg.ACLFile); err != nil {
			return nil, err
		}
		where = func(int) string { return cfg.ACLFile + ": " }
	}
	return acl.Build(aclTable, defs, cfg.RequirePass, where)
}

// installUsers replaces the users by set and disconnects whom the change
// requires.
func (s *Server) installUsers(cur *client, set map[string]*acl.Perms) {
	changed, removed := s.users.Replace(set)
	s.closeUsersClients(cur, removed, changed)
}
