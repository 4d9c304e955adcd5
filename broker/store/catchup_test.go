package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ordo-broker/ordo/consensus"
)

// A follower catching up is served chunk after chunk without waiting: while
// one chunk is served the next is read ahead, and every entry served is the
// one the log holds. A truncation drops the chunk read ahead too.
func TestBackgroundReadsReadAhead(t *testing.T) {
	d := NewMemDisk()
	st := openMem(t, d, 8)
	want := entriesFrom(1, 1000)
	if err := appendInBatches(st, want); err != nil {
		t.Fatal(err)
	}
	var queued []func()
	st.SetAsyncReads(func(f func()) { queued = append(queued, f) }, func() {})
	maxBytes := 10 * entryCost(&want[0]) // batches of 10, chunks of readAhead*10
	if _, err := st.Entries(1, 1001, maxBytes); !errors.Is(err, consensus.ErrReadPending) {
		t.Fatalf("uncached read: %v, want ErrReadPending", err)
	}
	queued[0]()
	queued = queued[1:]
	pending := 0
	for next := uint64(1); next <= 1000; {
		es, err := st.Entries(next, 1001, maxBytes)
		if errors.Is(err, consensus.ErrReadPending) {
			pending++
			if len(queued) == 0 {
				t.Fatalf("pending at %d with no read running", next)
			}
		} else if err != nil || len(es) == 0 || len(es) > 10 {
			t.Fatalf("at %d: %d entries, %v", next, len(es), err)
		}
		for _, e := range es {
			w := want[e.Index-1]
			if e.Index != next || e.Term != w.Term || e.ReqID != w.ReqID || !bytes.Equal(e.Data, w.Data) {
				t.Fatalf("at %d: got entry %d %+v, want %+v", next, e.Index, e, w)
			}
			next++
		}
		if len(queued) > 1 {
			t.Fatalf("at %d: %d reads started at once", next, len(queued))
		}
		// The read ahead completes before the chunk being served runs out
		// (the real goroutine gets about as long: a few MsgApp round trips).
		for len(queued) > 0 {
			f := queued[0]
			queued = queued[1:]
			f()
		}
	}
	if pending != 0 {
		t.Errorf("the core waited %d times for a read after the first", pending)
	}

	// A truncation forgets the chunk read ahead as well as the current one.
	for k := 0; k < 2; k++ { // (read 500 on, then serve it: reads ahead)
		_, err := st.Entries(500, 1001, maxBytes)
		if k == 1 && err != nil {
			t.Fatal(err)
		}
		for len(queued) > 0 {
			f := queued[0]
			queued = queued[1:]
			f()
		}
	}
	if _, ok := st.memEntry(545); !ok {
		t.Fatal("the chunk after 500 was not read ahead")
	}
	if err := st.TruncateFrom(520); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.memEntry(545); ok {
		t.Fatal("the chunk read ahead survived a truncation")
	}
}

// appendInBatches appends es in batches the cache can hold, as live
// publishing does: only the last ones stay in memory.
func appendInBatches(st *Store, es []consensus.Entry) error {
	for len(es) > 0 {
		n := min(len(es), len(st.cache.buf))
		if err := st.Append(es[:n]); err != nil {
			return err
		}
		es = es[n:]
	}
	return nil
}

// Batches larger than the cache (a catching-up follower's) are applied from
// memory, not read back from the log; a truncation forgets them.
func TestLargeAppendServedFromMemory(t *testing.T) {
	st := openMem(t, NewMemDisk(), 8)
	want := entriesFrom(1, 100)
	// Two batches: the second is persisted while the first is applied.
	if err := st.Append(want[:40]); err != nil {
		t.Fatal(err)
	}
	if err := st.Append(want[40:]); err != nil {
		t.Fatal(err)
	}
	st.SetAsyncReads(func(func()) { t.Fatal("a background read started") }, func() {})
	for next := uint64(1); next <= 100; {
		es, err := st.Entries(next, 101, 1<<20)
		if err != nil || len(es) == 0 {
			t.Fatalf("at %d: %d entries, %v", next, len(es), err)
		}
		for _, e := range es {
			if w := want[next-1]; e.Index != next || !bytes.Equal(e.Data, w.Data) {
				t.Fatalf("at %d: got entry %d, want %d", next, e.Index, w.Index)
			}
			next++
		}
	}
	if err := st.TruncateFrom(50); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.memEntry(10); ok {
		t.Fatal("the batch survived a truncation")
	}
}
