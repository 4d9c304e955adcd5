package resp

import (
	"bufio"
	"net"
	"time"
)

// Conn is a minimal synchronous client over one connection: it writes
// commands and reads replies in order. It is not safe for concurrent use;
// pipelining is Send several times, then Receive as many times.
type Conn struct {
	net.Conn
	Reader *bufio.Reader
	// Timeout bounds every write and every reply read (0: no limit).
	Timeout time.Duration
	wbuf    []byte
}

// Dial connects to addr; timeout bounds the connect and, afterwards,
// every read and write.
func Dial(addr string, timeout time.Duration) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return NewConn(c, timeout), nil
}

// NewConn wraps an established connection.
func NewConn(c net.Conn, timeout time.Duration) *Conn {
	return &Conn{Conn: c, Reader: bufio.NewReader(c), Timeout: timeout}
}

// Send writes one command without waiting for its reply.
func (c *Conn) Send(args ...string) error {
	c.wbuf = AppendCommandString(c.wbuf[:0], args...)
	return c.SendRaw(c.wbuf)
}

// SendRaw writes bytes as they are (a pre-encoded pipeline, or a
// deliberately malformed request in a test).
func (c *Conn) SendRaw(b []byte) error {
	if c.Timeout > 0 {
		c.SetWriteDeadline(time.Now().Add(c.Timeout))
	}
	_, err := c.Write(b)
	return err
}

// Receive reads the next reply.
func (c *Conn) Receive() (Value, error) {
	c.armRead()
	return Read(c.Reader)
}

// ReceiveRaw reads the next reply's bytes, appended to dst.
func (c *Conn) ReceiveRaw(dst []byte) ([]byte, error) {
	c.armRead()
	return ReadRaw(c.Reader, dst)
}

func (c *Conn) armRead() {
	if c.Timeout > 0 {
		c.SetReadDeadline(time.Now().Add(c.Timeout))
	}
}

// Do sends a command and reads its reply. An error reply is a Value
// (see Value.Err), not an error: the error is for the connection.
func (c *Conn) Do(args ...string) (Value, error) {
	if err := c.Send(args...); err != nil {
		return Value{}, err
	}
	return c.Receive()
}
