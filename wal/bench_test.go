package wal

import (
	"bytes"
	"testing"
)

// BenchmarkAppendBatch64 appends batches of 64 records of 100 bytes, one
// fsync per batch (group commit as the broker does it). ns/op is per batch.
func BenchmarkAppendBatch64(b *testing.B) {
	l := mustOpen(b, b.TempDir(), Options{})
	defer l.Close()
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = bytes.Repeat([]byte{'m'}, 100)
	}
	b.SetBytes(64 * 100)
	b.ResetTimer()
	for b.Loop() {
		if err := l.Append(l.LastIndex()+1, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*64/b.Elapsed().Seconds(), "records/s")
}
