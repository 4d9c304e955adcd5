package acl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testTable() *Table {
	return NewTable([]*Command{
		{Name: "publish", Categories: Pubsub | Fast},
		{Name: "subscribe", Categories: Pubsub | Slow},
		{Name: "psubscribe", Categories: Pubsub | Slow},
		{Name: "ping", Categories: Fast | Connection},
		{Name: "select", Categories: Fast | Connection},
		{Name: "auth", Categories: Fast | Connection, NoAuth: true},
		{Name: "xrange", Categories: Read | Stream | Slow},
		{Name: "client", Categories: Slow, Subs: []*Command{
			{Name: "client|list", Categories: Admin | Slow | Dangerous | Connection},
			{Name: "client|kill", Categories: Admin | Slow | Dangerous | Connection},
			{Name: "client|id", Categories: Slow | Connection},
		}},
	})
}

func setUser(t *testing.T, s *Users, name string, rules string) *User {
	t.Helper()
	u, _, err := s.SetUser(name, strings.Fields(rules))
	if err != nil {
		t.Fatalf("SETUSER %s %s: %v", name, rules, err)
	}
	return u
}

// The command rules are kept in order, a later rule replacing an earlier
// one about the same command, subcommands or category (Redis 7.2).
func TestCommandRulesDescription(t *testing.T) {
	s := NewUsers(testTable())
	for _, c := range []struct{ rules, want string }{
		{"+@all -publish +publish", "+@all +publish"},
		{"-@all +@pubsub -@pubsub", "-@all -@pubsub"},
		{"-@all +client|list +client", "-@all +client"},
		{"-@all +client -client|kill", "-@all +client -client|kill"},
		{"-@all +PING +select|0 +select|1 +select|0", "-@all +ping +select|1 +select|0"},
		{"+@all -@all +@connection", "-@all +@connection"},
		{"allcommands -ping nocommands", "-@all"},
	} {
		u := setUser(t, s, "u", "reset "+c.rules)
		if got := u.Perms().CommandRules(); got != c.want {
			t.Errorf("%s: %q, want %q", c.rules, got, c.want)
		}
	}
}

