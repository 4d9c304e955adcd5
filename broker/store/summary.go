package store

import (
	"slices"

	"github.com/ordo-broker/ordo/consensus"
)

// The store keeps, for the applied prefix of the log, what the consensus
// core would otherwise read every entry for at startup
// (consensus.PrefixSummary): the highest ReqID per origin, the membership
// entries, the term runs. Appended entries wait in pending until they are
// applied (a divergent tail may still be truncated), then fold in. It is
// also what a checkpoint saves, so a restart from a checkpoint reads
// neither the store's nor the core's share of the log.
type summary struct {
	upto       uint64
	maxReq     map[consensus.NodeID]uint64
	membership []uint64
	terms      []consensus.TermStart
}

// pendingMark is an appended entry not yet folded into the summary.
type pendingMark struct {
	index, term, reqID uint64
	origin             consensus.NodeID
	membership         bool
}

func markOf(e *consensus.Entry) pendingMark {
	return pendingMark{e.Index, e.Term, e.ReqID, e.Origin, e.Type == consensus.EntryMembership}
}

// maxTermRuns bounds the term runs kept (one per term change); the core
// keeps fewer (it needs the recent ones only).
const maxTermRuns = 1024

func (s *summary) fold(m *pendingMark) {
	if s.maxReq == nil {
		s.maxReq = map[consensus.NodeID]uint64{}
	}
	if m.reqID != 0 && m.reqID > s.maxReq[m.origin] {
		s.maxReq[m.origin] = m.reqID
	}
	if m.membership {
		s.membership = append(s.membership, m.index)
	}
	if k := len(s.terms); k == 0 || s.terms[k-1].Term != m.term {
		if k >= maxTermRuns {
			s.terms = append(s.terms[:0], s.terms[k/2:]...)
		}
		s.terms = append(s.terms, consensus.TermStart{Index: m.index, Term: m.term})
	}
	s.upto = m.index
}

// foldPending folds the pending marks up to index i (s.mu held).
func (s *Store) foldPending(i uint64) {
	k := 0
	for k < len(s.pending) && s.pending[k].index <= i {
		s.sum.fold(&s.pending[k])
		k++
	}
	if k > 0 {
		n := copy(s.pending, s.pending[k:])
		s.pending = s.pending[:n]
	}
	if i > s.sum.upto {
		s.sum.upto = i // (indexes with nothing pending: damaged records a lone node keeps)
	}
}

// dropPending forgets pending marks at or after index i (s.mu held).
func (s *Store) dropPending(i uint64) {
	k := len(s.pending)
	for k > 0 && s.pending[k-1].index >= i {
		k--
	}
	s.pending = s.pending[:k]
}

// PrefixSummary implements consensus.Summarizer: the summary of the
// applied prefix, so the core does not read the whole log again at
// startup.
func (s *Store) PrefixSummary() (consensus.PrefixSummary, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sum.upto == 0 || s.sum.upto < s.log.FirstIndex() {
		return consensus.PrefixSummary{}, false
	}
	reqs := make(map[consensus.NodeID]uint64, len(s.sum.maxReq))
	for o, r := range s.sum.maxReq {
		reqs[o] = r
	}
	return consensus.PrefixSummary{
		Upto:       s.sum.upto,
		MaxReqID:   reqs,
		Membership: slices.Clone(s.sum.membership),
		Terms:      slices.Clone(s.sum.terms),
	}, true
}

var _ consensus.Summarizer = (*Store)(nil)
