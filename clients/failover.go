package clients

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Failover is a client of a cluster reachable at several addresses (any
// member serves every command). It uses one address at a time and moves
// to the next one when that node cannot be reached, so a chat or a
// consumer carries on when its node dies:
//
//   - Follow resumes after the last message it delivered, on whichever
//     node it reaches next: no gap, no duplicate.
//   - Publish moves on and retries only when the message certainly was
//     not delivered (see NotDelivered); any other failure is returned, as
//     retrying it could publish the message twice.
//
// A Failover is safe for concurrent use.
type Failover struct {
	opts    Options
	onEvent func(Event)

	mu     sync.Mutex
	addrs  []string
	cur    int
	gen    uint64 // bumped by every move, so a failure is acted on once
	conns  map[string]*Client
	closed bool
}

// EventKind says what happened to a Failover's connection.
type EventKind int

const (
	// Connected: Follow reached Addr and goes on after seq After.
	Connected EventKind = iota + 1
	// Lost: Addr failed with Err; the client moves to Next.
	Lost
)

// Event reports a change of node, for a program to show.
type Event struct {
	Kind  EventKind
	Addr  string
	Next  string // Lost: the address tried next
	Err   error  // Lost: why
	After uint64 // Connected: Follow resumes after this seq
}

// NewFailover returns a client for the nodes at addrs (host:port), tried
// in that order; it connects lazily. onEvent, if not nil, is told when
// Follow (re)connects and when a node is given up; it must not block for
// long nor call the Failover.
func NewFailover(addrs []string, opts Options, onEvent func(Event)) *Failover {
	opts.NoRetry = true
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	var uniq []string
	for _, a := range addrs {
		if a != "" && !slices.Contains(uniq, a) {
			uniq = append(uniq, a)
		}
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	return &Failover{opts: opts, onEvent: onEvent, addrs: uniq, conns: map[string]*Client{}}
}

// ErrClosed is returned by a Failover's methods after Close.
var ErrClosed = errors.New("clients: failover client closed")

// errNoAddr is returned when a Failover was given no address.
var errNoAddr = errors.New("clients: no address to connect to")

// Addr is the address in use.
func (f *Failover) Addr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.addrs) == 0 {
		return ""
	}
	return f.addrs[f.cur]
}

// Addrs is every address, in the order they are tried.
func (f *Failover) Addrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs)
}

// current returns the client for the address in use and the generation
// it belongs to.
func (f *Failover) current() (*Client, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, 0, ErrClosed
	}
	if len(f.addrs) == 0 {
		return nil, 0, errNoAddr
	}
	a := f.addrs[f.cur]
	c := f.conns[a]
	if c == nil {
		c = NewWithOptions(a, f.opts)
		f.conns[a] = c
	}
	return c, f.gen, nil
}

// move gives up the address in use after cause, if nobody has moved
// since generation gen, and switches to the next one. Closing the old
// connections interrupts a Follow blocked on them, so every user of the
// Failover moves together.
func (f *Failover) move(gen uint64, cause error) {
	f.mu.Lock()
	if f.closed || gen != f.gen || len(f.addrs) == 0 {
		f.mu.Unlock()
		return
	}
	old := f.addrs[f.cur]
	f.dropLocked(old)
	f.cur = (f.cur + 1) % len(f.addrs)
	f.gen++
	next := f.addrs[f.cur]
	f.mu.Unlock()
	f.onEvent(Event{Kind: Lost, Addr: old, Next: next, Err: cause})
}

func (f *Failover) dropLocked(addr string) {
	if c := f.conns[addr]; c != nil {
		c.Close()
		delete(f.conns, addr)
	}
}

// Connect makes addr the address in use (adding it to the list if it is
// new); a running Follow moves there and resumes where it was.
func (f *Failover) Connect(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	i := slices.Index(f.addrs, addr)
	if i < 0 {
		f.addrs = append(f.addrs, addr)
		i = len(f.addrs) - 1
	}
	if len(f.addrs) > 1 && i != f.cur {
		f.dropLocked(f.addrs[f.cur])
	}
	f.cur = i
	f.gen++
}

// Close closes every connection; a running Follow returns at once.
func (f *Failover) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for a := range f.conns {
		f.dropLocked(a)
	}
	return nil
}

