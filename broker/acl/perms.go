package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"unsafe"

	"github.com/ordo-broker/ordo/broker/glob"
)

// KeyPerm is the access a key pattern grants (%R~, %W~, ~).
type KeyPerm uint8

const (
	KeyRead  KeyPerm = 1
	KeyWrite KeyPerm = 2
	keyAll           = KeyRead | KeyWrite
)

type keyPattern struct {
	pattern string
	perm    KeyPerm
}

// Perms is one user's definition at one moment: flags, password hashes and
// its (root) selector's commands, keys and channels. A published Perms is
// never modified: a change builds a new one, so checks need no lock.
type Perms struct {
	table     *Table
	enabled   bool
	nopass    bool
	sanitize  string // "", "sanitize-payload" or "skip-sanitize-payload" (accepted and shown, no effect)
	passwords []string

	// allCommands is Redis's ALLCOMMANDS flag: set by +@all, cleared as
	// soon as any command is removed. future is the reserved bit +@all
	// sets: the description then starts from +@all rather than -@all.
	allCommands bool
	future      bool
	cmds        []uint64
	firstArgs   map[int][]string
	// rules are the command rules since the last +@all/-@all, in order,
	// an overridden rule removed (Redis 7.2's command_rules): what ACL
	// LIST shows after the +@all/-@all.
	rules []string

	allKeys     bool
	keys        []keyPattern
	allChannels bool
	channels    []string

	unrestricted bool
}

// newPerms is a new user: off, no password, no permission (Redis 7's
// acl-pubsub-default is resetchannels).
func newPerms(t *Table) *Perms {
	return &Perms{table: t, cmds: make([]uint64, t.words())}
}

// defaultPerms is the default user before any rule: every permission and
// no password.
func defaultPerms(t *Table) *Perms {
	p := newPerms(t)
	for _, op := range []string{"+@all", "~*", "&*", "on", "nopass"} {
		if err := p.apply(op); err != nil {
			panic(err)
		}
	}
	p.seal()
	return p
}

func (p *Perms) clone() *Perms {
	q := *p
	q.passwords = append([]string(nil), p.passwords...)
	q.cmds = append([]uint64(nil), p.cmds...)
	q.rules = append([]string(nil), p.rules...)
	q.keys = append([]keyPattern(nil), p.keys...)
	q.channels = append([]string(nil), p.channels...)
	if p.firstArgs != nil {
		q.firstArgs = map[int][]string{}
		for k, v := range p.firstArgs {
			q.firstArgs[k] = append([]string(nil), v...)
		}
	}
	return &q
}

// seal computes what the checks read; call it before publishing.
func (p *Perms) seal() { p.unrestricted = p.allCommands && p.allKeys && p.allChannels }

// Unrestricted reports a user that may run every command on every key and
// channel (the default user unless changed): no check is needed.
func (p *Perms) Unrestricted() bool { return p.unrestricted }

// Enabled reports the user may authenticate ("on").
func (p *Perms) Enabled() bool { return p.enabled }

// NoPass reports that any password authenticates the user.
func (p *Perms) NoPass() bool { return p.nopass }

// CanRun reports whether the user may run cmd; firstArg is the command's
// first argument (nil if none), for "+select|0"-style rules.
func (p *Perms) CanRun(cmd *Command, firstArg []byte) bool {
	if p.allCommands || cmd.NoAuth || p.cmds[cmd.id/64]&(1<<(cmd.id%64)) != 0 {
		return true
	}
	if firstArg == nil {
		return false
	}
	for _, a := range p.firstArgs[cmd.id] {
		if strings.EqualFold(a, bstr(firstArg)) {
			return true
		}
	}
	return false
}

// ChannelOK reports whether the user may publish or subscribe to channel.
// A PSUBSCRIBE pattern (pattern true) must equal one of the user's channel
// patterns literally, as in Redis: "&orders:*" allows PSUBSCRIBE orders:*
// but not orders:?, which could not be checked against the rule.
func (p *Perms) ChannelOK(channel []byte, pattern bool) bool {
	if p.allChannels {
		return true
	}
	ch := bstr(channel)
	for _, pat := range p.channels {
		if (pattern && pat == ch) || (!pattern && glob.Match(pat, ch)) {
			return true
		}
	}
	return false
}

