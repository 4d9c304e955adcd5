package main

import (
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// SHUTDOWN stops the node gracefully: the connection closes without a
// reply (as in Redis), the process exits 0 and says why, and what was
// acknowledged before is still there after a restart.
func TestShutdownCommandExitsZero(t *testing.T) {
	dir := t.TempDir()
	port := testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, dir)...)
	c := testkit.Dial(t, p.Addr)
	if v := c.Do("PUBLISH", "ch", "kept"); v.Err() != nil {
		t.Fatalf("publish: %+v", v)
	}
	if v := c.Do("SHUTDOWN", "ABORT"); v.Err() == nil || v.Err().Error() != "ERR No shutdown in progress." {
		t.Fatalf("SHUTDOWN ABORT: %+v", v)
	}
	c.Send("SHUTDOWN", "NOSAVE")
	c.ExpectClosed()
	if code := p.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SHUTDOWN:\n%s", code, p.Logs())
	}
	p.WaitLog("SHUTDOWN requested by client")

	p = startOrdo(t, port, nil, nodeArgs(port, dir)...)
	if h := history(t, p.Addr, "ch"); len(h.Payloads) != 1 || h.Payloads[0] != "kept" {
		t.Fatalf("history after SHUTDOWN and restart: %v", h)
	}
}
