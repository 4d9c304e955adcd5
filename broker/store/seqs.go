package store

import (
	"sort"

	"github.com/ordo-broker/ordo/consensus"
)

// Sequence numbers and log indexes. Membership entries take a log index
// but no message sequence number (consensus.Entry.Seq), so once the
// membership has changed a message's seq (what users see: PUBLISH
// replies, XRANGE IDs, deliveries) is smaller than its index (where it is
// in the log). The channel index holds seqs; the log is read by index.
//
// seqRuns maps between the two: a run starts at every normal entry whose
// index - seq differs from the previous one's (after each membership
// entry), so a cluster that changed its membership a few times has a few
// runs, and one that never did has one run with seq == index.
type seqRun struct{ index, seq uint64 } // first normal entry of the run

type seqRuns []seqRun

// note records entry e (appended or loaded in index order).
func (r *seqRuns) note(e *consensus.Entry) {
	if e.Type != consensus.EntryNormal || e.Seq == 0 || e.Seq > e.Index {
		return
	}
	if k := len(*r); k > 0 {
		last := (*r)[k-1]
		if e.Index < last.index {
			return // (only appends in order reach here)
		}
		if e.Index-last.index == e.Seq-last.seq {
			return // same run
		}
	}
	*r = append(*r, seqRun{e.Index, e.Seq})
}

// truncate forgets runs that start at or after index i.
func (r *seqRuns) truncate(i uint64) {
	k := len(*r)
	for k > 0 && (*r)[k-1].index >= i {
		k--
	}
	*r = (*r)[:k]
}

// index is the log index of message seq (seq itself with no runs).
func (r seqRuns) index(seq uint64) uint64 {
	k := sort.Search(len(r), func(k int) bool { return r[k].seq > seq }) - 1
	if k < 0 {
		if len(r) == 0 {
			return seq
		}
		k = 0
	}
	return r[k].index + seq - r[k].seq
}

// seq is the sequence number of the message at index i, or, for a
// membership entry, of the message before it (0 if none is known).
func (r seqRuns) seq(i uint64) uint64 {
	k := sort.Search(len(r), func(k int) bool { return r[k].index > i }) - 1
	switch {
	case k >= 0:
		return r[k].seq + i - r[k].index
	case len(r) == 0:
		return i
	case r[0].seq > 0:
		return r[0].seq - 1 // before the first known message
	}
	return 0
}
