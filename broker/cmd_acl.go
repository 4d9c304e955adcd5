package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ordo-broker/ordo/broker/acl"
	"github.com/ordo-broker/ordo/broker/logging"
)

// The ACL command, as Redis 7.2.

func aclSubcommands() map[string]*command {
	return subs(
		sub("cat", -2, cmdACLCat),
		adminSub("deluser", -3, cmdACLDeluser),
		adminSub("dryrun", -4, cmdACLDryrun),
		sub("genpass", -2, cmdACLGenpass),
		adminSub("getuser", 3, cmdACLGetuser),
		adminSub("list", 2, cmdACLList),
		adminSub("load", 2, cmdACLLoad),
		adminSub("log", -2, cmdACLLog),
		adminSub("save", 2, cmdACLSave),
		adminSub("setuser", -3, cmdACLSetuser),
		adminSub("users", 2, cmdACLUsers),
		sub("whoami", 2, cmdACLWhoami),
		sub("help", 2, helpFn("ACL", aclHelp)),
	)
}

// aclSyntaxError is Redis's reply to an ACL subcommand with a wrong
// number of arguments that its arity allows.
func aclSyntaxError(c *client, args [][]byte) {
	c.w.Error(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%.128s'. Try ACL HELP.", args[1]))
}

func cmdACLCat(c *client, args [][]byte) {
	switch len(args) {
	case 2:
		c.w.Array(len(acl.CategoryNames()))
		for _, n := range acl.CategoryNames() {
			c.w.BulkString(n)
		}
	case 3:
		cat, ok := acl.CategoryByName(string(args[2]))
		if !ok {
			c.w.Error(fmt.Sprintf("ERR Unknown category '%.128s'", args[2]))
			return
		}
		names := aclTable.InCategory(cat)
		c.w.Array(len(names))
		for _, n := range names {
			c.w.BulkString(n)
		}
	default:
		aclSyntaxError(c, args)
	}
}

func cmdACLWhoami(c *client, _ [][]byte) { c.w.BulkString(c.userName()) }

func cmdACLUsers(c *client, _ [][]byte) {
	names := c.srv.users.Names()
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
}

func cmdACLList(c *client, _ [][]byte) {
	list := c.srv.users.List()
	c.w.Array(len(list))
	for _, l := range list {
		c.w.BulkString(l)
	}
}

func cmdACLGetuser(c *client, args [][]byte) {
	u := c.srv.users.Get(string(args[2]))
	if u == nil {
		c.w.Null()
		return
	}
	p := u.Perms()
	c.w.Map(6)
	c.w.BulkString("flags")
	flags := p.Flags()
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.BulkString(f)
	}
	c.w.BulkString("passwords")
	pw := p.Passwords()
	c.w.Array(len(pw))
	for _, h := range pw {
		c.w.BulkString(h)
	}
	for _, kv := range [][2]string{{"commands", p.CommandRules()}, {"keys", p.Keys()}, {"channels", p.Channels()}} {
		c.w.BulkString(kv[0])
		c.w.BulkString(kv[1])
	}
	c.w.BulkString("selectors")
	c.w.Array(0)
}

func cmdACLSetuser(c *client, args [][]byte) {
	name := string(args[2])
	if strings.ContainsAny(name, " \t\n\v\f\r\x00") {
		c.w.Error("ERR Usernames can't contain spaces or null characters")
		return
	}
	ops := make([]string, 0, len(args)-3)
	for _, a := range args[3:] {
		ops = append(ops, string(a))
	}
	u, old, err := c.srv.users.SetUser(name, ops)
	var re *acl.RuleError
	if errors.As(err, &re) {
		c.w.Error(fmt.Sprintf("ERR Error in ACL SETUSER modifier '%s': %s", re.Op, re.Msg))
		return
	}
	c.w.OK()
	if old != nil {
		c.srv.closeUsersClients(c, nil, []acl.Change{{User: u, Old: old}})
		c.finishIfAsked()
	}
}

