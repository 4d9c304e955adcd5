package broker

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

func cmdClientID(c *client, _ [][]byte) { c.w.Int(c.id) }

func cmdClientSetname(c *client, args [][]byte) {
	if !validName(args[2]) {
		c.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	c.name.Store(string(args[2]))
	c.w.OK()
}

func cmdClientGetname(c *client, _ [][]byte) {
	if n := c.getName(); n != "" {
		c.w.BulkString(n)
		return
	}
	c.w.Null()
}

func cmdClientSetinfo(c *client, args [][]byte) {
	attr := strings.ToLower(string(args[2]))
	if attr != "lib-name" && attr != "lib-ver" {
		c.w.Error(fmt.Sprintf("ERR Unrecognized option '%s'", args[2]))
		return
	}
	if !validName(args[3]) {
		c.w.Error(fmt.Sprintf("ERR %s cannot contain spaces, newlines or special characters.", attr))
		return
	}
	if attr == "lib-name" {
		c.libName.Store(string(args[3]))
	} else {
		c.libVer.Store(string(args[3]))
	}
	c.w.OK()
}

func cmdClientReply(c *client, args [][]byte) {
	switch strings.ToLower(string(args[2])) {
	case "on":
		c.replies.off, c.replies.skip = false, false
		c.w.OK()
	case "off":
		c.replies.off = true
	case "skip":
		if !c.replies.off {
			c.replies.skipNext = true
		}
	default:
		c.w.Error("ERR syntax error")
	}
}

// info renders one CLIENT LIST line in Redis's field order.
func (c *client) info() string {
	now := time.Now()
	flags := "N"
	if c.subCount.Load() > 0 {
		flags = "P"
	}
	if c.monitoring.Load() {
		flags = "O"
	}
	cmd := "NULL"
	if lc := c.lastCmd.Load(); lc != nil {
		cmd = lc.fullName
	}
	resp := 2
	c.srv.reg.mu.RLock()
	if c.resp3 {
		resp = 3
	}
	sub, psub, ssub := len(c.channels), len(c.patterns), len(c.shardChannels)
	c.srv.reg.mu.RUnlock()
	omem := c.outputBytes()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=0 name=%s age=%d idle=%d flags=%s db=0 sub=%d psub=%d ssub=%d multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=%d tot-mem=%d events=r cmd=%s user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.id, c.addr, c.laddr, c.getName(),
		int64(now.Sub(c.created).Seconds()),
		(now.UnixNano()-c.lastActive.Load())/int64(time.Second),
		flags, sub, psub, ssub, omem, omem, cmd, c.userName(), resp,
		loadString(&c.libName), loadString(&c.libVer))
}

func cmdClientInfo(c *client, _ [][]byte) { c.w.Verbatim(c.info() + "\n") }

func cmdClientList(c *client, args [][]byte) {
	all := c.srv.allClients()
	var ids map[int64]bool
	typ := ""
	for i := 2; i < len(args); i++ {
		opt := strings.ToLower(string(args[i]))
		switch {
		case opt == "type" && i+1 < len(args):
			typ = strings.ToLower(string(args[i+1]))
			switch typ {
			case "normal", "pubsub", "master", "replica", "slave":
			default:
				c.w.Error(fmt.Sprintf("ERR Unknown client type '%s'", args[i+1]))
				return
			}
			i++
		case opt == "id" && i+1 < len(args):
			ids = map[int64]bool{}
			for i++; i < len(args); i++ {
				id, err := strconv.ParseInt(string(args[i]), 10, 64)
				if err != nil || id <= 0 {
					c.w.Error("ERR Invalid client ID")
					return
				}
				ids[id] = true
			}
		default:
			c.w.Error("ERR syntax error")
			return
		}
	}
	sortClients(all)
	var b strings.Builder
	for _, o := range all {
		if ids != nil && !ids[o.id] {
			continue
		}
		isPubsub := o.subCount.Load() > 0
		if (typ == "normal" && isPubsub) || (typ == "pubsub" && !isPubsub) || typ == "master" || typ == "replica" || typ == "slave" {
			continue
		}
		b.WriteString(o.info())
		b.WriteByte('\n')
	}
	c.w.Verbatim(b.String())
}

