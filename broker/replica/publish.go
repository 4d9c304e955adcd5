package replica

import (
	"errors"
	"runtime"
	"slices"
	"time"

	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
)

// Result is the outcome of a publish: the number of local subscribers
// that received it, or why it was not acknowledged.
type Result struct {
	Receivers int
	Err       error
}

// Publish outcomes other than success. Only ErrUnconfirmed leaves the
// outcome open: the message may still be delivered.
var (
	// ErrNoLeader: no leader was reachable within one leader timeout; the
	// publish was not sequenced.
	ErrNoLeader = errors.New("no leader: this node cannot reach a majority of the cluster; retry shortly")
	// ErrNotSequenced: a leader change dropped the publish before it was
	// sequenced; it will not be delivered.
	ErrNotSequenced = errors.New("publish was not sequenced (leader changed); retry it")
	// ErrUnconfirmed: no commit was seen within the publish timeout; the
	// message may or may not be delivered.
	ErrUnconfirmed = errors.New("publish not confirmed: no leader with a majority answered in time; it may or may not be delivered")
	// ErrShuttingDown: the node is stopping; the publish was not
	// sequenced.
	ErrShuttingDown = errors.New("server is shutting down")
	// ErrStoppedUnconfirmed: the node stopped after proposing the publish
	// and before seeing it commit; the rest of the cluster may still
	// commit it, so it may or may not be delivered.
	ErrStoppedUnconfirmed = errors.New("node stopped before the publish was confirmed; it may or may not be delivered")
)

// StorageError: this node cannot write its log; the publish was not
// acknowledged.
type StorageError struct{ Err error }

func (e *StorageError) Error() string {
	return "disk error, publish not acknowledged: " + e.Err.Error()
}
func (e *StorageError) Unwrap() error { return e.Err }

// RefusedError: the core refused the publish (the message says why); it
// was not sequenced.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Request is a publish accepted from a local client, waiting for its
// commit. Callers embed it in their own per-publish record and submit it
// with Submit, so that a publish costs them one allocation, not one for
// the record, one for the request and one for a callback.
type Request struct {
	Msg         store.Message // its slices must stay unchanged until the outcome is known
	done        Waiter
	reqID       uint64
	deadline    time.Time
	parkedUntil time.Time
	accepted    time.Time // first proposed (for the commit latency)
}

// Waiter is told a publish's outcome.
type Waiter interface {
	PublishDone(Result)
}

// funcWaiter adapts a callback to Waiter.
type funcWaiter func(Result)

func (f funcWaiter) PublishDone(r Result) { f(r) }

// pubReq is the name the loop uses.
type pubReq = Request

// Publish submits m for sequencing; done is called exactly once, from the
// replica's loop, with the outcome. m's slices must stay unchanged until
// then.
func (r *Replica) Publish(m store.Message, done func(Result)) {
	r.Submit(&Request{Msg: m}, funcWaiter(done))
}

// Submit is Publish for a request the caller allocated (with req.Msg set):
// w.PublishDone is called exactly once, from the replica's loop, with the
// outcome. req must not be reused until then.
func (r *Replica) Submit(req *Request, w Waiter) {
	p := req
	p.done = w
	// A send racing with Stop could land in the queue after the loop has
	// gone: submitting lets Stop wait such sends out and then answer what
	// is left in the queue (failQueued), so done is still called once.
	r.submitting.Add(1)
	defer r.submitting.Add(-1)
	select {
	case <-r.stopc:
		w.PublishDone(Result{Err: ErrShuttingDown})
		return
	default:
	}
	select {
	case r.proposals <- p:
	case <-r.stopc:
		r.fail(p, ErrShuttingDown) // (counted like any other failure)
	}
}

// failQueued answers the publishes still queued when the loop ended (or
// never started): they were never proposed. Called by Stop, after stopc is
// closed, so no new publish enters the queue once submitting is zero.
func (r *Replica) failQueued() {
	for deadline := time.Now().Add(time.Second); r.submitting.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	for {
		select {
		case p := <-r.proposals:
			r.fail(p, ErrShuttingDown)
		default:
			return
		}
	}
}