func cmdACLDeluser(c *client, args [][]byte) {
	names := make([]string, 0, len(args)-2)
	for _, a := range args[2:] {
		if string(a) == "default" {
			c.w.Error("ERR The 'default' user cannot be removed")
			return
		}
		names = append(names, string(a))
	}
	removed := c.srv.users.Delete(names)
	c.w.Int(int64(len(removed)))
	c.srv.closeUsersClients(c, removed, nil)
	c.finishIfAsked()
}

func cmdACLDryrun(c *client, args [][]byte) {
	u := c.srv.users.Get(string(args[2]))
	if u == nil {
		c.w.Error(fmt.Sprintf("ERR User '%s' not found", args[2]))
		return
	}
	cargs := args[3:]
	cmd := findCommand(commandTable, cargs[0])
	if cmd != nil && cmd.subs != nil && len(cargs) > 1 {
		cmd = findCommand(cmd.subs, cargs[1])
	}
	if cmd == nil {
		c.w.Error(fmt.Sprintf("ERR Command '%s' not found", cargs[0]))
		return
	}
	if !arityOK(cmd.arity, len(cargs)) {
		c.w.Error(fmt.Sprintf("ERR wrong number of arguments for '%s' command", cmd.fullName))
		return
	}
	if d, arg := denied(u.Perms(), cmd, cargs); d != allowed {
		if arg == nil {
			arg = cargs[0]
		}
		c.w.BulkString(d.message(u, cmd, arg))
		return
	}
	c.w.OK()
}

func cmdACLGenpass(c *client, args [][]byte) {
	bits := int64(256)
	switch len(args) {
	case 2:
	case 3:
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			c.w.Error("ERR value is not an integer or out of range")
			return
		}
		bits = n
	default:
		aclSyntaxError(c, args)
		return
	}
	if bits <= 0 || bits > 4096 {
		c.w.Error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
		return
	}
	b := make([]byte, 512)
	rand.Read(b)
	c.w.BulkString(hex.EncodeToString(b)[:(bits+3)/4])
}

func cmdACLLog(c *client, args [][]byte) {
	count := int64(10)
	switch len(args) {
	case 2:
	case 3:
		if strings.EqualFold(string(args[2]), "reset") {
			c.srv.acllog.reset()
			c.w.OK()
			return
		}
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			c.w.Error("ERR value is not an integer or out of range")
			return
		}
		count = max(min(n, aclLogMaxLen), 0)
	default:
		aclSyntaxError(c, args)
		return
	}
	c.srv.acllog.write(c, int(count))
}

const noACLFile = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."

func (s *Server) aclFile() (path, requirePass string) {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.cfg.ACLFile, s.cfg.RequirePass
}

func cmdACLLoad(c *client, _ [][]byte) {
	path, pass := c.srv.aclFile()
	if path == "" {
		c.w.Error(noACLFile)
		return
	}
	defs, err := acl.LoadFile(path)
	var set map[string]*acl.Perms
	if err == nil {
		set, err = acl.Build(aclTable, defs, pass, func(int) string { return path + ": " })
	}
	if err != nil {
		c.w.Error(sanitize("ERR " + err.Error() + ". WARNING: ACL errors detected, no change to the previously active ACL rules was performed"))
		return
	}
	c.w.OK()
	c.srv.installUsers(c, set)
	c.finishIfAsked()
}

func cmdACLSave(c *client, _ [][]byte) {
	path, _ := c.srv.aclFile()
	if path == "" {
		c.w.Error(noACLFile)
		return
	}
	if err := c.srv.users.SaveFile(path); err != nil {
		c.srv.log.Logf(logging.Warn, "acl", "ACL SAVE to %s failed: %v", path, err)
		c.w.Error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
		return
	}
	c.w.OK()
}

