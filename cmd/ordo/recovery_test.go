package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// Every acknowledged publish survives kill -9, and numbering continues.
func TestKill9KeepsAcknowledgedPublishes(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, dir)...)
	c := testkit.Dial(t, p.Addr)
	for i := 1; i <= 200; i++ {
		if v := c.Do("PUBLISH", "chat", fmt.Sprintf("m%d", i)); v.Kind != resp.Integer || v.Num != 0 {
			t.Fatalf("publish %d: %+v", i, v)
		}
	}
	p.Kill()

	p = startOrdo(t, port, nil, nodeArgs(port, dir)...)
	p.WaitLog("Loaded 200 messages from log")
	p.WaitLog("Set last_seq=200, next_expected=201")
	h := history(t, p.Addr, "chat")
	if len(h.Seqs) != 200 {
		t.Fatalf("after restart: %d messages", len(h.Seqs))
	}
	for i := range h.Seqs {
		if h.Seqs[i] != uint64(i+1) || h.Payloads[i] != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("entry %d: seq %d %q", i, h.Seqs[i], h.Payloads[i])
		}
	}
	testkit.Dial(t, p.Addr).Do("PUBLISH", "chat", "after")
	h = history(t, p.Addr, "chat")
	if h.Seqs[len(h.Seqs)-1] != 201 {
		t.Fatalf("numbering did not continue: last seq %d", h.Seqs[len(h.Seqs)-1])
	}
}

// kill -9 in the middle of a concurrent load: whatever was acknowledged is
// in the log after restart, exactly once, with contiguous numbers.
func TestKill9UnderLoad(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, dir)...)
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		c := testkit.Dial(t, p.Addr).RESP
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 100000; i++ {
				msg := fmt.Sprintf("w%d-%d", w, i)
				v, err := c.Do("PUBLISH", "load", msg)
				if err != nil {
					return // the kill
				}
				if v.Kind == resp.Integer {
					mu.Lock()
					acked[msg] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	testkit.Eventually(t, 10*time.Second, func() bool { return count() >= 500 }, "fewer than 500 publishes acknowledged")
	p.Kill()
	stop.Store(true)
	wg.Wait()

	p = startOrdo(t, port, nil, nodeArgs(port, dir)...)
	h := history(t, p.Addr, "load")
	seen := map[string]bool{}
	for i, pl := range h.Payloads {
		if h.Seqs[i] != uint64(i+1) {
			t.Fatalf("gap: entry %d has seq %d", i, h.Seqs[i])
		}
		if seen[pl] {
			t.Fatalf("duplicate %q", pl)
		}
		seen[pl] = true
	}
	var lost []string
	for m := range acked {
		if !seen[m] {
			lost = append(lost, m)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged publishes lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	t.Logf("%d acknowledged, %d in log after kill -9 (the rest were in flight, never acknowledged)", len(acked), len(h.Seqs))
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "0*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segment files in %s: %v", dir, err)
	}
	sort.Strings(files)
	return files[len(files)-1]
}

// A torn tail (a write cut short by the crash) is repaired on start.
func TestTornTailIsRepaired(t *testing.T) {
	dir, port := t.TempDir(), testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, dir)...)
	c := testkit.Dial(t, p.Addr)
	for i := 1; i <= 50; i++ {
		if v := c.Do("PUBLISH", "t", fmt.Sprintf("m%d", i)); v.Err() != nil {
			t.Fatal(v.Err())
		}
	}
	p.Kill()
	seg := lastSegment(t, dir)
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Half a frame: a length prefix promising more than follows.
	f.Write([]byte{0x40, 0x01, 0x02, 0x03})
	f.Close()

	p = startOrdo(t, port, nil, nodeArgs(port, dir)...)
	p.WaitLog("Repaired torn log tail")
	p.WaitLog("Loaded 50 messages from log")
	if h := history(t, p.Addr, "t"); len(h.Seqs) != 50 {
		t.Fatalf("%d messages after repair", len(h.Seqs))
	}
	if v := testkit.Dial(t, p.Addr).Do("PUBLISH", "t", "next"); v.Kind != resp.Integer {
		t.Fatalf("publish after repair: %+v", v)
	}
	h := history(t, p.Addr, "t")
	if h.Seqs[len(h.Seqs)-1] != 51 {
		t.Fatalf("numbering after repair: %d", h.Seqs[len(h.Seqs)-1])
	}
}