// KeyOK reports whether the user may access key with the given access.
func (p *Perms) KeyOK(key []byte, perm KeyPerm) bool {
	if p.allKeys {
		return true
	}
	k := bstr(key)
	for _, kp := range p.keys {
		if kp.perm&perm == perm && glob.Match(kp.pattern, k) {
			return true
		}
	}
	return false
}

// passwordOK compares the password's hash with each stored hash in
// constant time.
func (p *Perms) passwordOK(pass []byte) bool {
	if p.nopass {
		return true
	}
	h := HashPassword(pass)
	ok := false
	for _, s := range p.passwords {
		if subtle.ConstantTimeCompare([]byte(h), []byte(s)) == 1 {
			ok = true
		}
	}
	return ok
}

// bstr views b as a string for the duration of a call that does not keep
// it (the checks run per command; restricted users should not allocate).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// HashPassword is Redis's password hash: SHA-256 in lower-case hex.
func HashPassword(pass []byte) string {
	h := sha256.Sum256(pass)
	return hex.EncodeToString(h[:])
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < 'a' || c > 'f') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// RuleError is a rule that cannot be applied; Msg is Redis's text for it.
type RuleError struct {
	Op  string
	Msg string
}

func (e *RuleError) Error() string { return e.Msg }

// Redis's texts for rule errors (ACLSetUserStringError).
const (
	msgUnknown          = "Unknown command or category name in ACL"
	msgSyntax           = "Syntax error"
	msgKeyAfterAll      = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	msgChannelAfterAll  = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	msgNoSuchPassword   = "The password you are trying to remove from the user does not exist"
	msgBadHash          = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	msgFirstArgOfSub    = "Allowing first-arg of a subcommand is not supported"
	msgNoSelectors      = "Selectors are not supported by ordo: give the permissions directly"
	msgUnmatchedSelecor = "Unmatched parenthesis in acl selector"
)

// apply changes p by one rule of Redis's ACL language (ACLSetUser).
func (p *Perms) apply(op string) error {
	fail := func(msg string) error { return &RuleError{Op: op, Msg: msg} }
	switch {
	case op == "":
		return nil
	case strings.EqualFold(op, "on"):
		p.enabled = true
	case strings.EqualFold(op, "off"):
		p.enabled = false
	case strings.EqualFold(op, "skip-sanitize-payload"), strings.EqualFold(op, "sanitize-payload"):
		p.sanitize = strings.ToLower(op)
	case strings.EqualFold(op, "nopass"):
		p.nopass, p.passwords = true, nil
	case strings.EqualFold(op, "resetpass"):
		p.nopass, p.passwords = false, nil
	case op[0] == '>' || op[0] == '#':
		h := op[1:]
		if op[0] == '>' {
			h = HashPassword([]byte(op[1:]))
		} else if !validHash(h) {
			return fail(msgBadHash)
		}
		if !contains(p.passwords, h) {
			p.passwords = append(p.passwords, h)
		}
		p.nopass = false
	case op[0] == '<' || op[0] == '!':
		h := op[1:]
		if op[0] == '<' {
			h = HashPassword([]byte(op[1:]))
		} else if !validHash(h) {
			return fail(msgBadHash)
		}
		i := index(p.passwords, h)
		if i < 0 {
			return fail(msgNoSuchPassword)
		}
		p.passwords = append(p.passwords[:i:i], p.passwords[i+1:]...)
	case op[0] == '(':
		return fail(msgNoSelectors)
	case strings.EqualFold(op, "clearselectors"):
		// No selectors besides the root one exist.
	case strings.EqualFold(op, "reset"):
		for _, r := range []string{"resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "-@all"} {
			p.apply(r)
		}
	default:
		return p.applySelector(op, fail)
	}
	return nil
}

