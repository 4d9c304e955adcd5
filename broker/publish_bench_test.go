package broker

import (
	"bytes"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/ordo-broker/ordo/clients/resp"
)

// BenchmarkPublishOneNode: the whole publish path of a one-node broker
// (fsync never, so the disk is out of the picture) through real sockets,
// as redis-benchmark -P 16 drives it: 8 connections each pipelining 16
// PUBLISHes of 100 bytes, one subscriber draining. allocs/op and B/op
// include the benchmark's own (allocation-free) clients; ns/op is
// throughput on this machine, not CPU per message.
//
//	go test -run XXX -bench PublishOneNode -benchmem ./broker
func BenchmarkPublishOneNode(b *testing.B) {
	srv := startServer(b, func(c *Config) { c.NoSync = true })
	addr := srv.Addr().String()
	sub := dial(b, addr)
	sub.do("SUBSCRIBE", "bench")
	go io.Copy(io.Discard, sub.c) // ends when the server closes

	const conns, pipe = 8, 16
	cmd := resp.Command("PUBLISH", "bench", string(bytes.Repeat([]byte("x"), 100)))
	batch := bytes.Repeat(cmd, pipe)
	want := bytes.Repeat([]byte(":1\r\n"), pipe)
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	rounds := (b.N + conns*pipe - 1) / (conns * pipe)
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]byte, len(want))
			for range rounds {
				if _, err := c.Write(batch); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, want) {
					errs <- &replyError{got: string(got)}
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(rounds*conns*pipe), "cpu-ns/publish")
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rounds*conns*pipe)/float64(b.N), "publishes/op")
}

type replyError struct{ got string }

func (e *replyError) Error() string { return "unexpected replies: " + e.got }

// processCPU is the user+system CPU time this process has used, in ns
// (server and benchmark clients together).
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
