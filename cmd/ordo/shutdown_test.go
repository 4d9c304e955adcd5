package main

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// outcomes records what each publish of a shutdownLoad got back.
type outcomes struct {
	mu      sync.Mutex
	acked   []string
	refused []string // error replies saying the message was not sequenced
	unknown []string // other error replies ("may or may not be delivered")
	eof     []string // the connection broke with the publish unanswered
	eofAt   map[string]string
	errs    map[string]int
}

func (o *outcomes) add(list *[]string, payload string) {
	o.mu.Lock()
	*list = append(*list, payload)
	o.mu.Unlock()
}

func (o *outcomes) ackedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.acked)
}

// shutdownLoad publishes from several connections, each keeping a window
// of pipelined publishes outstanding (so a SIGTERM finds publishes in
// flight), moving to the next node when its connection breaks or the node
// says it is shutting down. Every payload is unique.
func shutdownLoad(addrs []string, channel string, workers int, stop <-chan struct{}) (*outcomes, *sync.WaitGroup) {
	o := &outcomes{errs: map[string]int{}, eofAt: map[string]string{}}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := w
			var rc *resp.Conn
			defer func() {
				if rc != nil {
					rc.Close()
				}
			}()
			for k := 0; ; {
				select {
				case <-stop:
					return
				default:
				}
				if rc == nil {
					var err error
					if rc, err = resp.Dial(addrs[next%len(addrs)], testkit.Scale(5*time.Second)); err != nil {
						next++
						time.Sleep(5 * time.Millisecond) // every node may be down for a moment
						continue
					}
				}
				const window = 8
				sent := make([]string, 0, window)
				for range window {
					p := fmt.Sprintf("w%d-%d", w, k)
					k++
					if rc.Send("PUBLISH", channel, p) != nil {
						break
					}
					sent = append(sent, p)
				}
				moveOn := len(sent) < window
				for i, p := range sent {
					v, err := rc.Receive()
					switch {
					case err != nil:
						for _, q := range sent[i:] {
							o.add(&o.eof, q)
							o.mu.Lock()
							o.eofAt[q] = fmt.Sprintf("%s after %d replies: %v", rc.RemoteAddr(), i, err)
							o.mu.Unlock()
						}
						moveOn = true
					case v.Err() == nil:
						o.add(&o.acked, p)
						continue
					default:
						msg := v.Err().Error()
						o.mu.Lock()
						o.errs[strings.SplitN(msg, ":", 2)[0]]++
						o.mu.Unlock()
						if strings.Contains(msg, "not sequenced") || strings.HasPrefix(msg, "CLUSTERDOWN") {
							o.add(&o.refused, p)
						} else {
							o.add(&o.unknown, p)
						}
						if strings.Contains(msg, "shutting down") {
							moveOn = true
						}
						continue
					}
					break
				}
				if moveOn {
					rc.Close()
					rc, next = nil, next+1
				}
			}
		}()
	}
	return o, &wg
}

// SIGTERM under load, first to the leader, then (after it is back) to a
// follower: each node exits 0 after logging every step, nothing
// acknowledged is lost, and no publish whose connection broke before it
// was answered was stored anyway (the drain answers stored publishes
// before it closes connections).
func TestSIGTERMUnderLoadLosesNothingAndAnswersEveryStoredPublish(t *testing.T) {
	c := testkit.NewCluster(t, 3, false)
	c.StartAll()
	stop := make(chan struct{})
	o, wg := shutdownLoad([]string{c.Addr(1), c.Addr(2), c.Addr(3)}, "drain", 6, stop)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()
	waitAcked := func(n int) {
		t.Helper()
		target := o.ackedCount() + n
		testkit.Eventually(t, 20*time.Second, func() bool { return o.ackedCount() >= target },
			"fewer than %d more publishes acknowledged", n)
	}
	waitAcked(200)

	stopNode := func(i int, leader bool) {
		t.Helper()
		p := c.Proc(i)
		p.Signal(syscall.SIGTERM)
		start := time.Now()
		if code := p.ExitCode(15 * time.Second); code != 0 {
			t.Fatalf("node %d exited with %d after SIGTERM:\n%s", i, code, p.Logs())
		}
		t.Logf("node %d (leader %v) stopped in %v", i, leader, time.Since(start).Round(time.Millisecond))
		steps := []string{"Shutting down: refusing new work", "Waiting for ", " in-flight publishes", "Log synced", "Stopped"}
		if leader {
			steps = append(steps, "Handed leadership to node_")
			if strings.Contains(p.Logs(), fmt.Sprintf("Handed leadership to node_%d ", i)) {
				t.Fatalf("node %d says it handed leadership to itself:\n%s", i, p.Logs())
			}
		}
		for _, s := range steps {
			if !strings.Contains(p.Logs(), s) {
				t.Fatalf("node %d: shutdown step %q not logged:\n%s", i, s, p.Logs())
			}
		}
	}

	leader, followers := c.Followers()
	stopNode(leader, true)
	waitAcked(100) // the other two carry on
	c.Start(leader)
	testkit.Eventually(t, 20*time.Second, func() bool {
		st, err := c.Status(leader)
		return err == nil && st["leader_id"] != "0"
	}, "node %d did not rejoin", leader)
	waitAcked(100)

	leader2, _ := c.Followers()
	follower := followers[0]
	if follower == leader2 {
		follower = followers[1]
	}
	stopNode(follower, false)
	waitAcked(100)
	c.Start(follower)
	stopLoad()

	h := c.WaitSameHistory("drain")
	stored := map[string]bool{}
	for _, p := range h.Payloads {
		stored[p] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t.Logf("%d acknowledged, %d refused, %d unknown outcome, %d connection broke (errors %v); history %d",
		len(o.acked), len(o.refused), len(o.unknown), len(o.eof), o.errs, len(h.Payloads))
	broke := map[string]int{}
	for _, why := range o.eofAt {
		broke[why]++
	}
	if len(broke) > 0 {
		t.Logf("broken connections: %v", broke)
	}
	for _, p := range o.acked {
		if !stored[p] {
			t.Fatalf("acknowledged publish %q is missing from the history", p)
		}
	}
	for _, p := range o.refused {
		if stored[p] {
			t.Fatalf("publish %q was refused as not sequenced, but it is in the history", p)
		}
	}
	for _, p := range o.eof {
		if stored[p] {
			t.Fatalf("publish %q was stored, but its client got a broken connection instead of a reply (%s)", p, o.eofAt[p])
		}
	}
}
