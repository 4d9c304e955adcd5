package broker

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limitError is returned by a limitConn's Read when a client breaks the
// protocol or a size limit; msg is Redis's error text.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// Redis's limits on request framing (PROTO_INLINE_MAX_SIZE and the bound
// on a multibulk count).
//
// The count bound is Redis 6's (Redis 7 allows up to 2^31-1 and grows
// argv as arguments arrive): redcon walks the whole declared count on
// every read of an incomplete request, so a count of 2^31-1 costs about
// a second of CPU per read, and each argument costs memory whatever its
// length (argOverhead).
const (
	maxInlineBytes = 64 << 10
	maxMultibulk   = 1024 * 1024
)

// argOverhead is what one argument costs the node besides its bytes, and
// what it counts against max_request_size and the node's request budget:
// its "$<n>\r\n...\r\n" framing in redcon's read buffer and again in the
// command's raw copy, the two offsets redcon records while parsing (in a
// slice that grows by doubling), and the argument's slice header. Without
// it a request of millions of empty arguments passed the byte limit and
// cost gigabytes.
const argOverhead = 64

// budgetRefused is the reply to a request that waited for the node's
// request budget (max_pending_request_bytes) and did not get it.
const budgetRefused = "request refused: max_pending_request_bytes is held by other clients' large requests, try again later"

// limitListener wraps accepted connections in limitConn.
type limitListener struct {
	net.Listener
	maxBulk int64
	in      *atomic.Int64  // bytes read from clients (nil: not counted)
	budget  *requestBudget // shared by the node's connections (nil: none)
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, maxBulk: l.maxBulk, in: l.in, budget: l.budget, free: freeRequestBytes, closedCh: make(chan struct{})}, nil
}

// Scanner states.
const (
	stStart      = iota // at the start of a request
	stMultibulk         // reading "*<n>\r\n"
	stBulkStart         // expecting '$'
	stBulkHeader        // reading "$<n>\r\n"
	stBulkBody          // skipping payload and its CRLF
	stInline            // reading an inline command line
	stFailed
)

// limitConn scans the request stream as redcon reads it, so that ordo
// answers bad input exactly as Redis does:
//
//   - a bulk length above max_request_size is refused from its header,
//     before the payload arrives (redcon would buffer any announced size),
//     and so is a request whose bulks and arguments together (argOverhead
//     each) declare more than max_request_size, or more than 1024*1024
//     arguments;
//   - what a request declares beyond freeRequestBytes is reserved from the
//     node's requestBudget until the request is complete; while it does
//     not fit, the connection's reads pause;
//   - a request that is still arriving is handed to redcon in reads as
//     large as redcon's buffer allows, never a few bytes at a time: redcon
//     parses an incomplete request from its start on every read;
//   - malformed framing gets Redis's protocol error, after the replies to
//     the well-formed commands that precede it in the same pipeline
//     (redcon would drop those);
//   - empty requests ("*0", "*-1") are skipped, as Redis skips them.
//
// On a violation Read hands over the bytes before the offending request
// and fails on the next call with a *limitError.
type limitConn struct {
	net.Conn
	maxBulk  int64
	detached atomic.Bool   // set once ordo's own command loop reads this conn
	in       *atomic.Int64 // bytes read, for INFO and metrics (nil: not counted)
	budget   *requestBudget
	free     int64 // what a request may declare without reserving from budget

	// The reservation of the request in progress. The reading goroutine
	// changes it; Close, from any goroutine, gives it back.
	resMu     sync.Mutex
	reserved  int64
	closed    bool
	closedCh  chan struct{} // closed by Close: ends a wait for the budget
	closeOnce sync.Once
	readErr   error // a read error held back until the bytes before it are taken

	state    int
	num      int64
	neg      bool
	sawCR    bool
	digits   int
	left     int64 // bulks left in the request, or body bytes left
	bulks    int64
	reqBytes int64 // what the request declares, against max_request_size
	reqCost  int64 // and what that costs in memory, against the budget
	lineLen  int
	failed   error

	// A multibulk header split across reads is held back until its count
	// is known: an empty request ("*0") is skipped, and redcon, which
	// refuses one, must not see its first bytes either. held is the header
	// so far; release is how many of its bytes a completed count let go;
	// out is what Read owes redcon (the released header and the bytes
	// after it).
	held    []byte
	release int
	out     []byte
}