// payloads returns fmt.Sprintf("payload-%03d", i) for i in [from, to].
func payloads(from, to int) (seqs []uint64, pls []string) {
	for i := from; i <= to; i++ {
		seqs = append(seqs, uint64(i))
		pls = append(pls, fmt.Sprintf("payload-%03d", i))
	}
	return seqs, pls
}

// hundredThenKilled runs a node, publishes payload-001..100 on channel
// f, kills it, and returns its data directory and port, its last log
// segment with the segment's bytes, and where payload-050 is in them.
func hundredThenKilled(t *testing.T) (dir string, port int, seg string, b []byte, at int) {
	t.Helper()
	dir, port = t.TempDir(), testkit.FreePort(t)
	p := startOrdo(t, port, nil, nodeArgs(port, dir)...)
	c := testkit.Dial(t, p.Addr)
	for i := 1; i <= 100; i++ {
		if v := c.Do("PUBLISH", "f", fmt.Sprintf("payload-%03d", i)); v.Err() != nil {
			t.Fatal(v.Err())
		}
	}
	p.Kill()
	seg = lastSegment(t, dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at = strings.Index(string(b), "payload-050")
	if at < 0 || strings.Count(string(b), "payload-050") != 1 {
		t.Fatal("record 50 not found exactly once in the segment")
	}
	return dir, port, seg, b, at
}

// A flipped bit in the middle of the log is detected and reported; the
// damaged message is never served, every other one still is, exactly.
func TestFlippedBitIsDetectedNotServed(t *testing.T) {
	dir, port, seg, b, at := hundredThenKilled(t)
	// '0' (0x30) becomes '1': on disk the payload now reads "payload-150",
	// a plausible message that only the checksum can tell from the real one.
	b[at+8] ^= 0x01
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	p := startOrdo(t, port, nil, nodeArgs(port, dir)...)
	p.WaitLog("Corrupt record at seq_no=50")
	rc := testkit.Dial(t, p.Addr)
	v := rc.Do("XRANGE", "f", "-", "+")
	if !v.IsErr("ERR") || !strings.Contains(v.String(), "50") {
		t.Fatalf("XRANGE over the damaged record must fail clearly, got %+v", v)
	}
	// Exactly the records on either side of the damaged one survive.
	for _, r := range []struct {
		from, to string
		lo, hi   int
	}{{"-", "49", 1, 49}, {"51", "+", 51, 100}} {
		h, err := testkit.ParseEntries(rc.Do("XRANGE", "f", r.from, r.to))
		if err != nil {
			t.Fatalf("XRANGE %s %s: %v", r.from, r.to, err)
		}
		seqs, pls := payloads(r.lo, r.hi)
		if !slices.Equal(h.Seqs, seqs) || !slices.Equal(h.Payloads, pls) {
			t.Fatalf("XRANGE %s %s: seqs %v..%v (%d entries), want %d..%d with their payloads",
				r.from, r.to, h.Seqs[:min(1, len(h.Seqs))], testkit.Tail(h.Seqs), len(h.Seqs), r.lo, r.hi)
		}
	}
	if v := rc.Do("PUBLISH", "f", "after"); v.Kind != resp.Integer {
		t.Fatalf("publish after corruption: %+v", v)
	}
	h, err := testkit.ParseEntries(rc.Do("XRANGE", "f", "51", "+"))
	if err != nil || len(h.Seqs) != 51 || h.Seqs[50] != 101 || h.Payloads[50] != "after" {
		t.Fatalf("publish after corruption is not seq 101: %v %v %v", testkit.Tail(h.Seqs), testkit.Tail(h.Payloads), err)
	}
}