func sortClients(cs []*client) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].id < cs[j-1].id; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// cmdClientKill supports both forms: CLIENT KILL addr:port (replies OK or
// an error) and CLIENT KILL <filter> <value> ... (replies a count).
func cmdClientKill(c *client, args [][]byte) {
	if len(args) == 3 {
		addr := string(args[2])
		for _, o := range c.srv.allClients() {
			if o.addr == addr {
				c.srv.kill(o)
				c.w.OK()
				return
			}
		}
		c.w.Error("ERR No such client")
		return
	}
	if len(args)%2 != 0 {
		c.w.Error("ERR syntax error")
		return
	}
	var (
		id             int64
		addr, laddr    string
		typ, user      string
		skipMe               = true
		maxAge         int64 = -1
		haveID, haveMA bool
	)
	for i := 2; i < len(args); i += 2 {
		opt, val := strings.ToLower(string(args[i])), string(args[i+1])
		switch opt {
		case "id":
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil || v <= 0 {
				c.w.Error("ERR client-id should be greater than 0")
				return
			}
			id, haveID = v, true
		case "addr":
			addr = val
		case "laddr":
			laddr = val
		case "type":
			typ = strings.ToLower(val)
			switch typ {
			case "normal", "pubsub", "master", "replica", "slave":
			default:
				c.w.Error(fmt.Sprintf("ERR Unknown client type '%s'", val))
				return
			}
		case "user":
			user = val
		case "skipme":
			switch strings.ToLower(val) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				c.w.Error("ERR syntax error")
				return
			}
		case "maxage":
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				c.w.Error("ERR value is not an integer or out of range")
				return
			}
			maxAge, haveMA = v, true
		default:
			c.w.Error("ERR syntax error")
			return
		}
	}
	killUser := c.srv.users.Get(user)
	if user != "" && killUser == nil {
		c.w.Error(fmt.Sprintf("ERR No such user '%s'", user))
		return
	}
	killed := 0
	now := time.Now()
	for _, o := range c.srv.allClients() {
		isPubsub := o.subCount.Load() > 0
		switch {
		case haveID && o.id != id,
			addr != "" && o.addr != addr,
			killUser != nil && o.user.Load() != killUser,
			laddr != "" && o.laddr != laddr,
			typ == "normal" && isPubsub, typ == "pubsub" && !isPubsub,
			typ == "master" || typ == "replica" || typ == "slave",
			skipMe && o == c,
			haveMA && int64(now.Sub(o.created).Seconds()) < maxAge:
			continue
		}
		if o == c {
			// Redis closes the caller after replying.
			c.quitting = true
			c.finishAfterReply = true
		} else {
			c.srv.kill(o)
		}
		killed++
	}
	c.w.Int(int64(killed))
	if c.finishAfterReply {
		c.flush()
		c.srv.reg.dropClient(c)
		c.finish()
	}
}

// kill disconnects another client; its subscriptions are gone on return.
func (s *Server) kill(o *client) {
	s.reg.dropClient(o)
	o.close()
}

var clientHelp = []string{
	"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CACHING (YES|NO)",
	"    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
	"GETREDIR",
	"    Return the client ID we are redirecting to when tracking is enabled.",
	"GETNAME",
	"    Return the name of the current connection.",
	"ID",
	"    Return the ID of the current connection.",
	"INFO",
	"    Return information about the current client connection.",
	"KILL <ip:port>",
	"    Kill connection made from <ip:port>.",
	"KILL <option> <value> [<option> <value> [...]]",
	"    Kill connections. Options are:",
	"    * ADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made from the specified address",
	"    * LADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made to specified local address",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Kill connections by type.",
	"    * USER <username>",
	"      Kill connections authenticated by <username>.",
	"    * SKIPME (YES|NO)",
	"      Skip killing current connection (default: yes).",
	"    * ID <client-id>",
	"      Kill connections by client id.",
	"    * MAXAGE <maxage>",
	"      Kill connections older than the specified age.",
	"LIST [options ...]",
	"    Return information about client connections. Options:",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Return clients of specified type.",
	"REPLY (ON|OFF|SKIP)",
	"    Control the replies sent to the current connection.",
	"SETNAME <name>",
	"    Assign the name <name> to the current connection.",
	"SETINFO <option> <value>",
	"    Set client meta attr. Options are:",
	"    * LIB-NAME: the client lib name.",
	"    * LIB-VER: the client lib version.",
	"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
	"         [OPTIN] [OPTOUT] [NOLOOP]",
	"    Control server assisted client side caching.",
	"TRACKINGINFO",
	"    Report tracking status for the current connection.",
	"HELP",
	"    Print this help.",
}
