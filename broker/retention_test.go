package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: 1, DataDir: dir, SegmentBytes: 4096, RetainBytes: 16 << 10, PublishTimeout: 100 * time.Millisecond}
	srv := startServerCfg(t, cfg)
	c := dial(t, srv.Addr().String())
	payload := strings.Repeat("r", 100)
	for i := 0; i < 600; i++ {
		c.do("PUBLISH", "ret", fmt.Sprintf("%03d%s", i, payload))
	}
	// Retention runs in the background once a second: wait, bounded.
	deadline := time.Now().Add(10 * time.Second)
	var es []entry
	for {
		es = parseEntries(t, c.do("XRANGE", "ret", "-", "+"))
		if len(es) < 600 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention dropped nothing within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(es) == 0 || es[len(es)-1].seq != 600 {
		t.Fatalf("newest messages must be kept: %d entries", len(es))
	}
	for i := 1; i < len(es); i++ {
		if es[i].seq != es[i-1].seq+1 {
			t.Fatalf("gap inside the retained range at %d", es[i].seq)
		}
	}
	if size := srv.replica.Store().Size(); size > 16<<10+8192 {
		t.Errorf("log is %d bytes, limit 16 KiB (+ the active segments)", size)
	}
	first := es[0].seq
	if got := c.do("XLEN", "ret"); got != fmt.Sprintf(":%d\r\n", len(es)) {
		t.Errorf("XLEN %q, want %d", got, len(es))
	}
	// Restart: the first retained seq survives, numbering continues.
	srv.Close()
	srv2 := startServerCfg(t, cfg)
	c2 := dial(t, srv2.Addr().String())
	es2 := parseEntries(t, c2.do("XRANGE", "ret", "-", "+"))
	if len(es2) == 0 || es2[0].seq < first || es2[len(es2)-1].seq != 600 {
		t.Fatalf("after restart: first %d last %d (before: first %d)", es2[0].seq, es2[len(es2)-1].seq, first)
	}
	if got := c2.do("PUBLISH", "ret", "next"); got != ":0\r\n" {
		t.Fatalf("publish after restart: %q", got)
	}
	es2 = parseEntries(t, c2.do("XREVRANGE", "ret", "+", "-", "COUNT", "1"))
	if es2[0].seq != 601 {
		t.Fatalf("numbering after restart: %d", es2[0].seq)
	}
}
