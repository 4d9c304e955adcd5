package store

import (
	"testing"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// countingLog counts single-record reads, to check that Messages reads a
// close run of seqs with one Scan.
type countingLog struct {
	Log
	reads int
}

func (l *countingLog) Read(i uint64) ([]byte, error) { l.reads++; return l.Log.Read(i) }

func TestMessagesReadsRunsWithOneScan(t *testing.T) {
	l, _, err := NewMemDisk().OpenLog(wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingLog{Log: l}
	s := NewSized(cl, 1) // a tiny cache: reads go to the log
	var es []consensus.Entry
	var ms []*Message
	for i := uint64(1); i <= 300; i++ {
		ch := "a"
		if i%3 == 0 {
			ch = "b"
		}
		m := &Message{Seq: i, Channel: []byte(ch), Payload: []byte{byte(i)}, Sender: "x"}
		es = append(es, consensus.Entry{Index: i, Seq: i, Term: 1, Origin: 1, ReqID: i, Time: 1, Data: EncodeMessage(m)})
		ms = append(ms, m)
	}
	if err := s.Append(es); err != nil {
		t.Fatal(err)
	}
	s.Index(ms)
	seqs := s.ChannelSeqs("a", 1, 300)
	out := make([]*Message, len(seqs))
	if _, err := s.Messages(seqs, out); err != nil {
		t.Fatal(err)
	}
	for k, m := range out {
		if m == nil || m.Seq != seqs[k] || string(m.Channel) != "a" || m.Payload[0] != byte(seqs[k]) {
			t.Fatalf("message %d: %+v, want seq %d on a", k, m, seqs[k])
		}
	}
	if cl.reads != 0 {
		t.Fatalf("%d single reads; want one Scan", cl.reads)
	}
}