// applySelector applies a command, key or channel rule (ACLSetSelector).
func (p *Perms) applySelector(op string, fail func(string) error) error {
	switch {
	case strings.EqualFold(op, "allkeys") || op == "~*":
		p.allKeys, p.keys = true, nil
	case strings.EqualFold(op, "resetkeys"):
		p.allKeys, p.keys = false, nil
	case strings.EqualFold(op, "allchannels") || op == "&*":
		p.allChannels, p.channels = true, nil
	case strings.EqualFold(op, "resetchannels"):
		p.allChannels, p.channels = false, nil
	case strings.EqualFold(op, "allcommands") || strings.EqualFold(op, "+@all"):
		p.setAll(true)
	case strings.EqualFold(op, "nocommands") || strings.EqualFold(op, "-@all"):
		p.setAll(false)
	case op[0] == '~' || op[0] == '%':
		if p.allKeys {
			return fail(msgKeyAfterAll)
		}
		perm, rest := keyAll, op[1:]
		if op[0] == '%' {
			perm = 0
			i := 1
			for ; i < len(op); i++ {
				c := op[i] &^ 0x20 // upper case
				switch {
				case c == 'R' && perm&KeyRead == 0:
					perm |= KeyRead
					continue
				case c == 'W' && perm&KeyWrite == 0:
					perm |= KeyWrite
					continue
				case op[i] == '~' && perm != 0:
				default:
					return fail(msgSyntax)
				}
				break
			}
			if i >= len(op) {
				return fail(msgSyntax)
			}
			rest = op[i+1:]
		}
		if hasSpace(rest) {
			return fail(msgSyntax)
		}
		for i := range p.keys {
			if p.keys[i].pattern == rest {
				p.keys[i].perm |= perm
				return nil
			}
		}
		p.keys = append(p.keys, keyPattern{pattern: rest, perm: perm})
	case op[0] == '&':
		if p.allChannels {
			return fail(msgChannelAfterAll)
		}
		if hasSpace(op[1:]) {
			return fail(msgSyntax)
		}
		if !contains(p.channels, op[1:]) {
			p.channels = append(p.channels, op[1:])
		}
	case len(op) >= 2 && (op[0] == '+' || op[0] == '-') && op[1] == '@':
		cat, ok := CategoryByName(op[2:])
		if !ok {
			return fail(msgUnknown)
		}
		allow := op[0] == '+'
		p.updateRules(op[1:], allow)
		for _, c := range p.table.all {
			if c.Categories&cat != 0 {
				p.changePerm(c, allow)
			}
		}
	case op[0] == '+':
		return p.allowCommand(op, fail)
	case op[0] == '-':
		cmd := p.table.Lookup(op[1:])
		if cmd == nil {
			return fail(msgUnknown)
		}
		p.changePerm(cmd, false)
		p.updateRules(cmd.Name, false)
	default:
		return fail(msgSyntax)
	}
	return nil
}

// allowCommand applies +command, +command|subcommand and
// +command|first-arg.
func (p *Perms) allowCommand(op string, fail func(string) error) error {
	bar := strings.LastIndexByte(op, '|')
	if bar < 0 {
		cmd := p.table.Lookup(op[1:])
		if cmd == nil {
			return fail(msgUnknown)
		}
		p.changePerm(cmd, true)
		p.updateRules(cmd.Name, true)
		return nil
	}
	cmd := p.table.Lookup(op[1:bar])
	switch {
	case cmd == nil:
		return fail(msgUnknown)
	case cmd.parent != nil:
		return fail(msgFirstArgOfSub)
	case bar == len(op)-1:
		return fail(msgSyntax)
	}
	if cmd.Subs != nil {
		sub := p.table.Lookup(op[1:])
		if sub == nil {
			return fail(msgUnknown)
		}
		p.changePerm(sub, true)
	} else {
		arg := op[bar+1:]
		if p.firstArgs == nil {
			p.firstArgs = map[int][]string{}
		}
		dup := false
		for _, a := range p.firstArgs[cmd.id] {
			dup = dup || strings.EqualFold(a, arg)
		}
		if !dup {
			p.firstArgs[cmd.id] = append(p.firstArgs[cmd.id], arg)
		}
	}
	p.updateRules(op[1:], true)
	return nil
}

func (p *Perms) setAll(allow bool) {
	var w uint64
	if allow {
		w = ^uint64(0)
	}
	for i := range p.cmds {
		p.cmds[i] = w
	}
	p.allCommands, p.future = allow, allow
	p.rules, p.firstArgs = nil, nil
}

