package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

func entriesFrom(lo, n uint64) []consensus.Entry {
	es := make([]consensus.Entry, n)
	for i := range es {
		idx := lo + uint64(i)
		m := Message{Channel: []byte("c"), Payload: fmt.Appendf(nil, "p%d", idx), Sender: "s"}
		es[i] = consensus.Entry{Index: idx, Term: 1, Origin: 1, ReqID: idx, Time: 1, Data: EncodeMessage(&m)}
	}
	return es
}

func openMem(t *testing.T, d *MemDisk, cache int) *Store {
	t.Helper()
	l, _, err := d.OpenLog(wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return NewSized(l, cache)
}

// A crash keeps what was synced and loses the rest; a crash planned in
// the middle of a write keeps a prefix of it (a torn write), never a hole.
func TestMemDiskCrashLosesExactlyTheUnsynced(t *testing.T) {
	for keep := 0; keep <= 3; keep++ {
		d := NewMemDisk()
		st := openMem(t, d, 16)
		if err := st.Append(entriesFrom(1, 10)); err != nil {
			t.Fatal(err)
		}
		if err := d.SaveState(DiskState{Term: 1, Commit: 5}, true); err != nil {
			t.Fatal(err)
		}
		if err := d.SaveState(DiskState{Term: 2, Commit: 9}, false); err != nil {
			t.Fatal(err)
		}
		d.CrashAfter(3) // this write dies after three of its five records
		if err := st.Append(entriesFrom(11, 5)); !errors.Is(err, ErrCrashed) {
			t.Fatalf("append into a crash: %v", err)
		}
		if !d.Dead() {
			t.Fatal("disk not dead after its planned crash")
		}
		if err := d.SaveState(DiskState{Term: 3}, true); !errors.Is(err, ErrCrashed) {
			t.Fatalf("a dead disk took a write: %v", err)
		}
		d.Crash(func(n int) int {
			if n != 3 {
				t.Fatalf("%d unsynced records, want the 3 written before the crash", n)
			}
			return keep
		})
		if _, err := st.log.Read(1); err == nil {
			t.Fatal("the crashed incarnation's log still reads")
		}
		st = openMem(t, d, 16)
		if got, want := st.LastIndex(), uint64(10+keep); got != want {
			t.Errorf("keep %d: last index %d, want %d", keep, got, want)
		}
		if hs, _ := d.LoadState(); hs.Term != 1 || hs.Commit != 5 {
			t.Errorf("keep %d: state %+v, want the synced one (term 1, commit 5)", keep, hs)
		}
	}
}

// Catch-up reads: what the cache lacks is read in the background, served
// from memory afterwards, and never served after the log changed under it.
func TestBackgroundReads(t *testing.T) {
	d := NewMemDisk()
	st := openMem(t, d, 8) // the cache holds only the last 8 entries
	if err := appendInBatches(st, entriesFrom(1, 100)); err != nil {
		t.Fatal(err)
	}
	var queued []func()
	ready := 0
	st.SetAsyncReads(func(f func()) { queued = append(queued, f) }, func() { ready++ })

	if _, err := st.Entries(1, 50, 1<<20); !errors.Is(err, consensus.ErrReadPending) {
		t.Fatalf("uncached read: %v, want ErrReadPending", err)
	}
	if _, err := st.Entries(1, 50, 1<<20); !errors.Is(err, consensus.ErrReadPending) || len(queued) != 1 {
		t.Fatalf("second request while reading: %v, %d reads started, want one", err, len(queued))
	}
	queued[0]()
	queued = nil
	if ready != 1 {
		t.Fatalf("onRead called %d times", ready)
	}
	es, err := st.Entries(1, 50, 1<<20)
	if err != nil || len(es) != 49 || es[0].Index != 1 || es[48].Index != 49 {
		t.Fatalf("after the read: %d entries, %v", len(es), err)
	}
	// maxBytes still bounds a batch served from memory.
	if es, _ := st.Entries(1, 50, 3*entryCost(&es[0])); len(es) != 3 {
		t.Fatalf("maxBytes: %d entries, want 3", len(es))
	}
	// The cache serves the tail at once.
	if es, err := st.Entries(95, 101, 1<<20); err != nil || len(es) != 6 {
		t.Fatalf("cached tail: %d entries, %v", len(es), err)
	}

	// A truncation forgets the chunk, and a read that raced it is dropped.
	if _, err := st.Entries(60, 70, 1<<20); !errors.Is(err, consensus.ErrReadPending) {
		t.Fatalf("new range: %v", err)
	}
	if err := st.TruncateFrom(65); err != nil {
		t.Fatal(err)
	}
	queued[0]() // reads 60..64 of the truncated log, but started before
	queued = nil
	if _, err := st.Entries(1, 10, 1<<20); !errors.Is(err, consensus.ErrReadPending) {
		t.Fatalf("chunk survived a truncation: %v", err)
	}
	if _, ok := st.memEntry(60); ok {
		t.Fatal("a read that raced a truncation was installed")
	}
}

// A background read that fails is not retried in the background forever:
// the core's next call reads itself and gets the error.
func TestBackgroundReadFailureSurfaces(t *testing.T) {
	d := NewMemDisk()
	st := openMem(t, d, 4)
	if err := appendInBatches(st, entriesFrom(1, 20)); err != nil {
		t.Fatal(err)
	}
	st.log.Close() // every read fails from now on
	var queued []func()
	st.SetAsyncReads(func(f func()) { queued = append(queued, f) }, func() {})
	if _, err := st.Entries(1, 5, 1<<20); !errors.Is(err, consensus.ErrReadPending) {
		t.Fatalf("first call: %v", err)
	}
	queued[0]()
	if _, err := st.Entries(1, 5, 1<<20); err == nil || errors.Is(err, consensus.ErrReadPending) {
		t.Fatalf("after a failed read: %v, want the read's error", err)
	}
}
