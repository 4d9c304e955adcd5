package consensus

import "slices"

// forwarder tracks the proposals this node accepted until it sees them
// committed. A follower forwards them to the leader and re-forwards them
// to every new leader (and periodically), so a publish survives failovers;
// the leader's (Origin, ReqID) dedup makes the retries idempotent.
//
// Because a leader appends a proposal only if its ReqID exceeds every
// ReqID of its origin already in the log, a committed (o, r) proves that
// every pending (o, r') with r' < r can never commit: those are reported
// as dropped (the caller answers the client with a retryable error).
//
// Per-origin order (a client pipelining PUBLISHes gets them in order): the
// proposals of an origin go to the leader as a stream of MsgForward
// batches in ReqID order, each naming the ReqID sent just before it
// (Message.Index). The leader appends a batch only if it has that one
// (received in this leadership, or in its log); otherwise an earlier batch
// was lost (a dropped connection, a coordinator that was not leader yet,
// a full queue), and appending would let later proposals overtake it and
// supersede it. It refuses instead, and the follower restarts the stream
// with every pending proposal of the origin, oldest first. A stream also
// restarts for every new (leader, term) and when a proposal stays
// uncommitted for ElectionTicks. So a pending proposal is never
// superseded by a later one of its origin, only by a cancelled one.
type forwarder struct {
	byOrigin map[NodeID][]pendingProp // each sorted by ReqID
	count    int
	outbox   []Proposal // to forward in the next Ready

	// The stream to the current leader, per origin: the highest ReqID
	// sent in it (the Index of the next batch; absent: the next batch
	// restarts it), the highest ever sent, and the highest sent when the
	// stream last restarted (a refusal of a batch at or below it predates
	// that restart and is ignored).
	sent, hiSent, mark map[NodeID]uint64
}

type pendingProp struct {
	p      Proposal
	sentAt int64 // tick of the last forward
}

func (f *forwarder) init() {
	f.byOrigin = map[NodeID][]pendingProp{}
	f.sent, f.hiSent, f.mark = map[NodeID]uint64{}, map[NodeID]uint64{}, map[NodeID]uint64{}
}

// track starts tracking ps (ReqID 0 proposals are not tracked).
func (f *forwarder) track(ps []Proposal, now int64) {
	for _, p := range ps {
		if p.ReqID == 0 {
			continue
		}
		l := f.byOrigin[p.Origin]
		i := len(l)
		if i > 0 && l[i-1].p.ReqID >= p.ReqID {
			j, found := slices.BinarySearchFunc(l, p.ReqID, func(a pendingProp, r uint64) int {
				return cmpU64(a.p.ReqID, r)
			})
			if found {
				continue
			}
			i = j
		}
		f.byOrigin[p.Origin] = slices.Insert(l, i, pendingProp{p: p, sentAt: now})
		f.count++
	}
}

// committed records that (origin, req) committed; it returns the pending
// proposals of origin that can therefore never commit.
func (f *forwarder) committed(origin NodeID, req uint64, dropped []Proposal) []Proposal {
	if req == 0 {
		return dropped
	}
	l, ok := f.byOrigin[origin]
	if !ok {
		return dropped
	}
	k := 0
	for k < len(l) && l[k].p.ReqID <= req {
		if l[k].p.ReqID < req {
			dropped = append(dropped, l[k].p)
		}
		k++
	}
	if k > 0 {
		f.count -= k
		switch {
		case k == len(l):
			// Keep the emptied array for the origin's next proposals.
			clear(l)
			f.byOrigin[origin] = l[:0]
		case len(l)-k <= k:
			// Move the few left to the front, so the array is reused by
			// later proposals instead of reallocated as its front is cut
			// away batch after batch (amortised: at most what was cut).
			f.byOrigin[origin] = l[:copy(l, l[k:])]
			clear(l[len(l)-k:])
		default:
			f.byOrigin[origin] = l[k:]
		}
	}
	return dropped
}