// NotDelivered reports whether a PUBLISH error means the message was
// certainly not delivered, so that sending it again cannot duplicate it:
// the connection could not be opened, the node answered CLUSTERDOWN (it
// reached no leader and sequenced nothing), TRYAGAIN saying the publish
// "was not sequenced" (a leader change dropped it), or TRYAGAIN saying
// the node is shutting down (it refused the publish). A broken
// connection or any other TRYAGAIN ("may or may not be delivered")
// leaves the outcome unknown: the message may still appear.
func NotDelivered(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	// Both kinds of TRYAGAIN share the code; only the text tells the
	// certain one (broker/replica.ErrNotSequenced) apart.
	msg := err.Error()
	return strings.HasPrefix(msg, "CLUSTERDOWN ") || strings.HasPrefix(msg, "TRYAGAIN publish was not sequenced") ||
		shuttingDown(err)
}

// shuttingDown reports a node's refusal while it stops gracefully: the
// client should move to another member.
func shuttingDown(err error) bool {
	return strings.HasPrefix(err.Error(), "TRYAGAIN node is shutting down")
}

// backoff waits before round k of retries (k >= 1), or returns ctx's
// error.
func backoff(ctx context.Context, k int) error {
	d := min(50*time.Millisecond<<min(k, 6), 2*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Publish publishes payload on channel through the node in use and
// returns the number of that node's subscribers that received it. When
// the message certainly was not delivered (NotDelivered) it tries again
// (on the next address if the node could not be reached) until ctx ends;
// bound ctx to bound the wait. Other errors are returned at once.
func (f *Failover) Publish(ctx context.Context, channel, payload string) (int64, error) {
	for round := 1; ; round++ {
		c, gen, err := f.current()
		if err != nil {
			return 0, err
		}
		n, err := c.Publish(ctx, channel, payload)
		if err == nil || !NotDelivered(err) {
			return n, err
		}
		var op *net.OpError
		switch {
		case !errors.As(err, &op) && !errors.Is(err, syscall.ECONNREFUSED) && !shuttingDown(err):
			// The node is up but reaches no leader (an election is
			// under way, or it is cut off): wait and ask it again.
			err = backoffOr(ctx, round, err)
		default: // unreachable or stopping: another node may take it
			f.move(gen, err)
			if n := len(f.Addrs()); round%max(1, n) == 0 {
				err = backoffOr(ctx, round/max(1, n), err)
			} else {
				err = nil
			}
		}
		if err != nil {
			return 0, err
		}
	}
}

// backoffOr waits before retry round k and returns nil, or returns last
// (the real reason, rather than "context deadline exceeded") once ctx
// has ended.
func backoffOr(ctx context.Context, k int, last error) error {
	if backoff(ctx, k) != nil {
		return last
	}
	return nil
}

// Status returns the STATUS fields of the node in use.
func (f *Failover) Status(ctx context.Context) (map[string]string, error) {
	c, _, err := f.current()
	if err != nil {
		return nil, err
	}
	return c.Status(ctx)
}

// stopErr carries an error of Follow's callback, which ends Follow
// instead of moving to another node.
type stopErr struct{ err error }

func (s stopErr) Error() string { return s.err.Error() }

// Follow calls fn for every message of channel after seq after, in
// order, as Client.Follow does, and keeps doing so across nodes: when
// the node in use fails (or Connect names another) it continues on the
// next one after the last message fn accepted, so fn sees no gap and no
// duplicate. It returns when ctx ends, when fn returns an error, or after
// Close.
func (f *Failover) Follow(ctx context.Context, channel string, after uint64, fn func(Message) error) error {
	// fails counts failures since a message last arrived or a node last
	// served for a while: after a round of failures over every address
	// Follow backs off instead of spinning.
	fails := 0
	connectedGen := ^uint64(0)
	failed := func(gen uint64, err error) error {
		f.move(gen, err)
		if fails++; fails%max(1, len(f.Addrs())) == 0 {
			return backoff(ctx, fails/max(1, len(f.Addrs())))
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, gen, err := f.current()
		if err != nil {
			return err
		}
		if gen != connectedGen {
			pctx, cancel := context.WithTimeout(ctx, f.opts.DialTimeout+time.Second)
			err = c.rdb.Ping(pctx).Err()
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := failed(gen, err); err != nil {
					return err
				}
				continue
			}
			connectedGen = gen
			f.onEvent(Event{Kind: Connected, Addr: c.Addr(), After: after})
		}
		start := time.Now()
		err = c.Follow(ctx, channel, after, func(m Message) error {
			if err := fn(m); err != nil {
				return stopErr{err}
			}
			after, fails = m.Seq, 0
			return nil
		})
		var stop stopErr
		switch {
		case errors.As(err, &stop):
			return stop.err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		f.mu.Lock()
		closed, moved := f.closed, f.gen != gen
		f.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if moved { // Connect or Publish moved: follow them at once
			continue
		}
		if time.Since(start) > 5*time.Second {
			fails = 0
		}
		if err := failed(gen, err); err != nil {
			return err
		}
	}
}
