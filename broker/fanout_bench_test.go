//go:build unix

package broker

import (
	"fmt"

	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker/store"
)

// BenchmarkFanout1000 is the delivery path of the fan-out row: committed
// messages (100-byte payloads) handed to the registry in batches of 1 and
// 16, each delivered to 1,000 subscribers over loopback TCP, through their
// output buffers and writer goroutines, until the readers have every
// byte. One op is one message (1,000 deliveries); deliveries/s is
// reported. Readers drain with large reads, so the benchmark is bounded
// by the server side's locks, wake-ups and system calls.
//
//	go test ./broker -run XXX -bench Fanout1000 -benchtime 2000x
func BenchmarkFanout1000(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchFanout(b, 1000, batch) })
	}
}

func benchFanout(b *testing.B, subscribers, batch int) {
	srv := &Server{}
	srv.limits.Store(&Limits{})
	r := newRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	var readers sync.WaitGroup
	clients := make([]*client, 0, subscribers)
	for range subscribers {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c := &client{srv: srv, conn: sc, quit: make(chan struct{})}
		c.out.wake = make(chan struct{}, 1)
		c.out.drained = make(chan struct{}, 1)
		go c.writeLoop()
		r.subscribe(c, kindChannel, [][]byte{[]byte("bench")})
		clients = append(clients, c)
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 256<<10)
			for {
				n, err := cc.Read(buf)
				received.Add(int64(n))
				if err != nil {
					cc.Close()
					return
				}
			}
		}()
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
		readers.Wait()
	}()
	// Wait for the subscribe confirmations, then count from zero.
	confirm := int64(len("*3\r\n$9\r\nsubscribe\r\n$5\r\nbench\r\n:1\r\n")) * int64(subscribers)
	waitBytes(b, &received, confirm)
	received.Store(0)

	payload := make([]byte, 100)
	msgs := make([]*store.Message, batch)
	for i := range msgs {
		msgs[i] = &store.Message{Channel: []byte("bench"), Payload: payload}
	}
	per := int64(len(encodePush(false, "message", "", msgs[0]))) * int64(subscribers)
	receivers := make([]int, batch)
	// Warm up: output buffers grow to their working size once.
	for range 512 / batch {
		r.DeliverBatch(msgs, receivers)
	}
	waitBytes(b, &received, int64(512/batch*batch)*per)
	received.Store(0)
	b.ResetTimer()
	cpu0 := cpuTime()
	sent := int64(0)
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		r.DeliverBatch(msgs[:n], receivers[:n])
		sent += int64(n)
		// Flow control: at most 256 messages in flight, as a publisher
		// waiting for subscribers would be.
		if lag := sent - 256; lag > 0 && received.Load() < lag*per {
			waitBytes(b, &received, lag*per)
		}
	}
	waitBytes(b, &received, sent*per)
	b.StopTimer()
	// On a shared machine wall time says little; the process's CPU time
	// per delivery (server side and readers) is the steadier measure.
	b.ReportMetric(float64(sent)*float64(subscribers)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(sent*int64(subscribers)), "cpu-ns/delivery")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitBytes(b *testing.B, n *atomic.Int64, want int64) {
	deadline := time.Now().Add(60 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d bytes", n.Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}