var aclHelp = []string{
	"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CAT [<category>]",
	"    List all commands that belong to <category>, or all command categories",
	"    when no category is specified.",
	"DELUSER <username> [<username> ...]",
	"    Delete a list of users.",
	"DRYRUN <username> <command> [<arg> ...]",
	"    Returns whether the user can execute the given command without executing the command.",
	"GETUSER <username>",
	"    Get the user's details.",
	"GENPASS [<bits>]",
	"    Generate a secure 256-bit user password. The optional `bits` argument can",
	"    be used to specify a different size.",
	"LIST",
	"    Show users details in config file format.",
	"LOAD",
	"    Reload users from the ACL file.",
	"LOG [<count> | RESET]",
	"    Show the ACL log entries.",
	"SAVE",
	"    Save the current config to the ACL file.",
	"SETUSER <username> <attribute> [<attribute> ...]",
	"    Create or modify a user with the specified attributes.",
	"USERS",
	"    List all the registered usernames.",
	"WHOAMI",
	"    Return the current connection username.",
	"HELP",
	"    Prints this help.",
}

// configSetAccess applies CONFIG SET for the access settings that can
// change at run time. It reports whether name is one of them.
func (c *client) configSetAccess(name string, value []byte) bool {
	s := c.srv
	switch name {
	case "requirepass":
		s.cfgMu.Lock()
		s.cfg.RequirePass = string(value)
		s.cfgMu.Unlock()
		s.users.SetDefaultPassword(string(value))
	case "protected-mode":
		on, err := parseBool(string(value))
		if err != nil {
			c.w.Error("ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'")
			return true
		}
		s.cfgMu.Lock()
		s.cfg.ProtectedModeOff = !on
		s.cfgMu.Unlock()
		s.protectedOff.Store(!on)
	default:
		return false
	}
	c.w.OK()
	return true
}

// Reload applies the settings of cfg that can change while the node runs
// (SIGHUP): the users (requirepass, users, aclfile: rebuilt only if one
// of them or the ACL file changed, so users made by ACL SETUSER survive
// other reloads), protected mode, and the limits max_clients,
// max_message_size, max_pending_request_bytes, the output buffer limits
// and max_client_buffers. Other settings
// are ignored. On error nothing changes.
func (s *Server) Reload(cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	src := aclSource(&cfg)
	s.cfgMu.RLock()
	aclChanged := src != s.aclSrc
	s.cfgMu.RUnlock()
	var set map[string]*acl.Perms
	if aclChanged {
		var err error
		if set, err = buildUsers(&cfg); err != nil {
			return err
		}
	}
	s.cfgMu.Lock()
	lim := s.cfg.Limits
	lim.MaxClients = cfg.Limits.MaxClients
	lim.MaxMessageBytes = min(cfg.Limits.MaxMessageBytes, lim.MaxRequestBytes)
	lim.PubsubHardBytes = cfg.Limits.PubsubHardBytes
	lim.PubsubSoftBytes = cfg.Limits.PubsubSoftBytes
	lim.PubsubSoftDuration = cfg.Limits.PubsubSoftDuration
	lim.MaxPendingRequestBytes = cfg.Limits.MaxPendingRequestBytes
	lim.NormalHardBytes = cfg.Limits.NormalHardBytes
	lim.NormalSoftBytes = cfg.Limits.NormalSoftBytes
	lim.NormalSoftDuration = cfg.Limits.NormalSoftDuration
	lim.MaxClientBuffers = cfg.Limits.MaxClientBuffers
	s.cfg.Limits = lim
	s.cfg.ProtectedModeOff = cfg.ProtectedModeOff
	s.cfg.RequirePass, s.cfg.Users, s.cfg.ACLFile = cfg.RequirePass, cfg.Users, cfg.ACLFile
	s.aclSrc = src
	s.cfgMu.Unlock()
	s.limits.Store(&lim)
	s.reqBudget.setLimit(lim.MaxPendingRequestBytes)
	s.protectedOff.Store(cfg.ProtectedModeOff)
	if aclChanged {
		s.installUsers(nil, set)
		s.log.Logf(logging.Info, "acl", "Users reloaded: %s", strings.Join(s.users.Names(), ", "))
	}
	return nil
}
