package store

import (
	"os"
	"runtime"
	"testing"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// BenchmarkStoreAppend measures one group-committed batch of 350 publishes
// (100-byte payloads) through the store: encode, write, fsync, cache.
func BenchmarkStoreAppend(b *testing.B) {
	l, err := wal.Open(b.TempDir(), wal.Options{SegmentSize: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	st := New(l)
	data := EncodeMessage(&Message{Channel: []byte("bench"), Payload: make([]byte, 100), Sender: "client_1"})
	batch := make([]consensus.Entry, 350)
	next := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range batch {
			batch[k] = consensus.Entry{Index: next, Term: 1, Origin: 1, ReqID: next, Time: 1, Data: data}
			next++
		}
		if err := st.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkLoadDataDir profiles a node's startup on a prepared data
// directory (fill one with `go run ./bench/restart`, which keeps it):
//
//	ORDO_BENCH_DATADIR=/tmp/bench-restart/n1000000-s100 go test ./broker/store \
//	    -run XXX -bench LoadDataDir -benchtime 1x -cpuprofile cpu.out -memprofile mem.out
//
// It loads without the checkpoint (the full scan, as after a crash or on
// an old data directory), or with it if ORDO_BENCH_CHECKPOINT=1. It never
// writes the directory's checkpoint.
func BenchmarkLoadDataDir(b *testing.B) {
	dir := os.Getenv("ORDO_BENCH_DATADIR")
	if dir == "" {
		b.Skip("set ORDO_BENCH_DATADIR to a stopped node's data directory")
	}
	useCk := os.Getenv("ORDO_BENCH_CHECKPOINT") == "1"
	for i := 0; i < b.N; i++ {
		l, err := wal.Open(dir, wal.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		st := New(l)
		if useCk {
			st.UseCheckpoints(readOnlyCheckpoints{DirDisk(dir)}, 0, false)
		}
		n, _, err := st.Load(l.LastIndex(), true, 1)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMB")
		b.ReportMetric(float64(n), "messages")
		l.Close()
	}
}

type readOnlyCheckpoints struct{ Checkpoints }

func (readOnlyCheckpoints) SaveIndex([]byte) error { return nil }
