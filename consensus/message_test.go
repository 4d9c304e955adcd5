package consensus

import (
	"bytes"
	"reflect"
	"testing"
)

func sampleMessages() []Message {
	return []Message{
		{Type: MsgHeartbeat, From: 1, To: 2, Term: 7, Commit: 99, SyncIndex: 40, Repair: 1<<63 | 9, LastIndex: 120},
		{Type: MsgApp, From: 3, To: 1, Term: 4, Index: 500, LogTerm: 0, Commit: 900, Reset: true,
			Entries: []Entry{{Index: 501, Term: 4, Origin: 2, ReqID: 3, Time: -5, Data: []byte("r")}}},
		{Type: MsgApp, From: 3, To: 1, Term: 1 << 40, Index: 10, LogTerm: 6, Commit: 9, SyncIndex: 12,
			Entries: []Entry{
				{Index: 11, Term: 7, Type: EntryNormal, Origin: 2, ReqID: 1<<63 + 5, Data: []byte("hello")},
				{Index: 12, Term: 7, Type: EntryMembership, Origin: 3, ReqID: 0, Data: nil},
				{Index: 13, Term: 8, Origin: 1, ReqID: 2, Data: bytes.Repeat([]byte{0xff}, 300)},
			}},
		{Type: MsgAppResp, From: 1, To: 3, Term: 7, Index: 10, Reject: true, RejectHint: 4, LogTerm: 3, AcceptedTerm: 6},
		{Type: MsgCoordinator, From: 3, To: 2, Term: 9, Pre: true},
		{Type: MsgCoordinatorAck, From: 2, To: 3, Term: 9, AcceptedTerm: 8, LastIndex: 1000, LastTerm: 8},
		{Type: MsgSyncResp, From: 2, To: 3, Term: 9, Index: 5, LogTerm: 2, LastIndex: 6,
			Entries: []Entry{{Index: 6, Term: 2, Data: []byte("x")}}},
		{Type: MsgForward, From: 3, To: 2, Reject: true, Proposals: []Proposal{{Origin: 2, ReqID: 20}}},
		{Type: MsgForward, From: 2, To: 3, Term: 9, Index: 16, Proposals: []Proposal{
			{Origin: 2, ReqID: 17, Data: []byte("p1")}, {Origin: 2, ReqID: 18, Type: EntryMembership}}},
		{Type: MsgElection, From: 1, To: 3},
		{Type: MsgAlive, From: 3, To: 1, Term: 2},
		{Type: MsgSyncReq, From: 3, To: 2, Term: 9, Index: 5, LogTerm: 2},
		{Type: MsgHeartbeatResp, From: 2, To: 3, Term: 9, Index: 77, AcceptedTerm: 9, Repair: 5},
		{Type: MsgAppResp, From: 2, To: 3, Term: 9, Index: 77, LastIndex: 80, AcceptedTerm: 9},
		{Type: MsgApp, From: 3, To: 4, Term: 9, Index: 40, Commit: 40, Reset: true, Conf: &ConfState{
			Voters: []NodeID{1, 3}, Learners: []NodeID{4}, Index: 30, Term: 8, SkippedAt: 40, Skipped: 2,
			Addrs: map[NodeID]string{1: "10.0.0.1:6379", 4: "node4:6004"}}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := m.Marshal()
		if len(b) > m.Size() {
			t.Errorf("%v: encoded %d bytes > Size %d", m.Type, len(b), m.Size())
		}
		got, err := UnmarshalMessage(b)
		if err != nil {
			t.Fatalf("%v: %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %v:\n got %+v\nwant %+v", m.Type, got, m)
		}
		// Every strict prefix is rejected, never panics.
		for i := 0; i < len(b); i++ {
			if _, err := UnmarshalMessage(b[:i]); err == nil {
				t.Errorf("%v: prefix of %d/%d bytes accepted", m.Type, i, len(b))
			}
		}
		if _, err := UnmarshalMessage(append(b, 0)); err == nil {
			t.Errorf("%v: trailing byte accepted", m.Type)
		}
	}
}

func TestMessageRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{
		nil, {wireVersion}, {wireVersion + 1, 1, 0}, {1, 1, 0}, {wireVersion, 0, 0}, {wireVersion, byte(msgTypeEnd), 0},
		{wireVersion, 1, 0x80},
		// 2^60 entries claimed
		append([]byte{wireVersion, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10),
	} {
		if _, err := UnmarshalMessage(b); err == nil {
			t.Errorf("garbage %x accepted", b)
		}
	}
}

func FuzzUnmarshalMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(m.Marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		m2, err := UnmarshalMessage(m.Marshal())
		if err != nil {
			t.Fatalf("re-encoding failed: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("unstable round trip:\n%+v\n%+v", m, m2)
		}
	})
}
