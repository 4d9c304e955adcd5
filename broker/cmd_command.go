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