func (c *limitConn) Read(p []byte) (int, error) {
	if len(c.out) > 0 {
		n := copy(p, c.out)
		c.out = c.out[n:]
		return n, nil
	}
	if c.failed != nil {
		c.releaseReservation()
		if !c.detached.Load() {
			// Still in redcon's read loop, which closes silently on
			// errors it does not know: send Redis's reply ourselves.
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write([]byte("-ERR " + c.failed.Error() + "\r\n"))
		}
		return 0, c.failed
	}
	if err := c.readErr; err != nil {
		c.readErr = nil
		c.releaseReservation()
		return 0, err
	}
	total := 0
	for total < len(p) {
		q := p[total:]
		n, err := c.Conn.Read(q)
		if n > 0 && c.in != nil {
			c.in.Add(int64(n))
		}
		if n > 0 {
			n = c.scan(q[:n])
			if c.release > 0 {
				c.out = append(append(c.out[:0], c.held[:c.release]...), q[:n]...)
				c.held = append(c.held[:0], c.held[c.release:]...)
				c.release = 0
				n = copy(q, c.out)
				c.out = c.out[n:]
			}
			total += n
		}
		switch {
		case err != nil && total > 0:
			c.readErr = err // after redcon has taken the bytes before it
			return total, nil
		case err != nil:
			c.releaseReservation()
			return 0, err
		case c.failed != nil && total == 0:
			return c.Read(p)
		case c.failed != nil || len(c.out) > 0:
			return total, nil
		case total > 0 && !c.midRequest():
			return total, nil
		}
		// Nothing to hand over yet (skipped empty requests, a held
		// header), or a request is incomplete and p has room: read on.
	}
	return total, nil
}

// midRequest reports whether the stream is inside a request.
func (c *limitConn) midRequest() bool {
	return c.state != stStart && c.state != stFailed
}

// Close closes the connection and gives back its request's reservation.
func (c *limitConn) Close() error {
	c.closeOnce.Do(func() {
		c.resMu.Lock()
		c.closed = true
		c.resMu.Unlock()
		if c.closedCh != nil {
			close(c.closedCh)
		}
		c.releaseReservation()
	})
	return c.Conn.Close()
}

// releaseReservation gives back what the request in progress reserved
// from the budget: it is complete, refused, or the connection ended.
func (c *limitConn) releaseReservation() {
	c.resMu.Lock()
	n := c.reserved
	c.reserved = 0
	c.resMu.Unlock()
	c.budget.release(n)
}

// declare adds n bytes to what the request in progress declares, and
// returns the error that refuses it, if any: over max_request_size, or no
// room in the node's budget (after waiting for it). cost is what the
// bytes take in memory while they arrive, which the budget counts.
func (c *limitConn) declare(n, cost int64) string {
	c.reqBytes += n
	c.reqCost += cost
	if c.reqBytes > c.maxBulk {
		return "Protocol error: request exceeds max_request_size"
	}
	want := c.reqCost - c.free
	if c.budget == nil || want <= 0 {
		return ""
	}
	// Only this goroutine raises the reservation; Close may drop it
	// meanwhile. Take it over while grow runs, so that it is given back
	// exactly once.
	c.resMu.Lock()
	if c.closed {
		c.resMu.Unlock()
		return budgetRefused
	}
	held := c.reserved
	if want <= held {
		c.resMu.Unlock()
		return ""
	}
	c.reserved = 0
	c.resMu.Unlock()
	if !c.budget.grow(held, want-held, c.closedCh) {
		return budgetRefused
	}
	c.resMu.Lock()
	if c.closed {
		c.resMu.Unlock()
		c.budget.release(want)
		return budgetRefused
	}
	c.reserved = want
	c.resMu.Unlock()
	return ""
}

