package main

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// SIGHUP rereads the configuration and changes the log level while the
// node runs; a broken file is reported and changes nothing; the node
// never stops for it (Go's default for SIGHUP is to exit).
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	port := testkit.FreePort(t)
	cfg := writeFile(t, "n.yml", "log_level: info\n")
	p := startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--config", cfg)...)
	c := testkit.Dial(t, p.Addr)
	if v := c.Do("PUBLISH", "ch", "quiet"); v.Err() != nil {
		t.Fatal(v)
	}
	if strings.Contains(p.Logs(), "Delivering seq_no=1") {
		t.Fatal("a debug line at log level info")
	}
	if err := os.WriteFile(cfg, []byte("log_level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLog("SIGHUP: configuration reloaded; log level DEBUG")
	if v := c.Do("PUBLISH", "ch", "loud"); v.Err() != nil {
		t.Fatal(v)
	}
	p.WaitLog("Delivering seq_no=2")

	if err := os.WriteFile(cfg, []byte("log_level: chatty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitLog("SIGHUP: configuration not reloaded")
	if v := c.Do("PUBLISH", "ch", "still up"); v.Err() != nil || p.Exited() {
		t.Fatalf("after SIGHUPs: %v (exited %v)", v, p.Exited())
	}
	p.WaitLog("Delivering seq_no=3") // still at debug
}
