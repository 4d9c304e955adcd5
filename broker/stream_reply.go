package broker

import (
	"slices"
	"strconv"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

// History replies are streamed. An XRANGE over a million entries is a
// reply of hundreds of megabytes; built whole it costs several times that
// in memory (the entries, the reply, the output buffer, the write
// buffer), per reader. Instead the count goes first (from the channel
// index), then entries are read from the log and handed to the writer a
// chunk at a time, and the next chunk is produced only once the writer
// has drained the output below replyDrainBytes: memory per reply is a few
// chunks, and a reader that reads slowly is paced, not buffered for.
//
// A reply that fits in the first chunk is built whole, as before, so a
// damaged record still gets an error reply instead of an array. Once the
// header is out, a read failure can no longer become an error reply: the
// connection is closed instead, so the client sees a failure, never a
// silently short reply. Retention is held back from the reply's entries
// while it is produced (store.PinReads), so the count stays true.
//
// Producing a reply is CPU-bound (read, decode, encode) and, unlike
// Redis's single thread, every reader would run at once: three readers on
// two cores kept every other client's PING waiting for the scheduler. So
// at most historySlots chunks (one core fewer than the node has, at least
// one) are produced at a time, a slot held for one chunk: readers take
// turns, and a core stays free for everyone else.
const (
	replyChunkBytes = 256 << 10
	replyDrainBytes = replyChunkBytes
)

// readBatch is the most messages read from the log at once; fewer when
// they are big, so that a batch is about a chunk.
const readBatch = 256

// writeEntries replies with the messages as stream entries (seqs
// ascending; rev: reply newest first).
func (c *client) writeEntries(seqs []uint64, rev bool) {
	if len(seqs) == 0 {
		c.w.Array(0)
		return
	}
	st := c.srv.replica.Store()
	held, unpin := st.PinReads(seqs[0])
	defer unpin()
	for len(seqs) > 0 && seqs[0] < held {
		seqs = seqs[1:] // dropped by retention since the index was read
	}
	// next reads the next batch in reply order; the first is one message,
	// the next sized from what the previous ones weighed.
	done, buf := 0, make([]*store.Message, readBatch)
	read, weight := 0, 0
	next := func() ([]*store.Message, uint64, error) {
		n := 1
		if read > 0 {
			n = max(1, min(readBatch, replyChunkBytes/max(1, weight/read)))
		}
		n = min(n, len(seqs)-done)
		part := seqs[done : done+n]
		if rev {
			part = seqs[len(seqs)-done-n : len(seqs)-done]
		}
		done += n
		ms := buf[:n]
		failed, err := st.Messages(part, ms)
		if rev {
			slices.Reverse(ms)
		}
		for _, m := range ms {
			if m != nil {
				read++
				weight += len(m.Payload) + len(m.Sender) + 80
			}
		}
		return ms, failed, err
	}
	// The first chunk: read before anything is written.
	var first []*store.Message
	for size := 0; done < len(seqs) && size < replyChunkBytes; {
		ms, failed, err := next()
		if err != nil {
			// Never serve damaged data: report it instead.
			c.w.Error(readError(failed, err))
			return
		}
		for _, m := range ms {
			if m != nil { // (nil: the log was reset under the reader)
				first = append(first, m)
				size += len(m.Payload) + len(m.Sender) + 80
			}
		}
	}
	c.w.Array(len(first) + len(seqs) - done)
	for _, m := range first {
		c.w.entry(m)
	}
	// Chunks after the first are produced holding a history slot.
	holding := false
	release := func() {
		if holding {
			<-c.srv.historySlots
			holding = false
		}
	}
	defer release()
	for done < len(seqs) {
		if len(c.w.b) >= replyChunkBytes {
			release()
			if !c.handOver() {
				return // the client is gone: stop reading the log
			}
		}
		if !holding {
			select {
			case c.srv.historySlots <- struct{}{}:
				holding = true
			case <-c.quit:
				return
			}
		}
		ms, failed, err := next()
		for _, m := range ms {
			if m == nil && err == nil {
				err = consensus.ErrCompacted
			}
		}
		if err != nil {
			c.srv.log.Logf(logging.Warn, "history", "Client id=%d addr=%s closed in the middle of a history reply: %s", c.id, c.addr, readError(failed, err))
			c.w.b = c.w.b[:0]
			c.close()
			return
		}
		for _, m := range ms {
			c.w.entry(m)
		}
	}
}

// entry appends one stream entry.
func (w *replyBuf) entry(m *store.Message) {
	w.Array(2)
	w.BulkString(strconv.FormatUint(m.Seq, 10) + "-0")
	w.Array(6)
	w.BulkString("payload")
	w.Bulk(m.Payload)
	w.BulkString("sender")
	w.BulkString(m.Sender)
	w.BulkString("time")
	w.BulkString(strconv.FormatInt(m.TimeMs, 10))
}

func readError(seq uint64, err error) string {
	return "ERR cannot read seq " + strconv.FormatUint(seq, 10) + " from the log: " + sanitize(err.Error())
}

// handOver moves the reply built so far to the output and waits until
// the writer has sent all but replyDrainBytes of the output. It reports
// false once the client is gone.
func (c *client) handOver() bool {
	c.flush()
	o := &c.out
	for {
		o.mu.Lock()
		unsent, closed := len(o.buf)+o.inflight, o.closed
		o.mu.Unlock()
		if closed {
			return false
		}
		if unsent <= replyDrainBytes {
			return true
		}
		c.handingOver.Store(true)
		select {
		case <-o.drained:
		case <-c.quit:
		}
		c.handingOver.Store(false)
	}
}
