// Package acl is ordo's access control, Redis 7's ACL model: users with
// passwords (stored as SHA-256 hashes), command permissions by command,
// subcommand and category, key patterns and Pub/Sub channel patterns, set
// with Redis's rule language (on, >pass, +@pubsub, &orders:*, ...) and
// described back in the same language (ACL LIST, ACL GETUSER, ACL SAVE).
//
// The package knows commands only through a Table the broker builds from
// its command table; it produces no Redis reply bytes. Checks are
// read-only on an immutable Perms snapshot, so a connection checks a
// command with two atomic loads and no allocation, and a user with every
// permission (Redis's default user) skips the checks altogether.
package acl

import (
	"sort"
	"strings"
)

// Category is a set of ACL command categories (@pubsub, @admin, ...).
type Category uint32

// The categories, in Redis's order (ACL CAT, COMMAND INFO).
const (
	Keyspace Category = 1 << iota
	Read
	Write
	Set
	SortedSet
	List
	Hash
	String
	Bitmap
	HyperLogLog
	Geo
	Stream
	Pubsub
	Admin
	Fast
	Slow
	Blocking
	Dangerous
	Connection
	Transaction
	Scripting
)

var categoryNames = []string{"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
	"bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
	"dangerous", "connection", "transaction", "scripting"}

// CategoryNames lists every category, in Redis's order.
func CategoryNames() []string { return append([]string(nil), categoryNames...) }

// CategoryByName finds a category by name, case-insensitively.
func CategoryByName(name string) (Category, bool) {
	for i, n := range categoryNames {
		if strings.EqualFold(n, name) {
			return 1 << i, true
		}
	}
	return 0, false
}

// Names lists the categories in c, in Redis's order.
func (c Category) Names() []string {
	var out []string
	for i, n := range categoryNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Command is what the ACL knows of one command or subcommand.
type Command struct {
	// Name is the full lower-case name: "publish", "client|list".
	Name       string
	Categories Category
	// NoAuth: runs before authentication and without a permission check
	// (AUTH, HELLO, QUIT, RESET; Redis's no_auth flag).
	NoAuth bool
	Subs   []*Command

	id     int
	parent *Command
}

// Table is the set of commands permissions refer to. Build it once with
// NewTable; it is read-only afterwards.
type Table struct {
	byName map[string]*Command
	all    []*Command // by id
}

// NewTable indexes the commands (and their subcommands) and gives each a
// bit in the permission bitmaps.
func NewTable(cmds []*Command) *Table {
	t := &Table{byName: map[string]*Command{}}
	sorted := append([]*Command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var add func(c, parent *Command)
	add = func(c, parent *Command) {
		c.id = len(t.all)
		c.parent = parent
		t.all = append(t.all, c)
		t.byName[c.Name] = c
		sort.Slice(c.Subs, func(i, j int) bool { return c.Subs[i].Name < c.Subs[j].Name })
		for _, s := range c.Subs {
			add(s, c)
		}
	}
	for _, c := range sorted {
		add(c, nil)
	}
	return t
}

// Lookup finds a command by its full name ("client|list"),
// case-insensitively.
func (t *Table) Lookup(name string) *Command { return t.byName[strings.ToLower(name)] }

// InCategory lists the commands and subcommands of a category, by name
// (ACL CAT <category>).
func (t *Table) InCategory(cat Category) []string {
	var out []string
	for _, c := range t.all {
		if c.Categories&cat != 0 {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (t *Table) words() int { return (len(t.all) + 63) / 64 }
