package store

import (
	"testing"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// A log whose membership changed: entries 1-2 and 5 are membership
// entries (no seq of their own), so messages 1, 2, 3 sit at indexes 3, 4
// and 6. XRANGE IDs are seqs, reads go by index, and both survive a
// restart (the record stores index-seq), a truncation and retention.
func TestSeqsSkipMembershipEntries(t *testing.T) {
	memb := func(i, seq uint64) consensus.Entry {
		return consensus.Entry{Index: i, Seq: seq, Term: 1, Type: consensus.EntryMembership, Data: []byte{2}}
	}
	msg := func(i, seq uint64, ch string) consensus.Entry {
		m := Message{Channel: []byte(ch), Payload: []byte{byte(seq)}}
		return consensus.Entry{Index: i, Seq: seq, Term: 1, Origin: 1, ReqID: i, Data: EncodeMessage(&m)}
	}
	es := []consensus.Entry{memb(1, 0), memb(2, 0), msg(3, 1, "a"), msg(4, 2, "b"), memb(5, 2), msg(6, 3, "a")}
	d := NewMemDisk()
	check := func(st *Store, what string) {
		t.Helper()
		for seq, idx := range map[uint64]uint64{1: 3, 2: 4, 3: 6} {
			m, err := st.Message(seq)
			if err != nil || m.Seq != seq || m.Payload[0] != byte(seq) {
				t.Fatalf("%s: message %d: %+v, %v", what, seq, m, err)
			}
			if got := st.SeqOf(idx); got != seq {
				t.Fatalf("%s: SeqOf(%d) = %d, want %d", what, idx, got, seq)
			}
		}
		if got := st.ChannelSeqs("a", 1, 10); len(got) != 2 || got[0] != 1 || got[1] != 3 {
			t.Fatalf("%s: channel a holds seqs %v, want [1 3]", what, got)
		}
	}
	st := openMem(t, d, 16)
	if err := st.Append(es); err != nil {
		t.Fatal(err)
	}
	var ms []*Message
	for i := range es {
		if es[i].Type == consensus.EntryNormal {
			m, _ := EntryMessage(&es[i])
			ms = append(ms, m)
		}
	}
	st.Index(ms)
	check(st, "appended")

	// From disk only: a fresh store over the same log, no cache.
	l, _, err := d.OpenLog(wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st2 := NewSized(l, 1)
	if _, _, err := st2.Load(6, true, 1); err != nil {
		t.Fatal(err)
	}
	check(st2, "reloaded")

	// A truncated tail takes its run with it; the entries that replace
	// it number on from the log.
	if err := st2.TruncateFrom(5); err != nil {
		t.Fatal(err)
	}
	if err := st2.Append([]consensus.Entry{msg(5, 3, "c")}); err != nil {
		t.Fatal(err)
	}
	if m, err := st2.Message(3); err != nil || m.Channel[0] != 'c' {
		t.Fatalf("after truncation, seq 3 = %+v, %v", m, err)
	}
	// Version 1 records (written before membership existed) read as seq == index.
	v1 := []byte{1, 1, 0, 1, 5, 2, 'x'}
	if e, err := DecodeEntry(9, v1); err != nil || e.Seq != 9 || string(e.Data) != "x" {
		t.Fatalf("v1 record: %+v, %v", e, err)
	}
}
