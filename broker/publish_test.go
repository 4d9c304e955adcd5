package broker

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// entryRe matches one stream entry of our XRANGE/XREAD replies.
var entryRe = regexp.MustCompile(`\*2\r\n\$\d+\r\n(\d+)-0\r\n\*6\r\n\$7\r\npayload\r\n\$\d+\r\n([^\r]*)\r\n\$6\r\nsender\r\n\$\d+\r\n([^\r]*)\r\n\$4\r\ntime\r\n\$\d+\r\n(\d+)\r\n`)

type entry struct {
	seq           uint64
	payload, from string
	timeMs        int64
}

func parseEntries(t *testing.T, reply string) []entry {
	t.Helper()
	var out []entry
	for _, m := range entryRe.FindAllStringSubmatch(reply, -1) {
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		ms, _ := strconv.ParseInt(m[4], 10, 64)
		out = append(out, entry{seq, m[2], m[3], ms})
	}
	return out
}

func TestPublishSequencesAndLogs(t *testing.T) {
	srv := startServer(t, nil)
	sub := dial(t, srv.Addr().String())
	sub.do("SUBSCRIBE", "chat")
	pub := dial(t, srv.Addr().String())
	pub.do("CLIENT", "SETNAME", "alice")
	before := time.Now().UnixMilli()
	for i := 1; i <= 3; i++ {
		if got := pub.do("PUBLISH", "chat", fmt.Sprintf("m%d", i)); got != ":1\r\n" {
			t.Fatalf("publish %d: %q", i, got)
		}
		if got := sub.read(); got != fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$2\r\nm%d\r\n", i) {
			t.Fatalf("delivery %d: %q", i, got)
		}
	}
	anon := dial(t, srv.Addr().String())
	anon.do("PUBLISH", "other", "x")
	anonID := strings.TrimSuffix(strings.TrimPrefix(anon.do("CLIENT", "ID"), ":"), "\r\n")
	anon.do("PUBLISH", "chat", "m4")

	es := parseEntries(t, pub.do("XRANGE", "chat", "-", "+"))
	if len(es) != 4 {
		t.Fatalf("XRANGE returned %d entries", len(es))
	}
	wantSeq := []uint64{1, 2, 3, 5} // seq 4 went to "other": one global order
	for i, e := range es {
		if e.seq != wantSeq[i] || e.payload != fmt.Sprintf("m%d", i+1) {
			t.Errorf("entry %d: %+v", i, e)
		}
		if e.timeMs < before-1000 || e.timeMs > time.Now().UnixMilli()+1000 {
			t.Errorf("entry %d time %d not near now", i, e.timeMs)
		}
	}
	if es[0].from != "alice" || es[3].from != "client_"+anonID {
		t.Errorf("senders: %q %q (want alice, client_%s)", es[0].from, es[3].from, anonID)
	}
	if got := pub.do("XLEN", "chat"); got != ":4\r\n" {
		t.Errorf("XLEN: %q", got)
	}
	if es := parseEntries(t, pub.do("XREVRANGE", "chat", "+", "-", "COUNT", "2")); len(es) != 2 || es[0].seq != 5 || es[1].seq != 3 {
		t.Errorf("XREVRANGE COUNT 2: %+v", es)
	}
	if es := parseEntries(t, pub.do("XRANGE", "chat", "(2-0", "5")); len(es) != 2 || es[0].seq != 3 || es[1].seq != 5 {
		t.Errorf("XRANGE (2-0 5: %+v", es)
	}
	if es := parseEntries(t, pub.do("XRANGE", "chat", "2-1", "3-0")); len(es) != 1 || es[0].seq != 3 {
		t.Errorf("XRANGE 2-1 3-0: %+v", es)
	}
	if got := pub.do("XRANGE", "chat", "6", "+"); got != "*0\r\n" {
		t.Errorf("XRANGE past end: %q", got)
	}
}

