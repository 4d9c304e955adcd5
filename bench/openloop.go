package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
)

// openLoop is one publisher of a fixed-rate run: it sends its share of
// Options.Rate on schedule, stamping each payload with the time it was
// due rather than the time it left, while another goroutine reads the
// replies. A server that stalls does not slow the schedule down (the
// sender does not wait for replies), so the latency of everything queued
// behind the stall is seen: the correction for coordinated omission.
func openLoop(ctx context.Context, o Options, pub uint32, conn net.Conn, start time.Time, published *atomic.Int64, ack *recorder) error {
	rate := o.Rate / float64(o.Clients)
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu  sync.Mutex
		due []int64 // intended send times (unix ns) of the messages awaiting a reply, in order
		got atomic.Int64
	)
	readErr := make(chan error, 1)
	go func() {
		rd := bufio.NewReaderSize(conn, 64<<10)
		for {
			r, err := resp.Read(rd)
			if err != nil {
				readErr <- err
				return
			}
			now := time.Now().UnixNano()
			mu.Lock()
			sent := due[0]
			due = due[1:]
			mu.Unlock()
			got.Add(1)
			if e := r.Err(); e != nil {
				readErr <- e
				return
			}
			published.Add(1)
			ack.record(now - sent)
		}
	}()

	payload := make([]byte, o.Size)
	for i := range payload[16:] {
		payload[16+i] = 'x'
	}
	ch, publish := []byte(o.Channel), []byte("PUBLISH")
	var buf []byte
	var n uint32
	var sent int64
	// Publishers start staggered over one interval, so that their
	// messages interleave instead of arriving in bursts of Clients.
	offset := time.Duration(int64(interval) * int64(pub) / int64(o.Clients))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sendErr error
loop:
	for {
		now := time.Now()
		if o.Messages > 0 && sent >= o.Messages/int64(o.Clients) {
			break
		}
		// Everything due by now goes out in one write.
		buf = buf[:0]
		first := sent
		for {
			at := start.Add(offset + time.Duration(sent)*interval)
			if at.After(now) {
				break
			}
			n++
			sent++
			makePayload(payload, pub, n, at.UnixNano())
			buf = resp.AppendCommand(buf, publish, ch, payload)
			mu.Lock()
			due = append(due, at.UnixNano())
			mu.Unlock()
		}
		if sent > first {
			conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(buf); err != nil {
				sendErr = err
				break
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
	}
	// Wait (bounded) for the replies to what was sent, then stop the
	// reader, blocked on a connection with nothing more to come.
	for deadline := time.Now().Add(30 * time.Second); got.Load() < sent && time.Now().Before(deadline); {
		select {
		case err := <-readErr:
			return errors.Join(sendErr, err)
		case <-time.After(time.Millisecond):
		}
	}
	missing := sent - got.Load()
	conn.SetReadDeadline(time.Now())
	err := <-readErr
	if missing == 0 {
		err = nil // the deadline that stopped the reader
	} else if err != nil {
		err = fmt.Errorf("%d replies missing: %w", missing, err)
	}
	return errors.Join(sendErr, err)
}
