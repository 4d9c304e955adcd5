package main

import (
	"os"
	"syscall"
	"testing"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// Users come from the YAML file (a list in ACL file syntax), and SIGHUP
// after editing the file changes a connected user's rights; the node
// never stops for it.
func TestSIGHUPReloadsUsers(t *testing.T) {
	port := testkit.FreePort(t)
	const before = "requirepass: adminpw\nusers:\n  - alice on >secret +publish &orders:*\n"
	cfg := writeFile(t, "n.yml", before)
	p := startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--config", cfg)...)
	c := testkit.Dial(t, p.Addr)
	if v := c.Do("PUBLISH", "orders:1", "x"); v.Err() == nil || v.Err().Error() != "NOAUTH Authentication required." {
		t.Fatalf("before AUTH: %v", v)
	}
	if v := c.Do("AUTH", "alice", "secret"); v.Err() != nil {
		t.Fatal(v)
	}
	if v := c.Do("PUBLISH", "news", "x"); v.Err() == nil || v.Err().Error() != "NOPERM No permissions to access a channel" {
		t.Fatalf("PUBLISH news before the reload: %v", v)
	}
	// Alice gets &news.
	if err := os.WriteFile(cfg, []byte("requirepass: adminpw\nusers:\n  - alice on >secret +publish &orders:* &news\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLog("SIGHUP: configuration reloaded")
	if v := c.Do("PUBLISH", "news", "x"); v.Err() != nil {
		t.Fatalf("PUBLISH news after the reload: %v", v)
	}
	// A broken user definition is reported and changes nothing.
	if err := os.WriteFile(cfg, []byte("users:\n  - alice on +nosuch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLog("SIGHUP: configuration not reloaded")
	if v := c.Do("PUBLISH", "news", "y"); v.Err() != nil || p.Exited() {
		t.Fatalf("after a bad reload: %v (exited %v)", v, p.Exited())
	}
}