func (p *Perms) setBit(id int, allow bool) {
	if allow {
		p.cmds[id/64] |= 1 << (id % 64)
	} else {
		p.cmds[id/64] &^= 1 << (id % 64)
		p.allCommands = false
	}
}

// changePerm allows or denies a command and, for a container, every
// subcommand.
func (p *Perms) changePerm(c *Command, allow bool) {
	p.setBit(c.id, allow)
	delete(p.firstArgs, c.id)
	for _, s := range c.Subs {
		p.setBit(s.id, allow)
	}
}

// updateRules records a command rule, dropping earlier rules it overrides
// (the same command, its subcommands or first-args, the same category).
func (p *Perms) updateRules(rule string, allow bool) {
	rule = strings.ToLower(rule)
	kept := p.rules[:0]
	for _, r := range p.rules {
		body := r[1:]
		if body == rule || (len(body) > len(rule) && body[:len(rule)] == rule && body[len(rule)] == '|') {
			continue
		}
		kept = append(kept, r)
	}
	sign := "-"
	if allow {
		sign = "+"
	}
	p.rules = append(kept, sign+rule)
}

// CommandRules describes the command permissions: +@all or -@all, then
// the rules given since, in order (ACL GETUSER's "commands").
func (p *Perms) CommandRules() string {
	s := "-@all"
	if p.future {
		s = "+@all"
	}
	for _, r := range p.rules {
		s += " " + r
	}
	return s
}

// Flags are the user's flags as ACL GETUSER lists them.
func (p *Perms) Flags() []string {
	f := []string{"off"}
	if p.enabled {
		f[0] = "on"
	}
	if p.nopass {
		f = append(f, "nopass")
	}
	if p.sanitize != "" {
		f = append(f, p.sanitize)
	}
	return f
}

// Passwords are the password hashes, in the order they were added.
func (p *Perms) Passwords() []string { return append([]string(nil), p.passwords...) }

// Keys describes the key patterns (ACL GETUSER's "keys").
func (p *Perms) Keys() string {
	if p.allKeys {
		return "~*"
	}
	parts := make([]string, len(p.keys))
	for i, k := range p.keys {
		parts[i] = keyPrefix(k.perm) + k.pattern
	}
	return strings.Join(parts, " ")
}

func keyPrefix(perm KeyPerm) string {
	switch perm {
	case KeyRead:
		return "%R~"
	case KeyWrite:
		return "%W~"
	}
	return "~"
}

// Channels describes the channel patterns (ACL GETUSER's "channels").
func (p *Perms) Channels() string {
	if p.allChannels {
		return "&*"
	}
	parts := make([]string, len(p.channels))
	for i, c := range p.channels {
		parts[i] = "&" + c
	}
	return strings.Join(parts, " ")
}

// Describe is the user's definition in ACL file syntax, without "user
// <name>" (ACL LIST, ACL SAVE).
func (p *Perms) Describe() string {
	var b strings.Builder
	for _, f := range p.Flags() {
		b.WriteString(f + " ")
	}
	for _, h := range p.passwords {
		b.WriteString("#" + h + " ")
	}
	if p.allKeys {
		b.WriteString("~* ")
	} else {
		for _, k := range p.keys {
			b.WriteString(keyPrefix(k.perm) + k.pattern + " ")
		}
	}
	if p.allChannels {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, c := range p.channels {
			b.WriteString("&" + c + " ")
		}
	}
	b.WriteString(p.CommandRules())
	return b.String()
}

// channelsCover reports whether every subscription the old permissions
// allowed is still allowed by p: if not, the user's subscribers must be
// checked (Redis disconnects those that lost a channel).
func (p *Perms) channelsCover(old *Perms) bool {
	if p.allChannels {
		return true
	}
	if old.allChannels {
		return false
	}
	for _, c := range old.channels {
		if !contains(p.channels, c) {
			return false
		}
	}
	return true
}

func hasSpace(s string) bool {
	return strings.ContainsAny(s, " \t\n\v\f\r\x00")
}

func contains(list []string, s string) bool { return index(list, s) >= 0 }

func index(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
