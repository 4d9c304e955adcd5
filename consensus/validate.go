package consensus

import (
	"errors"
	"strconv"
)

// Peers are authenticated, but a faulty peer (a bug, a corrupted disk, a
// bad upgrade) must not be able to wedge the cluster with values no
// correct node sends. Step checks every message against these bounds
// before it touches any state, and returns ErrBadMessage if one fails.

const (
	// maxTerm bounds every term a message may carry: far beyond any
	// real number of elections, yet term+1 can never wrap. (A peer that
	// sent term 2^64-1 used to freeze the cluster: the term was persisted
	// and the next one wrapped to 0.)
	maxTerm = 1 << 62
	// maxIndex bounds every log position a message may carry, so that
	// Index + len(Entries) and index+1 arithmetic never wraps.
	maxIndex = 1 << 62
	// reqIDHorizonMs: ReqIDs are seeded from the wall clock in
	// nanoseconds (see "Exactly-once publishing" in api.go). A forwarded
	// proposal whose ReqID lies more than this beyond the leader's clock
	// cannot come from a correct node; accepting it would raise its
	// origin's dedup high-water mark so far that every later, honest
	// ReqID of that origin counted as a duplicate.
	reqIDHorizonMs = 24 * 60 * 60 * 1000
)

// errBad wraps ErrBadMessage with the reason (errors.Is still matches).
func errBad(why string) error { return errors.Join(ErrBadMessage, errors.New("consensus: "+why)) }

// checkMessage validates m as received from a peer. It reads no state but
// the node's ID and clock, and changes nothing.
func (n *Node) checkMessage(m *Message) error {
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return errBad("unknown message type")
	}
	if m.Term > maxTerm {
		return errBad("term beyond the ceiling")
	}
	// Every term a message names is one the sender has seen, so at most
	// its own term.
	if m.LogTerm > m.Term || m.LastTerm > m.Term || m.AcceptedTerm > m.Term {
		return errBad("log term beyond the message's term")
	}
	if m.Commit > maxIndex || m.RejectHint > maxIndex || m.SyncIndex > maxIndex || m.LastIndex > maxIndex ||
		(m.Type != MsgForward && m.Index > maxIndex) { // (a MsgForward's Index is a ReqID)
		return errBad("log index beyond the ceiling")
	}
	if (m.Reset || m.Conf != nil) && (m.Type == MsgApp || m.Type == MsgSyncResp) {
		if err := checkResetConf(m); err != nil {
			return err
		}
	} else if m.Conf != nil {
		return errBad("configuration on a message that carries none")
	}
	if len(m.Terms) > 0 && m.Type != MsgRecover && m.Type != MsgRecoverResp && !(m.Type == MsgSyncResp && m.Faulty) {
		return errBad("terms on a message that carries none")
	}
	if len(m.Terms) > maxRecoverWindow {
		return errBad("recovery window too large")
	}
	for _, t := range m.Terms {
		if m.Type == MsgRecoverResp && t > recMembership || m.Type != MsgRecoverResp && t > m.Term {
			return errBad("a term beyond the message's term")
		}
	}
	if len(m.Entries) > 0 {
		if m.Type != MsgApp && m.Type != MsgSyncResp && m.Type != MsgRecoverResp {
			return errBad("entries on a message that carries none")
		}
		k := uint64(len(m.Entries))
		if m.Entries[0].Index != m.Index+1 || m.Entries[k-1].Index != m.Index+k {
			return errBad("entries do not follow the message's index")
		}
		prevTerm := uint64(1)
		for i := range m.Entries {
			e := &m.Entries[i]
			if e.Index != m.Index+1+uint64(i) {
				return errBad("entries are not contiguous")
			}
			// Terms of a log are non-decreasing, at least 1, and at most
			// the sender's term.
			if e.Term < prevTerm || e.Term > m.Term {
				return errBad("entry terms out of order or beyond the message's term")
			}
			prevTerm = e.Term
			if e.Type > EntryLost {
				return errBad("unknown entry type")
			}
			if e.Type == EntryLost && len(e.Data) > 0 {
				return errBad("lost entry with data")
			}
			if e.Type == EntryMembership {
				if _, err := DecodeMembership(e.Data); err != nil {
					return errBad("undecodable membership entry")
				}
			}
		}
	}
	if len(m.Proposals) > 0 {
		if m.Type != MsgForward {
			return errBad("proposals on a message that carries none")
		}
		// A forward carries the sender's own proposals; a refusal names
		// ours. Anything else would let one peer speak for another origin
		// (and poison that origin's dedup high-water mark).
		origin := m.From
		if m.Reject {
			origin = n.id
		}
		ceiling := n.reqIDCeiling()
		for i := range m.Proposals {
			p := &m.Proposals[i]
			if p.Origin != origin {
				return errBad("forwarded proposal of another origin")
			}
			if p.Type != EntryNormal {
				return errBad("forwarded proposal of a type other than EntryNormal")
			}
			if !m.Reject && p.ReqID > ceiling {
				return errBad("forwarded ReqID implausibly far ahead of the leader's clock")
			}
		}
	}
	return nil
}

// checkResetConf: a log restart must come with the configuration to
// install, well-formed, at the restart point.
func checkResetConf(m *Message) error {
	cs := m.Conf
	switch {
	case !m.Reset || cs == nil:
		return errBad("a log restart without its configuration (or the reverse)")
	case cs.SkippedAt != m.Index || cs.Skipped > cs.SkippedAt || cs.Term > m.Term || cs.Index > maxIndex:
		return errBad("configuration not at the restart point")
	case len(cs.Voters) == 0:
		return errBad("configuration without voters")
	}
	for _, l := range [][]NodeID{cs.Voters, cs.Learners} {
		for i, id := range l {
			if id == 0 || (i > 0 && id <= l[i-1]) {
				return errBad("configuration IDs not sorted, or zero")
			}
		}
	}
	for _, id := range cs.Learners {
		if cs.IsVoter(id) {
			return errBad("a learner that is also a voter")
		}
	}
	return nil
}

// reqIDCeiling is the highest ReqID a peer may forward: the leader's
// clock plus reqIDHorizonMs, in nanoseconds (the unit ReqIDs are seeded
// in). Without a clock (SetTime never called) there is no bound.
func (n *Node) reqIDCeiling() uint64 {
	if n.wallMs <= 0 {
		return ^uint64(0)
	}
	ms := uint64(n.wallMs) + reqIDHorizonMs
	if ms > ^uint64(0)/1e6 {
		return ^uint64(0)
	}
	return ms * 1e6
}

// invariant stops the process on an impossible state (etcd style):
// carrying on could overwrite or lose committed entries. Nothing a peer
// sends can reach it — Step refuses such input first.
func invariant(what string) {
	panic("consensus: invariant violated: " + what)
}

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }
