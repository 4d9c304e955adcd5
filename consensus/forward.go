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
type forwarder struct {
	byOrigin map[NodeID][]pendingProp // each sorted by ReqID
	count    int
	outbox   []Proposal // to forward in the next Ready
}

type pendingProp struct {
	p      Proposal
	sentAt int64 // tick of the last forward
}

func (f *forwarder) init() { f.byOrigin = map[NodeID][]pendingProp{} }

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
		l = l[k:]
		if len(l) == 0 {
			delete(f.byOrigin, origin)
		} else {
			f.byOrigin[origin] = l
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
	return f.due(now, now+1)
}

// due returns the pending proposals last sent before cutoff and marks them
// sent at now.
func (f *forwarder) due(now, cutoff int64) []Proposal {
	if f.count == 0 {
		return nil
	}
	origins := make([]NodeID, 0, len(f.byOrigin))
	for o := range f.byOrigin {
		origins = append(origins, o)
	}
	slices.Sort(origins) // deterministic order
	var out []Proposal
	for _, o := range origins {
		l := f.byOrigin[o]
		for i := range l {
			if l[i].sentAt < cutoff {
				out = append(out, l[i].p)
				l[i].sentAt = now
			}
		}
	}
	return out
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
