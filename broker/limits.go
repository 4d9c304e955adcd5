package broker

import (
	"net"
)

// limitError is returned by a limitConn's Read when a client sends a
// request larger than the configured limits; msg is Redis's reply text.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// Redis's limits on request framing (PROTO_INLINE_MAX_SIZE, and its
// "invalid multibulk length" bound).
const (
	maxInlineBytes = 64 << 10
	maxMultibulk   = 1 << 20
)

// limitListener wraps accepted connections in limitConn. redcon itself
// accepts any bulk length and buffers it (`*1\r\n$999999999\r\n` would
// make it allocate a gigabyte), so the byte stream is scanned as it is read
// and the connection is refused at the first header that exceeds a limit,
// before the payload arrives.
type limitListener struct {
	net.Listener
	maxBulk int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, maxBulk: l.maxBulk}, nil
}

// Scanner states.
const (
	stStart      = iota // at the start of a request
	stMultibulk         // reading "*<n>\r\n" digits
	stBulkStart         // expecting '$'
	stBulkHeader        // reading "$<n>\r\n" digits
	stBulkBody          // skipping payload and its CRLF
	stInline            // reading an inline command line
	stOff               // malformed: redcon reports it; stop scanning
)

type limitConn struct {
	net.Conn
	maxBulk  int64
	state    int
	num      int64 // number being parsed
	neg      bool
	left     int64 // bulks left in this request, or body bytes left
	bulks    int64
	reqBytes int64
	lineLen  int
	failed   error
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.failed != nil {
		return 0, c.failed
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if bad := c.scan(p[:n]); bad >= 0 {
			// Hand over what precedes the offending header; fail next time.
			return bad, nil
		}
	}
	return n, err
}

// scan advances the framing state machine over b and returns the offset of
// the first byte of a request that breaks a limit, or -1.
func (c *limitConn) scan(b []byte) int {
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch c.state {
		case stStart:
			c.reqBytes = 0
			if ch == '*' {
				c.state, c.num, c.neg, c.lineLen = stMultibulk, 0, false, 0
			} else {
				c.state, c.lineLen = stInline, 1
				if ch == '\n' {
					c.state = stStart
				}
			}
		case stMultibulk, stBulkHeader:
			c.lineLen++
			switch {
			case ch >= '0' && ch <= '9':
				if c.num < 1<<40 {
					c.num = c.num*10 + int64(ch-'0')
				}
			case ch == '-' && c.num == 0:
				c.neg = true
			case ch == '\r':
			case ch == '\n':
				if c.state == stMultibulk {
					if !c.neg && c.num > maxMultibulk {
						return c.fail(i, "Protocol error: invalid multibulk length")
					}
					c.bulks = c.num
					c.state = stBulkStart
					if c.neg || c.num == 0 {
						c.state = stStart
					}
				} else {
					if c.num > c.maxBulk {
						return c.fail(i, "Protocol error: invalid bulk length")
					}
					c.reqBytes += c.num
					if c.reqBytes > c.maxBulk {
						return c.fail(i, "Protocol error: request exceeds max_request_size")
					}
					c.left = c.num + 2
					c.state = stBulkBody
				}
			default:
				c.state = stOff
			}
			if c.lineLen > maxInlineBytes {
				return c.fail(i, "Protocol error: too big mbulk count string")
			}
		case stBulkStart:
			if ch != '$' {
				c.state = stOff
				continue
			}
			c.state, c.num, c.neg, c.lineLen = stBulkHeader, 0, false, 0
		case stBulkBody:
			skip := int64(len(b) - i)
			if skip > c.left {
				skip = c.left
			}
			c.left -= skip
			i += int(skip) - 1
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
				return c.fail(i, "Protocol error: too big inline request")
			}
		case stOff:
			return -1
		}
	}
	return -1
}

func (c *limitConn) fail(at int, msg string) int {
	c.failed = &limitError{msg: msg}
	c.state = stOff
	if at < 0 {
		at = 0
	}
	return at
}
