package store

import (
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