// gather implements group commit: it takes every publish already queued;
// while the batch is smaller than the last one, it yields a few times so
// publishers that are about to submit join it (one fsync for all).
func (r *Replica) gather(batch []*pubReq) []*pubReq {
	for spins := 0; ; spins++ {
	drain:
		for len(batch) < cap(batch) {
			select {
			case p := <-r.proposals:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if spins >= 3 || len(batch) >= r.lastBatch {
			break
		}
		runtime.Gosched()
	}
	r.lastBatch = len(batch)
	return batch
}

func (r *Replica) propose(batch []*pubReq) {
	if len(r.parked) > 0 {
		// Keep each connection's order: held publishes go first.
		batch = append(r.parked, batch...)
		r.parked = nil
	}
	if r.broken != nil {
		for _, p := range batch {
			r.fail(p, &StorageError{r.broken})
		}
		return
	}
	// The batch's messages are encoded once, into one buffer: each
	// entry's Data is a slice of it from here to the log, the peers and
	// delivery. (The core copies the proposal slice, so it is reused.)
	size := 0
	for _, p := range batch {
		size += store.MessageSize(&p.Msg)
	}
	arena := make([]byte, 0, size)
	props := slices.Grow(r.props[:0], len(batch))[:len(batch)]
	now := r.now()
	r.core.SetTime(now.UnixMilli())
	deadline := now.Add(r.cfg.PublishTimeout)
	for i, p := range batch {
		r.reqID++
		p.reqID, p.deadline = r.reqID, deadline
		if p.accepted.IsZero() {
			p.accepted = now
		}
		start := len(arena)
		arena = store.AppendMessage(arena, &p.Msg)
		props[i] = consensus.Proposal{Origin: r.id, ReqID: p.reqID, Type: consensus.EntryNormal, Data: arena[start:len(arena):len(arena)]}
	}
	err := r.core.Propose(props...)
	clear(props) // (the core keeps its own copy)
	r.props = props[:0]
	if err != nil {
		if errors.Is(err, consensus.ErrNoLeader) {
			// An election may be under way (or the node just started):
			// hold the publishes for up to one leader timeout, then fail.
			for _, p := range batch {
				if p.parkedUntil.IsZero() {
					p.parkedUntil = now.Add(r.cfg.LeaderTimeout)
				}
				r.parked = append(r.parked, p)
			}
			return
		}
		for _, p := range batch {
			r.fail(p, &RefusedError{err})
		}
		return
	}
	for _, p := range batch {
		r.waiting[p.reqID] = p
		r.order = append(r.order, p)
	}
}

func (r *Replica) fail(p *pubReq, err error) {
	r.stats.PublishErrors.Add(1)
	r.stats.PublishErrorsBy[failReason(err)].Add(1)
	p.done.PublishDone(Result{Err: err})
}

// unpark re-proposes publishes held while no leader was known, and fails
// those held too long.
func (r *Replica) unpark(now time.Time) {
	if len(r.parked) == 0 {
		return
	}
	parked := r.parked
	r.parked = nil
	if r.core.Status().Leader != 0 {
		r.propose(parked)
		return
	}
	for _, p := range parked {
		if now.After(p.parkedUntil) {
			r.fail(p, ErrNoLeader)
		} else {
			r.parked = append(r.parked, p)
		}
	}
}

// leaderLost shortens the wait of publishes in flight when this node no
// longer knows a leader (it stepped down, or its leader went silent): the
// core re-forwards them if a new leader appears soon (a failover); if none
// does, they fail promptly instead of hanging until the publish timeout.
func (r *Replica) leaderLost(now time.Time) {
	limit := now.Add(2 * r.cfg.LeaderTimeout)
	for _, p := range r.order {
		if p.deadline.After(limit) {
			p.deadline = limit
		}
	}
}

// expire fails publishes that waited longer than the publish timeout. The
// outcome of such a publish is unknown to the client, and the error says so.
func (r *Replica) expire(now time.Time) {
	i := 0
	for ; i < len(r.order); i++ {
		p := r.order[i]
		if r.waiting[p.reqID] != p {
			continue // already answered
		}
		if now.Before(p.deadline) {
			break
		}
		delete(r.waiting, p.reqID)
		r.core.Cancel(r.id, p.reqID)
		r.fail(p, ErrUnconfirmed)
	}
	if i > 0 {
		r.order = append(r.order[:0], r.order[i:]...)
	}
	if len(r.order) > 0 && len(r.waiting) == 0 {
		r.order = r.order[:0]
	}
}

func (r *Replica) failAll(err error) {
	for id, p := range r.waiting {
		delete(r.waiting, id)
		r.fail(p, err)
	}
	r.order = r.order[:0]
}
