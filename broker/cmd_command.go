package broker

import (
	"sort"
	"strings"
)

// COMMAND replies describe ordo's command table in Redis 7's shapes, which
// is what redis-cli and cluster-aware client libraries read.

func sortedCommands() []*command {
	cs := make([]*command, 0, len(commandTable))
	for _, c := range commandTable {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

func writeCommandInfo(c *client, cmd *command, fullName string) {
	c.w.Array(10)
	c.w.BulkString(fullName)
	c.w.Int(int64(cmd.arity))
	c.w.Set(len(cmd.cmdFlags))
	for _, f := range cmd.cmdFlags {
		c.w.Simple(f)
	}
	c.w.Int(int64(cmd.firstKey))
	c.w.Int(int64(cmd.lastKey))
	c.w.Int(int64(cmd.keyStep))
	cats := cmd.acl.Categories.Names()
	c.w.Set(len(cats))
	for _, n := range cats {
		c.w.Simple("@" + n)
	}
	c.w.Set(0) // tips
	c.w.Array(0)
	if cmd.subs == nil {
		c.w.Array(0)
		return
	}
	names := make([]string, 0, len(cmd.subs))
	for n := range cmd.subs {
		names = append(names, n)
	}
	sort.Strings(names)
	c.w.Array(len(names))
	for _, n := range names {
		writeCommandInfo(c, cmd.subs[n], cmd.name+"|"+n)
	}
}

func cmdCommand(c *client, _ [][]byte) {
	cs := sortedCommands()
	c.w.Array(len(cs))
	for _, cmd := range cs {
		writeCommandInfo(c, cmd, cmd.name)
	}
}

func cmdCommandCount(c *client, _ [][]byte) { c.w.Int(int64(len(commandTable))) }

func cmdCommandList(c *client, _ [][]byte) {
	cs := sortedCommands()
	c.w.Array(len(cs))
	for _, cmd := range cs {
		c.w.BulkString(cmd.name)
	}
}

func cmdCommandInfo(c *client, args [][]byte) {
	c.w.Array(len(args) - 2)
	for _, a := range args[2:] {
		name := strings.ToLower(string(a))
		top, sub, _ := strings.Cut(name, "|")
		cmd := commandTable[top]
		if cmd != nil && sub != "" {
			cmd = cmd.subs[sub]
		}
		if cmd == nil {
			c.w.NullArray()
			continue
		}
		writeCommandInfo(c, cmd, name)
	}
}

// commandDocs are the summaries redis-cli shows as hints.
var commandDocs = map[string][2]string{
	"publish":      {"Posts a message to a channel; ordo sequences it cluster-wide and logs it durably.", "pubsub"},
	"spublish":     {"Posts a message to a shard channel.", "pubsub"},
	"subscribe":    {"Listens for messages published to channels.", "pubsub"},
	"psubscribe":   {"Listens for messages published to channels that match one or more patterns.", "pubsub"},
	"ssubscribe":   {"Listens for messages published to shard channels.", "pubsub"},
	"unsubscribe":  {"Stops listening to messages posted to channels.", "pubsub"},
	"punsubscribe": {"Stops listening to messages published to channels that match one or more patterns.", "pubsub"},
	"sunsubscribe": {"Stops listening to messages posted to shard channels.", "pubsub"},
	"pubsub":       {"A container for Pub/Sub commands.", "pubsub"},
	"ping":         {"Returns the server's liveliness response.", "connection"},
	"echo":         {"Returns the given string.", "connection"},
	"quit":         {"Closes the connection.", "connection"},
	"reset":        {"Resets the connection.", "connection"},
	"hello":        {"Handshakes with the server (RESP2 or RESP3).", "connection"},
	"auth":         {"Authenticates the connection.", "connection"},
	"select":       {"Changes the selected database (only 0 exists).", "connection"},
	"client":       {"A container for client connection commands.", "connection"},
	"multi":        {"Starts a transaction.", "transactions"},
	"exec":         {"Executes all commands in a transaction.", "transactions"},
	"discard":      {"Discards a transaction.", "transactions"},
	"command":      {"Returns detailed information about all commands.", "server"},
	"config":       {"A container for server configuration commands.", "server"},
	"info":         {"Returns information and statistics about the server.", "server"},
	"status":       {"ordo: returns this node's role, term, leader and log positions.", "server"},
	"dbsize":       {"Returns the number of keys (always 0: ordo stores messages, not keys).", "server"},
	"time":         {"Returns the server time.", "server"},
	"xrange":       {"Returns a channel's logged messages within a range of IDs (<seq>-0).", "stream"},
	"xrevrange":    {"Returns a channel's logged messages within a range of IDs, in reverse order.", "stream"},
	"xlen":         {"Returns the number of logged messages of a channel.", "stream"},
	"xread":        {"Reads a channel's logged messages after an ID, optionally blocking: resume after a disconnect.", "stream"},
}

func cmdCommandDocs(c *client, args [][]byte) {
	var names []string
	if len(args) > 2 {
		for _, a := range args[2:] {
			n := strings.ToLower(string(a))
			if _, ok := commandDocs[n]; ok {
				names = append(names, n)
			}
		}
	} else {
		for n := range commandDocs {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	c.w.Map(len(names))
	for _, n := range names {
		d := commandDocs[n]
		c.w.BulkString(n)
		c.w.Map(3)
		c.w.BulkString("summary")
		c.w.BulkString(d[0])
		c.w.BulkString("since")
		c.w.BulkString("1.0.0")
		c.w.BulkString("group")
		c.w.BulkString(d[1])
	}
}

var commandHelp = []string{
	"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"(no subcommand)",
	"    Return details about all commands.",
	"COUNT",
	"    Return the total number of commands in this server.",
	"LIST",
	"    Return a list of all commands in this server.",
	"INFO [<command-name> ...]",
	"    Return details about multiple commands.",
	"DOCS [<command-name> ...]",
	"    Return documentation details about multiple commands.",
	"HELP",
	"    Print this help.",
}
