package broker

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A full disk makes publishes fail with a clear error (never hang, never
// claim success); nothing acknowledged is lost, and the node carries on
// once space is back.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	srv := startServerCfg(t, Config{ID: 1, DataDir: dir, SegmentBytes: 64 << 10})
	t.Cleanup(func() {
		srv.Close()
		exec.Command("umount", dir).Run()
	})
	c := dial(t, srv.Addr().String())
	payload := strings.Repeat("d", 1024)
	var acked []string
	var diskErr string
	for i := 0; i < 2000 && diskErr == ""; i++ {
		msg := fmt.Sprintf("%04d%s", i, payload)
		start := time.Now()
		got := c.do("PUBLISH", "full", msg)
		if time.Since(start) > 5*time.Second {
			t.Fatalf("publish took %s", time.Since(start))
		}
		switch {
		case got == ":0\r\n":
			acked = append(acked, msg)
		case strings.HasPrefix(got, "-ERR disk error"):
			diskErr = got
		default:
			t.Fatalf("publish %d: %q", i, got)
		}
	}
	if diskErr == "" {
		t.Fatal("256 KiB filesystem never filled up")
	}
	t.Logf("disk full after %d acknowledged publishes: %s", len(acked), strings.TrimSpace(diskErr))
	if got := c.do("PUBLISH", "full", "more"); !strings.HasPrefix(got, "-ERR disk error") {
		t.Fatalf("publish while full: %q", got)
	}
	if got := c.do("STATUS"); !strings.Contains(got, "failed") {
		t.Errorf("STATUS should show the storage failure: %q", got)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=8m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got := c.do("PUBLISH", "full", "after"); got == ":0\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node did not recover after space came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	es := parseEntries(t, c.do("XRANGE", "full", "-", "+"))
	have := map[string]bool{}
	for i, e := range es {
		have[e.payload] = true
		if i > 0 && e.seq != es[i-1].seq+1 {
			t.Fatalf("gap at %d", e.seq)
		}
	}
	for _, m := range acked {
		if !have[m] {
			t.Fatalf("acknowledged message %.8s... lost", m)
		}
	}
	if es[len(es)-1].payload != "after" {
		t.Fatalf("last entry %q", es[len(es)-1].payload)
	}
}
