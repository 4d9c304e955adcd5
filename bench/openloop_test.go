package bench

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
)

// stallingServer answers every request with :1, except that it stops
// reading for stall once, after the first 100 requests.
func stallingServer(t *testing.T, stall time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				w := bufio.NewWriter(c)
				for n := 1; ; n++ {
					if _, err := resp.Read(rd); err != nil {
						return
					}
					w.WriteString(":1\r\n")
					if rd.Buffered() == 0 {
						w.Flush()
					}
					if n == 100 {
						w.Flush()
						time.Sleep(stall)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// With a rate, publishing keeps to its schedule through a server stall,
// and the latencies count from each message's intended send time: the
// messages due during a 300 ms stall all show it (coordinated omission
// corrected), where a closed loop would have shown one slow reply.
func TestOpenLoopCountsStallForEveryMessageDelayed(t *testing.T) {
	addr := stallingServer(t, 300*time.Millisecond)
	res, err := Run(context.Background(), Options{Addrs: []string{addr}, Clients: 1, Rate: 1000, Size: 32,
		Duration: 1500 * time.Millisecond, Drain: time.Second, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 {
		t.Fatalf("errors %d: %s", res.Errors, res.FirstError)
	}
	// 1,000 msg/s for 1.5 s, whatever the stall: the schedule did not wait.
	if res.Published < 1300 || res.Published > 1600 {
		t.Errorf("published %d, want about 1500", res.Published)
	}
	if res.AckMax < 250*time.Millisecond {
		t.Errorf("ack max %v: the stall is missing", res.AckMax)
	}
	// About 300 of 1500 messages were due during the stall: the p90 sees
	// it (scaled down: a loaded machine adds its own delays, never removes
	// the stall's).
	if res.AckP90 < 50*time.Millisecond {
		t.Errorf("ack p90 %v: messages queued behind the stall were not counted from their intended send time", res.AckP90)
	}
}