func (f *forwarder) cancel(origin NodeID, req uint64) bool {
	l := f.byOrigin[origin]
	i, found := slices.BinarySearchFunc(l, req, func(a pendingProp, r uint64) int {
		return cmpU64(a.p.ReqID, r)
	})
	if !found {
		return false
	}
	l = slices.Delete(l, i, i+1)
	f.count--
	if len(l) == 0 {
		delete(f.byOrigin, origin)
	} else {
		f.byOrigin[origin] = l
	}
	return true
}

// all returns every pending proposal, per origin in ReqID order, and marks
// them sent at now.
func (f *forwarder) all(now int64) []Proposal {
	var out []Proposal
	for _, o := range f.origins() {
		out = f.appendPending(out, o, now)
	}
	return out
}

func (f *forwarder) origins() []NodeID {
	origins := make([]NodeID, 0, len(f.byOrigin))
	for o, l := range f.byOrigin {
		if len(l) > 0 { // (committed keeps emptied lists for reuse)
			origins = append(origins, o)
		}
	}
	slices.Sort(origins) // deterministic order
	return origins
}

func (f *forwarder) appendPending(out []Proposal, o NodeID, now int64) []Proposal {
	l := f.byOrigin[o]
	for i := range l {
		out = append(out, l[i].p)
		l[i].sentAt = now
	}
	return out
}

// restartAll restarts the stream of every origin (a new leader or term):
// the outbox becomes the unsent untracked proposals followed by every
// pending one.
func (f *forwarder) restartAll(now int64) {
	out := f.outbox[:0]
	for _, p := range f.outbox {
		if p.ReqID == 0 { // untracked: still unsent
			out = append(out, p)
		}
	}
	f.outbox = out
	clear(f.sent)
	for _, o := range f.origins() {
		f.restartMark(o)
		f.outbox = f.appendPending(f.outbox, o, now)
	}
}

// restart restarts the stream of origin o: its pending proposals are
// forwarded again, oldest first, as a new stream.
func (f *forwarder) restart(o NodeID, now int64) {
	out := f.outbox[:0]
	for _, p := range f.outbox {
		if p.Origin != o || p.ReqID == 0 {
			out = append(out, p)
		}
	}
	f.outbox = out
	delete(f.sent, o)
	f.restartMark(o)
	f.outbox = f.appendPending(f.outbox, o, now)
}

func (f *forwarder) restartMark(o NodeID) {
	m := f.hiSent[o]
	if l := f.byOrigin[o]; len(l) > 0 {
		m = max(m, l[len(l)-1].p.ReqID)
	}
	f.mark[o] = m
}

// nextBatch takes the next MsgForward batch off the front of out: one
// origin, tracked or untracked proposals only, at least one and at most
// maxBytes of Data. For a tracked batch it returns the stream's previous
// ReqID and records the batch as sent.
func (f *forwarder) nextBatch(out []Proposal, maxBytes int) (batch, rest []Proposal, prev uint64) {
	o, tracked := out[0].Origin, out[0].ReqID != 0
	k, size := 0, 0
	for k < len(out) && out[k].Origin == o && (out[k].ReqID != 0) == tracked &&
		(k == 0 || size+len(out[k].Data) <= maxBytes) {
		size += len(out[k].Data)
		k++
	}
	batch, rest = out[:k:k], out[k:]
	if tracked {
		prev = f.sent[o]
		top := prev
		for _, p := range batch {
			top = max(top, p.ReqID)
		}
		f.sent[o] = top
		f.hiSent[o] = max(f.hiSent[o], top)
	}
	return batch, rest, prev
}

// refused handles the leader's refusal of a batch starting at (o, req):
// unless the refusal predates the last restart, the stream restarts.
func (f *forwarder) refused(o NodeID, req uint64, now int64) bool {
	if req <= f.mark[o] {
		return false
	}
	f.restart(o, now)
	return true
}

// stale returns the origins with a proposal forwarded before cutoff and
// still not committed: their streams restart.
func (f *forwarder) stale(cutoff int64) []NodeID {
	var out []NodeID
	for _, o := range f.origins() {
		for _, pp := range f.byOrigin[o] {
			if pp.sentAt < cutoff {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// untrackAll stops tracking every pending proposal (see Node.resetLog).
func (f *forwarder) untrackAll() {
	clear(f.byOrigin)
	f.count = 0
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