// scan advances the framing state machine over b, compacting away empty
// requests, and returns how many bytes of b to hand to redcon.
func (c *limitConn) scan(b []byte) int {
	w := 0         // write position in b
	reqStart := -1 // w at the start of the current request, if in b
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if c.state == stStart {
			reqStart = w
		}
		b[w] = ch
		w++
		switch c.state {
		case stStart:
			c.reqBytes, c.reqCost, c.lineLen = 0, 0, 0
			switch ch {
			case '*':
				c.state, c.num, c.neg, c.digits, c.sawCR = stMultibulk, 0, false, 0, false
			case '\n':
			default:
				c.state, c.lineLen = stInline, 1
			}
		case stMultibulk, stBulkHeader:
			c.lineLen++
			switch {
			case ch >= '0' && ch <= '9' && !c.sawCR:
				if c.num < 1<<40 {
					c.num = c.num*10 + int64(ch-'0')
				}
				c.digits++
			case ch == '-' && c.digits == 0 && !c.neg && !c.sawCR:
				c.neg = true
			case ch == '\r' && !c.sawCR:
				c.sawCR = true
			case ch == '\n':
				if !c.sawCR || c.digits == 0 {
					return c.fail(reqStart, w, c.state == stMultibulk)
				}
				if c.state == stMultibulk {
					if !c.neg && c.num > maxMultibulk {
						return c.fail(reqStart, w, true)
					}
					if c.neg || c.num == 0 {
						// An empty request: Redis skips it.
						c.state = stStart
						if reqStart >= 0 {
							w = reqStart
						} else {
							w, c.held = 0, c.held[:0] // all of b so far is its header
						}
						continue
					}
					if msg := c.declare(c.num*argOverhead, c.num*argOverhead); msg != "" {
						return c.failMsg(reqStart, w, msg)
					}
					c.bulks, c.state = c.num, stBulkStart
					if reqStart < 0 {
						c.release = len(c.held)
					}
				} else {
					if c.neg || c.num > c.maxBulk {
						return c.fail(reqStart, w, false)
					}
					// redcon grows its buffer by doubling while a bulk
					// arrives: the bulk may take twice its size.
					if msg := c.declare(c.num, 2*c.num); msg != "" {
						return c.failMsg(reqStart, w, msg)
					}
					c.left, c.state = c.num+2, stBulkBody
				}
			default:
				return c.fail(reqStart, w, c.state == stMultibulk)
			}
			if c.lineLen > maxInlineBytes {
				if c.state == stMultibulk {
					return c.failMsg(reqStart, w, "Protocol error: too big mbulk count string")
				}
				return c.failMsg(reqStart, w, "Protocol error: too big bulk count string")
			}
		case stBulkStart:
			if ch != '$' {
				return c.failMsg(reqStart, w, "Protocol error: expected '$', got '"+string(ch)+"'")
			}
			c.state, c.num, c.neg, c.digits, c.lineLen, c.sawCR = stBulkHeader, 0, false, 0, 0, false
		case stBulkBody:
			// Copy the body through in one step.
			skip := int64(len(b) - i)
			if skip > c.left {
				skip = c.left
			}
			copy(b[w:], b[i+1:i+int(skip)])
			w += int(skip) - 1
			i += int(skip) - 1
			c.left -= skip
			if c.left == 0 {
				c.bulks--
				c.state = stBulkStart
				if c.bulks <= 0 {
					c.state = stStart
					c.releaseReservation()
				}
			}
		case stInline:
			c.lineLen++
			if ch == '\n' {
				c.state = stStart
			} else if c.lineLen > maxInlineBytes {
				return c.failMsg(reqStart, w, "Protocol error: too big inline request")
			}
		}
	}
	if c.state == stMultibulk {
		// The header goes on in the next read: hold it back.
		from := max(reqStart, 0)
		c.held = append(c.held, b[from:w]...)
		w = from
	}
	return w
}

func (c *limitConn) fail(reqStart, w int, multibulk bool) int {
	if multibulk {
		return c.failMsg(reqStart, w, "Protocol error: invalid multibulk length")
	}
	return c.failMsg(reqStart, w, "Protocol error: invalid bulk length")
}

// failMsg records the violation; what precedes the offending request is
// still handed over.
func (c *limitConn) failMsg(reqStart, w int, msg string) int {
	c.failed = &limitError{msg: msg}
	c.state = stFailed
	c.releaseReservation()
	if reqStart >= 0 {
		return reqStart
	}
	// The request began in an earlier read: redcon holds its start and
	// waits for the rest, which never comes.
	_ = w
	return 0
}
