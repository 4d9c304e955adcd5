package acl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// User is a user as connections hold it: its name and its current
// permissions, replaced (never modified) by ACL SETUSER, ACL LOAD or a
// configuration reload, so that a connection sees a change at its next
// command.
type User struct {
	name    string
	perms   atomic.Pointer[Perms]
	deleted atomic.Bool
}

// Name is the user's name.
func (u *User) Name() string { return u.name }

// Perms are the user's current permissions.
func (u *User) Perms() *Perms { return u.perms.Load() }

// Deleted reports a user removed by ACL DELUSER or a reload: its
// connections are closed.
func (u *User) Deleted() bool { return u.deleted.Load() }

// Users is the set of users. The default user always exists.
type Users struct {
	table  *Table
	mu     sync.Mutex
	byName map[string]*User
	def    *User
}

// NewUsers holds only the default user, with every permission and no
// password.
func NewUsers(t *Table) *Users {
	def := &User{name: "default"}
	def.perms.Store(defaultPerms(t))
	return &Users{table: t, byName: map[string]*User{"default": def}, def: def}
}

// Table is the command table permissions refer to.
func (s *Users) Table() *Table { return s.table }

// Default is the user new connections start as.
func (s *Users) Default() *User { return s.def }

// Get finds a user by name (nil if none).
func (s *Users) Get(name string) *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// Names lists the users, sorted.
func (s *Users) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// List is every user in ACL file syntax ("user alice on ..."), sorted by
// name (ACL LIST, ACL SAVE).
func (s *Users) List() []string {
	names := s.Names()
	out := make([]string, 0, len(names))
	for _, n := range names {
		if u := s.Get(n); u != nil {
			out = append(out, "user "+n+" "+u.Perms().Describe())
		}
	}
	return out
}

// Authenticate returns the user if the name and password match an enabled
// user, else nil.
func (s *Users) Authenticate(name, pass []byte) *User {
	u := s.Get(string(name))
	if u == nil {
		return nil
	}
	p := u.Perms()
	if !p.enabled || !p.passwordOK(pass) {
		return nil
	}
	return u
}

// SetUser creates or changes a user by rules, all or nothing (ACL
// SETUSER). It returns the user and its permissions before the change
// (nil for a new user). A *RuleError names the first rule that failed.
func (s *Users) SetUser(name string, ops []string) (*User, *Perms, error) {
	if err := checkSelectors(ops); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byName[name]
	var old, p *Perms
	if u != nil {
		old = u.Perms()
		p = old.clone()
	} else {
		p = newPerms(s.table)
	}
	for _, op := range ops {
		if err := p.apply(op); err != nil {
			return nil, nil, err
		}
	}
	p.seal()
	if u == nil {
		u = &User{name: name}
		s.byName[name] = u
	}
	u.perms.Store(p)
	return u, old, nil
}

// SetDefaultPassword applies requirepass: the default user's passwords are
// replaced by pass, or it becomes nopass when pass is empty.
func (s *Users) SetDefaultPassword(pass string) {
	ops := []string{"resetpass", "nopass"}
	if pass != "" {
		ops[1] = ">" + pass
	}
	s.SetUser("default", ops)
}

// Delete removes users (not the default one) and returns those removed;
// they are marked deleted, so their connections can be closed.
func (s *Users) Delete(names []string) []*User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*User
	for _, n := range names {
		if u := s.byName[n]; u != nil && u != s.def {
			delete(s.byName, n)
			u.deleted.Store(true)
			out = append(out, u)
		}
	}
	return out
}

// Change is one user whose permissions a Replace changed.
type Change struct {
	User *User
	Old  *Perms
}

// Replace installs a complete set of users (ACL LOAD, a configuration
// reload): users that exist in both keep their identity, so their
// connections stay and get the new permissions; users not in set are
// deleted.
func (s *Users) Replace(set map[string]*Perms) (changed []Change, removed []*User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, u := range s.byName {
		p, ok := set[name]
		if !ok && u != s.def {
			delete(s.byName, name)
			u.deleted.Store(true)
			removed = append(removed, u)
			continue
		}
		if !ok {
			p = defaultPerms(s.table)
		}
		changed = append(changed, Change{User: u, Old: u.Perms()})
		u.perms.Store(p)
	}
	for name, p := range set {
		if s.byName[name] == nil {
			u := &User{name: name}
			u.perms.Store(p)
			s.byName[name] = u
		}
	}
	return changed, removed
}

// LostChannels reports whether the change may have taken a channel away
// from the user's subscribers.
func (c Change) LostChannels() bool { return !c.User.Perms().channelsCover(c.Old) }

// Def is one user definition: a name and its rules.
type Def struct {
	Name string
	Ops  []string
}

// ParseDef parses "user <name> <rules...>" (the leading "user" keyword
// may be left out when optional is true, as in the YAML users list).
func ParseDef(line string, optionalKeyword bool) (Def, error) {
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "user" && len(f) >= 2 {
		f = f[1:]
	} else if !optionalKeyword || len(f) == 0 {
		return Def{}, fmt.Errorf("should start with user keyword followed by the username")
	}
	if err := checkSelectors(f[1:]); err != nil {
		return Def{}, err
	}
	return Def{Name: f[0], Ops: f[1:]}, nil
}

func checkSelectors(ops []string) error {
	for _, op := range ops {
		if strings.HasPrefix(op, "(") {
			return &RuleError{Op: op, Msg: msgNoSelectors}
		}
	}
	return nil
}

// Build turns definitions into a set of users for Replace. The default
// user starts with every permission, then requirepass (if not empty)
// sets its password, unless defs define "default". Every error is reported,
// prefixed by where(i) for definition i.
func Build(t *Table, defs []Def, requirePass string, where func(i int) string) (map[string]*Perms, error) {
	set := map[string]*Perms{}
	def := defaultPerms(t).clone()
	if requirePass != "" {
		def.apply("resetpass")
		def.apply(">" + requirePass)
	}
	def.seal()
	set["default"] = def
	var errs []string
	seen := map[string]bool{}
	for i, d := range defs {
		if seen[d.Name] {
			errs = append(errs, fmt.Sprintf("%sDuplicate user '%s' found", where(i), d.Name))
			continue
		}
		seen[d.Name] = true
		// A definition of the default user replaces it, requirepass
		// included, as an aclfile's does in Redis.
		p := newPerms(t)
		for _, op := range d.Ops {
			if err := p.apply(op); err != nil {
				errs = append(errs, fmt.Sprintf("%sError in applying operation '%s': %s", where(i), op, err))
				break
			}
		}
		p.seal()
		set[d.Name] = p
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, ". "))
	}
	return set, nil
}

// LoadFile reads an ACL file: one "user <name> <rules...>" per line, empty
// lines allowed (Redis's aclfile format).
func LoadFile(path string) ([]Def, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("Error loading ACLs, opening file '%s': %v", path, err)
	}
	var defs []Def
	var errs []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		d, err := ParseDef(line, false)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d %v", path, i+1, err))
			continue
		}
		defs = append(defs, d)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, ". "))
	}
	return defs, nil
}

// SaveFile writes the users to path in ACL file syntax, atomically (a
// synced temporary file renamed over the old one).
func (s *Users) SaveFile(path string) error {
	data := strings.Join(s.List(), "\n") + "\n"
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