// A subscriber that disconnects resumes from the last ID it saw and gets
// exactly what it missed, in order, then blocks for new messages.
func TestResumeWithXRead(t *testing.T) {
	srv := startServer(t, nil)
	pub := dial(t, srv.Addr().String())
	for i := 1; i <= 5; i++ {
		pub.do("PUBLISH", "news", fmt.Sprintf("n%d", i))
		pub.do("PUBLISH", "noise", "x")
	}
	r := dial(t, srv.Addr().String())
	es := parseEntries(t, r.do("XREAD", "COUNT", "2", "STREAMS", "news", "0"))
	if len(es) != 2 || es[0].payload != "n1" || es[1].payload != "n2" {
		t.Fatalf("first page: %+v", es)
	}
	last := fmt.Sprintf("%d-0", es[1].seq)
	es = parseEntries(t, r.do("XREAD", "STREAMS", "news", last))
	if len(es) != 3 || es[0].payload != "n3" || es[2].payload != "n5" {
		t.Fatalf("resume: %+v", es)
	}
	last = fmt.Sprintf("%d-0", es[2].seq)
	if got := r.do("XREAD", "STREAMS", "news", last); got != "*-1\r\n" {
		t.Fatalf("caught up: %q", got)
	}
	// BLOCK wakes on the next publish on that channel only.
	r.do("PING") // so CLIENT LIST's cmd= below names the blocking XREAD
	r.send("XREAD", "BLOCK", "5000", "STREAMS", "news", last)
	// Wait (bounded) until the XREAD is blocked, so the wake-up path is
	// what this checks.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(pub.do("CLIENT", "LIST"), "cmd=xread"); {
		if time.Now().After(deadline) {
			t.Fatal("XREAD BLOCK never started")
		}
		time.Sleep(time.Millisecond)
	}
	pub.do("PUBLISH", "noise", "y")
	pub.do("PUBLISH", "news", "n6")
	reply := r.read()
	es = parseEntries(t, reply)
	if len(es) != 1 || es[0].payload != "n6" || !strings.HasPrefix(reply, "*1\r\n*2\r\n$4\r\nnews\r\n") {
		t.Fatalf("blocked read: %q", reply)
	}
	// "$" means only new messages.
	r.send("XREAD", "BLOCK", "100", "STREAMS", "news", "$")
	if got := r.read(); got != "*-1\r\n" {
		t.Fatalf("XREAD $ timeout: %q", got)
	}
	r.do("HELLO", "3")
	if got := r.do("XREAD", "COUNT", "1", "STREAMS", "news", "0"); !strings.HasPrefix(got, "%1\r\n$4\r\nnews\r\n*1\r\n") {
		t.Fatalf("RESP3 XREAD must be a map: %q", got)
	}
}

func TestPipelinedPublishesKeepOrder(t *testing.T) {
	srv := startServer(t, nil)
	sub := dial(t, srv.Addr().String())
	sub.do("SUBSCRIBE", "p")
	pub := dial(t, srv.Addr().String())
	var b bytes.Buffer
	const n = 500
	for i := 0; i < n; i++ {
		b.Write(encodeCommand("PUBLISH", "p", strconv.Itoa(i)))
		if i == n/2 {
			b.Write(encodeCommand("PUBSUB", "NUMSUB", "p"))
		}
	}
	pub.sendRaw(b.Bytes())
	for i := 0; i < n; i++ {
		if got := pub.read(); got != ":1\r\n" {
			t.Fatalf("reply %d: %q", i, got)
		}
		if i == n/2 {
			if got := pub.read(); got != "*2\r\n$1\r\np\r\n:1\r\n" {
				t.Fatalf("interleaved NUMSUB: %q", got)
			}
		}
	}
	for i := 0; i < n; i++ {
		want := fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$1\r\np\r\n$%d\r\n%d\r\n", len(strconv.Itoa(i)), i)
		if got := sub.read(); got != want {
			t.Fatalf("delivery %d: %q", i, got)
		}
	}
	if got := pub.do("XLEN", "p"); got != fmt.Sprintf(":%d\r\n", n) {
		t.Fatalf("XLEN: %q", got)
	}
}

// Concurrent publishers: every subscriber sees one order, and the log
// holds exactly the acknowledged messages with contiguous sequence numbers.
func TestConcurrentPublishersOneOrder(t *testing.T) {
	srv := startServer(t, nil)
	subs := []*respConn{dial(t, srv.Addr().String()), dial(t, srv.Addr().String())}
	subs[0].do("SUBSCRIBE", "c")
	subs[1].do("PSUBSCRIBE", "*")
	const pubs, each = 8, 100
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		c := dial(t, srv.Addr().String())
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				c.send("PUBLISH", "c", fmt.Sprintf("%d.%d", p, i))
			}
			for i := 0; i < each; i++ {
				if got := c.read(); got != ":2\r\n" {
					t.Errorf("publisher %d reply %d: %q", p, i, got)
				}
			}
		}(p)
	}
	wg.Wait()
	var orders [2][]string
	for k, s := range subs {
		for i := 0; i < pubs*each; i++ {
			msg := s.read()
			parts := strings.Split(msg, "\r\n")
			orders[k] = append(orders[k], parts[len(parts)-2])
		}
	}
	if strings.Join(orders[0], ",") != strings.Join(orders[1], ",") {
		t.Fatal("two subscribers saw different orders")
	}
	log := parseEntries(t, dial(t, srv.Addr().String()).do("XRANGE", "c", "-", "+"))
	if len(log) != pubs*each {
		t.Fatalf("log has %d entries", len(log))
	}
	for i, e := range log {
		if e.seq != uint64(i+1) || e.payload != orders[0][i] {
			t.Fatalf("log entry %d = %+v, delivered %q", i, e, orders[0][i])
		}
	}
}

