package broker

import (
	"net"
	"sync/atomic"
	"time"
)

// limitError is returned by a limitConn's Read when a client breaks the
// protocol or a size limit; msg is Redis's error text.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// Redis's limits on request framing (PROTO_INLINE_MAX_SIZE and the bound
// on a multibulk count).
const (
	maxInlineBytes = 64 << 10
	maxMultibulk   = 1<<31 - 1
)

// limitListener wraps accepted connections in limitConn.
type limitListener struct {
	net.Listener
	maxBulk int64
	in      *atomic.Int64 // bytes read from clients (nil: not counted)
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, maxBulk: l.maxBulk, in: l.in}, nil
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
//     before the payload arrives (redcon would buffer any announced size);
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

	state    int
	num      int64
	neg      bool
	sawCR    bool
	digits   int
	left     int64 // bulks left in the request, or body bytes left
	bulks    int64
	reqBytes int64
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
		if !c.detached.Load() {
			// Still in redcon's read loop, which closes silently on
			// errors it does not know: send Redis's reply ourselves.
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write([]byte("-ERR " + c.failed.Error() + "\r\n"))
		}
		return 0, c.failed
	}
	for {
		n, err := c.Conn.Read(p)
		if n > 0 && c.in != nil {
			c.in.Add(int64(n))
		}
		if n > 0 {
			n = c.scan(p[:n])
			if c.release > 0 {
				c.out = append(append(c.out[:0], c.held[:c.release]...), p[:n]...)
				c.held = append(c.held[:0], c.held[c.release:]...)
				c.release = 0
				n = copy(p, c.out)
				c.out = c.out[n:]
			}
			if n == 0 && c.failed == nil && err == nil {
				continue // only skipped empty requests or a held header: read on
			}
		}
		if n == 0 && c.failed != nil {
			return c.Read(p)
		}
		return n, err
	}
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
			c.reqBytes, c.lineLen = 0, 0
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
					c.bulks, c.state = c.num, stBulkStart
					if reqStart < 0 {
						c.release = len(c.held)
					}
				} else {
					if c.neg || c.num > c.maxBulk {
						return c.fail(reqStart, w, false)
					}
					c.reqBytes += c.num
					if c.reqBytes > c.maxBulk {
						return c.failMsg(reqStart, w, "Protocol error: request exceeds max_request_size")
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
	if reqStart >= 0 {
		return reqStart
	}
	// The request began in an earlier read: redcon holds its start and
	// waits for the rest, which never comes.
	_ = w
	return 0
}
