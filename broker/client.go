package broker

import (
	"github.com/ordo-broker/ordo/broker/acl"
	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/consensus"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// pending is a reply that is not known yet (a PUBLISH waiting for its
// commit). Its place in the client's output is reserved when the command is
// read, so replies and pushes leave in the order Redis would send them.
type pending struct {
	done chan struct{}
	b    []byte // the reply, set before done is closed
}

func newPending() *pending { return &pending{done: make(chan struct{})} }

// resolve sets the reply; it must be called exactly once.
func (p *pending) resolve(b []byte) {
	p.b = b
	close(p.done)
}

// marker is a pending reply's position in the output buffer.
type marker struct {
	off int
	p   *pending
}

// output is a client's bounded outgoing buffer, drained by one writer
// goroutine. Producers (the client's own command loop, and the delivery
// loop fanning out messages) never block on the network: when a pub/sub
// client's buffer passes the hard limit, or stays over the soft limit too
// long, the client is disconnected, as Redis's client-output-buffer-limit
// does, so one slow subscriber never stalls anyone else.
type output struct {
	mu        sync.Mutex
	buf       []byte
	marks     []marker
	spare     []byte
	inflight  int // bytes handed to the writer and not yet written
	softSince time.Time
	closed    bool
	finishing bool
	wake      chan struct{}
	drained   chan struct{} // signalled after each write: a streamed reply may go on (stream_reply.go)
	accounted int64         // this client's share of Server.clientBuffers (outputlimits.go)
	peak      int64         // the most unsent output this client held (what streaming bounds)
	// While deferring (the client runs EXEC), messages delivered to the
	// client wait in deferred and follow EXEC's reply, as in Redis 7.2,
	// rather than landing inside it.
	deferring bool
	deferred  []byte
}

// client is one connection's state.
type client struct {
	id      int64
	srv     *Server
	conn    net.Conn
	addr    string
	laddr   string
	created time.Time

	out         output
	deadlineSet time.Time     // when the writer last armed the write deadline
	quit        chan struct{} // closed once the client is being torn down
	once        sync.Once

	// handingOver: a streamed reply waits for the writer to drain
	// (stream_reply.go), i.e. the client reads slower than it is served.
	handingOver atomic.Bool

	// Owned by the client's command goroutine; the atomics are also read
	// by CLIENT LIST on other connections, resp3 by the delivery loop
	// (under the registry lock).
	w                replyBuf // the reply being built
	quitting         bool
	finishAfterReply bool
	inExec           bool
	peer             consensus.NodeID // set once a cluster peer shook hands
	resp3            bool
	replies          replyFlags
	tracking         tracking
	monitoring       atomic.Bool
	multi            *multiState
	lastPub          *pending // last unresolved publish, the barrier for other commands
	anonSender       string   // "client_<id>": the sender of its publishes while unnamed
	lastCmd          atomic.Pointer[command]
	lastActive       atomic.Int64 // unix nanos
	name             atomic.Value // string
	libName          atomic.Value // string
	libVer           atomic.Value // string

	// Access control (access.go): the user the connection acts as (also
	// read by CLIENT LIST and ACL changes) and Redis's c->authenticated
	// (the command goroutine's).
	user   atomic.Pointer[acl.User]
	authed bool

	// Subscriptions, guarded by the server's pubsub lock.
	channels      map[string]struct{}
	patterns      map[string]struct{}
	shardChannels map[string]struct{}
	subCount      atomic.Int64 // channels+patterns+shard, readable without the lock

	// staged is this client's share of the batch being delivered,
	// guarded by the registry's deliverMu (DeliverBatch).
	staged [][]byte
}

// replyFlags are CLIENT REPLY's state, as Redis keeps it: skipNext (set
// by CLIENT REPLY SKIP) becomes skip for exactly the next command. Pushes
// (subscribe confirmations, messages) are sent regardless.
type replyFlags struct {
	off, skip, skipNext bool
}

func (r replyFlags) silenced() bool { return r.off || r.skip }

// commandDone advances CLIENT REPLY SKIP after each command.
func (r *replyFlags) commandDone() {
	r.skip = r.skipNext
	r.skipNext = false
}

func (c *client) getName() string { return loadString(&c.name) }

func loadString(v *atomic.Value) string {
	s, _ := v.Load().(string)
	return s
}

// write appends bytes to the output and wakes the writer. It reports false
// if the client is gone or was just disconnected for exceeding its limits.
func (c *client) write(b []byte, pubsub bool) bool {
	one := [1][]byte{b}
	return c.append(one[:], pubsub, false)
}

// deliver queues published messages (a batch's pushes for this client, in
// order): after EXEC's reply if the client is running EXEC.
func (c *client) deliver(bs [][]byte) bool { return c.append(bs, true, true) }

// append queues bs with one lock and one limit check, and wakes the writer
// only if the output was empty: otherwise the writer was already woken for
// what is there and will take the new bytes with it.
func (c *client) append(bs [][]byte, pubsub, deferrable bool) bool {
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	wake := false
	if deferrable && o.deferring {
		for _, b := range bs {
			o.deferred = append(o.deferred, b...)
		}
	} else {
		wake = len(o.buf) == 0 && len(o.marks) == 0
		for _, b := range bs {
			o.buf = append(o.buf, b...)
		}
	}
	over := c.overLimitLocked(pubsub)
	total := c.accountLocked()
	o.mu.Unlock()
	if over {
		c.srv.stats.outputLimitDisconnects.Add(1)
		c.srv.log.Logf(logging.Warn, "pubsub", "Client id=%d addr=%s closed for overcoming of output buffer limits", c.id, c.addr)
		c.close()
		return false
	}
	c.srv.enforceBudget(total)
	if wake {
		c.signal()
	}
	return true
}

// deferDeliveries starts or ends holding deliveries back (EXEC); ending
// queues what was held after everything written so far.
func (c *client) deferDeliveries(on bool) {
	o := &c.out
	o.mu.Lock()
	o.deferring = on
	held := len(o.deferred) > 0
	if !on && held {
		if !o.closed {
			o.buf = append(o.buf, o.deferred...)
		}
		o.deferred = nil
	}
	c.accountLocked()
	o.mu.Unlock()
	if held {
		c.signal()
	}
}

// reserve places a pending reply at the current end of the output.
func (c *client) reserve(p *pending) {
	o := &c.out
	o.mu.Lock()
	wake := false
	if !o.closed {
		wake = len(o.buf) == 0 && len(o.marks) == 0
		o.marks = append(o.marks, marker{off: len(o.buf), p: p})
	}
	o.mu.Unlock()
	if wake {
		c.signal()
	}
}

// signal wakes the writer. Producers call it when the output turns
// non-empty (the writer takes everything there at once, so later
// additions need no wake-up of their own) and on state changes.
func (c *client) signal() {
	select {
	case c.out.wake <- struct{}{}:
	default:
	}
}

// outputBytes is the size of the unsent output (CLIENT LIST's omem).
func (c *client) outputBytes() int {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return len(c.out.buf) + c.out.inflight
}

// writeLoop is the only goroutine that writes to the socket.
func (c *client) writeLoop() {
	defer c.close()
	var segs net.Buffers
	for {
		select {
		case <-c.out.wake:
		case <-c.quit:
			return
		}
		if !c.flushOnce(&segs) {
			return
		}
		c.out.mu.Lock()
		done := c.out.finishing && len(c.out.buf) == 0 && len(c.out.marks) == 0
		c.out.mu.Unlock()
		if done {
			return
		}
	}
}

// finish closes the connection once everything already queued (e.g. QUIT's
// +OK, or a protocol error) has been written.
func (c *client) finish() {
	c.out.mu.Lock()
	c.out.finishing = true
	c.out.mu.Unlock()
	c.signal()
}

// flushOnce writes everything currently buffered, waiting for pending
// replies in order, in as few system calls as it can: the buffer itself
// when no reply is pending (a subscriber's case: no copy), else the
// pieces between replies and the replies as one vectored write. It
// reports false when the connection is unusable.
func (c *client) flushOnce(segs *net.Buffers) bool {
	o := &c.out
	o.mu.Lock()
	if len(o.buf) == 0 && len(o.marks) == 0 {
		o.mu.Unlock()
		return true
	}
	// Double buffering: producers append to the spare while this buffer
	// is written out; the two never share an array.
	buf, marks := o.buf, o.marks
	o.buf, o.marks = o.spare[:0], nil
	o.spare = nil
	o.inflight = len(buf)
	o.mu.Unlock()
	v := (*segs)[:0]
	pos := 0
	for _, m := range marks {
		if m.off > pos {
			v = append(v, buf[pos:m.off])
		}
		pos = m.off
		select {
		case <-m.p.done:
		default:
			// Send what precedes the unresolved reply before waiting.
			if len(v) > 0 && !c.sendv(v) {
				return false
			}
			clear(v)
			v = v[:0]
			select {
			case <-m.p.done:
			case <-c.quit:
				return false
			}
		}
		if len(m.p.b) > 0 {
			v = append(v, m.p.b)
		}
	}
	if pos < len(buf) {
		v = append(v, buf[pos:])
	}
	ok := len(v) == 0 || c.sendv(v)
	clear(v) // keep no replies alive
	*segs = v[:0]
	o.mu.Lock()
	if cap(buf) <= 1<<20 {
		o.spare = buf[:0] // keep modest buffers for reuse
	}
	o.inflight = 0
	c.accountLocked()
	o.mu.Unlock()
	select {
	case o.drained <- struct{}{}:
	default:
	}
	return ok
}

const writeTimeout = 60 * time.Second

// sendv writes the segments, as one writev where the connection allows
// it.
func (c *client) sendv(v net.Buffers) bool {
	// Re-arm the deadline only when half of it has passed: one timer
	// update every 30s instead of one per write.
	if now := time.Now(); now.Sub(c.deadlineSet) > writeTimeout/2 {
		c.conn.SetWriteDeadline(now.Add(writeTimeout))
		c.deadlineSet = now
	}
	var n int64
	var err error
	total := 0
	for _, b := range v {
		total += len(b)
	}
	switch tcp := rawTCP(c.conn); {
	case len(v) == 1:
		// One piece: a plain write (net.Buffers would still go through
		// writev and its iovec setup).
		var k int
		k, err = c.conn.Write(v[0])
		n = int64(k)
	case total > maxJoinedWrite && tcp != nil:
		n, err = v.WriteTo(tcp) // consumes its copy of the slice header only
	default:
		// Small pieces (a pipeline's replies: a few bytes each) are
		// copied into one buffer: cheaper than writev's per-piece work,
		// and net.Buffers on anything but a bare TCP socket (our
		// clientConn wrapper, TLS) writes each piece with its own system
		// call, which took twice the CPU per PUBLISH.
		bp := joinPool.Get().(*[]byte)
		joined := (*bp)[:0]
		for _, b := range v {
			joined = append(joined, b...)
		}
		var k int
		k, err = c.conn.Write(joined)
		n = int64(k)
		if cap(joined) <= maxJoinedWrite {
			*bp = joined[:0]
			joinPool.Put(bp)
		}
	}
	c.srv.stats.netOutputBytes.Add(n)
	return err == nil
}

// maxJoinedWrite bounds the pieces sendv copies into one write; beyond it
// a TCP socket gets them by writev.
const maxJoinedWrite = 64 << 10

var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// rawTCP is the TCP socket under c, or nil (TLS, a test's pipe).
func rawTCP(c net.Conn) *net.TCPConn {
	if cc, ok := c.(*clientConn); ok {
		c = cc.Conn
	}
	tcp, _ := c.(*net.TCPConn)
	return tcp
}

// close tears the client down once: the socket closes (which ends the
// command goroutine's read) and the writer stops.
func (c *client) close() {
	c.once.Do(func() {
		c.out.mu.Lock()
		c.out.closed = true
		c.accountLocked()
		c.out.mu.Unlock()
		close(c.quit)
		c.conn.Close()
	})
}