func TestChecks(t *testing.T) {
	tab := testTable()
	s := NewUsers(tab)
	def := s.Default().Perms()
	if !def.Unrestricted() || !def.NoPass() {
		t.Fatalf("the default user must be unrestricted and nopass")
	}
	pub := setUser(t, s, "pub", "on >pw +publish &orders:* &news").Perms()
	if pub.Unrestricted() {
		t.Fatal("a restricted user is unrestricted")
	}
	for _, c := range []struct {
		cmd  string
		want bool
	}{{"publish", true}, {"subscribe", false}, {"auth", true}, {"client|list", false}} {
		if got := pub.CanRun(tab.Lookup(c.cmd), nil); got != c.want {
			t.Errorf("CanRun(%s) = %v", c.cmd, got)
		}
	}
	for _, c := range []struct {
		ch      string
		pattern bool
		want    bool
	}{{"orders:1", false, true}, {"news", false, true}, {"other", false, false},
		{"orders:*", true, true}, {"orders:?", true, false}, {"news", true, true}} {
		if got := pub.ChannelOK([]byte(c.ch), c.pattern); got != c.want {
			t.Errorf("ChannelOK(%q, pattern %v) = %v", c.ch, c.pattern, got)
		}
	}
	sel := setUser(t, s, "sel", "-@all +select|0 +client|id").Perms()
	if !sel.CanRun(tab.Lookup("select"), []byte("0")) || sel.CanRun(tab.Lookup("select"), []byte("1")) || sel.CanRun(tab.Lookup("select"), nil) {
		t.Error("first-arg rule +select|0")
	}
	if !sel.CanRun(tab.Lookup("client|id"), nil) || sel.CanRun(tab.Lookup("client|kill"), nil) {
		t.Error("subcommand rule +client|id")
	}
	k := setUser(t, s, "k", "%R~r:* %W~w:* ~a:*").Perms()
	for _, c := range []struct {
		key  string
		perm KeyPerm
		want bool
	}{{"r:1", KeyRead, true}, {"r:1", KeyWrite, false}, {"w:1", KeyRead, false}, {"w:1", 0, true}, {"a:1", KeyRead | KeyWrite, true}, {"b", 0, false}} {
		if got := k.KeyOK([]byte(c.key), c.perm); got != c.want {
			t.Errorf("KeyOK(%q, %d) = %v", c.key, c.perm, got)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	s := NewUsers(testTable())
	setUser(t, s, "alice", "on >secret >other")
	setUser(t, s, "bob", "off >secret")
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{{"alice", "secret", true}, {"alice", "other", true}, {"alice", "nope", false}, {"bob", "secret", false},
		{"nobody", "x", false}, {"default", "anything", true}} {
		if got := s.Authenticate([]byte(c.user), []byte(c.pass)) != nil; got != c.ok {
			t.Errorf("AUTH %s %s: %v", c.user, c.pass, got)
		}
	}
	s.SetDefaultPassword("pw")
	if s.Authenticate([]byte("default"), []byte("x")) != nil || s.Authenticate([]byte("default"), []byte("pw")) == nil {
		t.Error("requirepass")
	}
	// Only hashes are kept.
	for _, l := range s.List() {
		if strings.Contains(l, "secret") || strings.Contains(l, " pw") {
			t.Errorf("a clear-text password in %q", l)
		}
	}
	if got := s.Get("alice").Perms().Passwords()[0]; got != HashPassword([]byte("secret")) || len(got) != 64 {
		t.Errorf("stored %q", got)
	}
}

// A failing rule changes nothing (ACL SETUSER is all or nothing) and
// names the rule with Redis's text.
func TestSetUserAtomic(t *testing.T) {
	s := NewUsers(testTable())
	setUser(t, s, "a", "on +publish")
	_, _, err := s.SetUser("a", []string{"+subscribe", "+nosuch"})
	re, ok := err.(*RuleError)
	if !ok || re.Op != "+nosuch" || re.Msg != "Unknown command or category name in ACL" {
		t.Fatalf("err %v", err)
	}
	if got := s.Get("a").Perms().CommandRules(); got != "-@all +publish" {
		t.Errorf("after a failed SETUSER: %q", got)
	}
	if _, _, err := s.SetUser("b", []string{"(+ping)"}); err == nil {
		t.Error("selectors accepted")
	}
	if s.Get("b") != nil {
		t.Error("a failed SETUSER created the user")
	}
}

// Replace keeps users that stay (connections keep them and see the new
// rules), deletes the others, and reports lost channels.
func TestReplace(t *testing.T) {
	tab := testTable()
	s := NewUsers(tab)
	a := setUser(t, s, "a", "on nopass +subscribe &x &y")
	b := setUser(t, s, "b", "on nopass +subscribe &x")
	defs := []Def{{Name: "a", Ops: []string{"on", "nopass", "+subscribe", "&x"}}, {Name: "c", Ops: []string{"on"}}}
	set, err := Build(tab, defs, "pw", func(int) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	changed, removed := s.Replace(set)
	if len(removed) != 1 || removed[0] != b || !b.Deleted() {
		t.Fatalf("removed %v", removed)
	}
	if s.Get("a") != a || a.Perms().ChannelOK([]byte("y"), false) {
		t.Fatal("a must stay the same user with the new rules")
	}
	lost := 0
	for _, c := range changed {
		if c.LostChannels() {
			lost++
			if c.User != a {
				t.Errorf("%s lost channels", c.User.Name())
			}
		}
	}
	if lost != 1 || s.Get("c") == nil {
		t.Errorf("lost %d, c %v", lost, s.Get("c"))
	}
	if s.Authenticate([]byte("default"), []byte("pw")) == nil {
		t.Error("requirepass not applied by Build")
	}
	if _, err := Build(tab, []Def{{Name: "a"}, {Name: "a"}}, "", func(i int) string { return "" }); err == nil {
		t.Error("a duplicate user accepted")
	}
}

func TestACLFileRoundTrip(t *testing.T) {
	tab := testTable()
	path := filepath.Join(t.TempDir(), "users.acl")
	text := "user alice on >secret resetchannels &orders:* -@all +@pubsub\n\nuser default on nopass ~* &* +@all\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	defs, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Build(tab, defs, "", func(int) string { return path + ": " })
	if err != nil {
		t.Fatal(err)
	}
	s := NewUsers(tab)
	s.Replace(set)
	if err := s.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "user alice on #" + HashPassword([]byte("secret")) + " resetchannels &orders:* -@all +@pubsub\nuser default on nopass ~* &* +@all\n"
	if string(b) != want {
		t.Errorf("saved:\n%s\nwant:\n%s", b, want)
	}
	if err := os.WriteFile(path, []byte("# comment\nuser x on +nosuch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if defs, err := LoadFile(path); err == nil {
		if _, err = Build(tab, defs, "", func(int) string { return "" }); err == nil {
			t.Error("a bad file loaded")
		}
	}
}

func TestParseDef(t *testing.T) {
	for _, c := range []struct {
		line     string
		optional bool
		name     string
		ok       bool
	}{{"alice on >x", true, "alice", true}, {"user alice on", true, "alice", true}, {"user alice on", false, "alice", true},
		{"alice on", false, "", false}, {"", true, "", false}} {
		d, err := ParseDef(c.line, c.optional)
		if (err == nil) != c.ok || d.Name != c.name {
			t.Errorf("ParseDef(%q, %v) = %+v, %v", c.line, c.optional, d, err)
		}
	}
}

// The check for an unrestricted user, done on every command, does not
// allocate; nor do a restricted user's checks.
func TestChecksDoNotAllocate(t *testing.T) {
	tab := testTable()
	s := NewUsers(tab)
	u := setUser(t, s, "p", "on +publish &orders:*")
	pub := tab.Lookup("publish")
	ch := []byte("orders:1")
	if n := testing.AllocsPerRun(100, func() {
		p := s.Default().Perms()
		if !p.Unrestricted() {
			t.Fatal("restricted")
		}
		q := u.Perms()
		if !q.CanRun(pub, ch) || !q.ChannelOK(ch, false) {
			t.Fatal("denied")
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}