func TestMultiWithPublishes(t *testing.T) {
	srv := startServer(t, nil)
	sub := dial(t, srv.Addr().String())
	sub.do("SUBSCRIBE", "m")
	c := dial(t, srv.Addr().String())
	c.do("MULTI")
	c.do("PUBLISH", "m", "a")
	c.do("XLEN", "m")
	c.do("PUBLISH", "m", "b")
	if got := c.do("EXEC"); got != "*3\r\n:1\r\n:1\r\n:1\r\n" {
		t.Fatalf("EXEC: %q", got)
	}
}

// A subscriber that stops reading is disconnected once its output buffer
// passes the limit; publishing and other subscribers never stall.
func TestSlowSubscriberIsCutOff(t *testing.T) {
	srv := startServer(t, func(c *Config) {
		c.Limits.PubsubHardBytes = 1 << 20
		c.Limits.PubsubSoftBytes = 512 << 10
		c.Limits.PubsubSoftDuration = time.Hour
		c.NoSync = true // this test is about fan-out, not the disk
	})
	slow := dial(t, srv.Addr().String())
	slow.do("CLIENT", "SETNAME", "slow")
	slow.do("SUBSCRIBE", "firehose")
	fast := dial(t, srv.Addr().String())
	fast.do("SUBSCRIBE", "firehose")
	const total, chunk = 2000, 20
	var got int
	done := make(chan error, 1)
	go func() {
		for got < total {
			fast.c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := readReply(fast.r); err != nil {
				done <- err
				return
			}
			got++
		}
		done <- nil
	}()
	pub := dial(t, srv.Addr().String())
	payload := strings.Repeat("z", 8<<10)
	start := time.Now()
	// 16 MB in all, which the slow subscriber never reads; pipelined in
	// chunks so the reading subscriber keeps up.
	for i := 0; i < total; i += chunk {
		var b bytes.Buffer
		for k := 0; k < chunk; k++ {
			b.Write(encodeCommand("PUBLISH", "firehose", payload))
		}
		pub.sendRaw(b.Bytes())
		for k := 0; k < chunk; k++ {
			if r := pub.read(); r != ":2\r\n" && r != ":1\r\n" {
				t.Fatalf("publish %d: %q", i+k, r)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("reading subscriber got %d of %d: %v", got, total, err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("publishing stalled: %s", time.Since(start))
	}
	list := pub.do("CLIENT", "LIST")
	if strings.Contains(list, "name=slow ") {
		t.Errorf("slow subscriber still connected: %s", list)
	}
	if info := pub.do("INFO", "stats"); !strings.Contains(info, "client_output_buffer_limit_disconnections:1") {
		t.Errorf("disconnection not counted: %s", info)
	}
	// The slow client reads what was buffered before the cut, then EOF.
	for n := 0; ; n++ {
		slow.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := readReply(slow.r); err != nil {
			if n >= total {
				t.Fatalf("slow client received all %d messages", n)
			}
			break
		}
	}
}

// A client that disconnects while blocked in XREAD is dropped at once, and
// commands pipelined behind a blocking XREAD still run afterwards.
func TestBlockedXReadClientLeaves(t *testing.T) {
	srv := startServer(t, nil)
	admin := dial(t, srv.Addr().String())
	b := dial(t, srv.Addr().String())
	b.sendRaw(append(encodeCommand("XREAD", "BLOCK", "300", "STREAMS", "x", "$"), encodeCommand("PING")...))
	if got := b.read(); got != "*-1\r\n" {
		t.Fatalf("XREAD: %q", got)
	}
	if got := b.read(); got != "+PONG\r\n" {
		t.Fatalf("pipelined PING: %q", got)
	}
	b.send("XREAD", "BLOCK", "0", "STREAMS", "x", "$")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(admin.do("CLIENT", "LIST"), "cmd=xread") {
		if time.Now().After(deadline) {
			t.Fatal("XREAD never blocked")
		}
		time.Sleep(time.Millisecond)
	}
	b.c.Close()
	for {
		list := admin.do("CLIENT", "LIST")
		if strings.Count(list, "id=") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blocked client not dropped after disconnect:\n%s", list)
		}
		time.Sleep(time.Millisecond)
	}
}
