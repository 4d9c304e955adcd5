package testkit

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
)

// Conn is a RESP test connection: every method fails the test on an I/O
// error or timeout, so a test reads as the conversation it checks. Error
// replies are values (resp.Value.Err), not failures. Use it from the
// test's goroutine only; a goroutine that reads in the background uses
// RESP directly and reports errors itself.
type Conn struct {
	t    testing.TB
	RESP *resp.Conn // the connection underneath, for other goroutines
}

// DefaultTimeout bounds each read and write (before Scale).
const DefaultTimeout = 10 * time.Second

// Dial connects to addr; the connection is closed when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := resp.Dial(addr, Scale(DefaultTimeout))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{t: t, RESP: c}
}

// Close closes the connection now.
func (c *Conn) Close() { c.RESP.Close() }

// Do sends a command and returns its reply.
func (c *Conn) Do(args ...string) resp.Value {
	c.t.Helper()
	c.Send(args...)
	return c.Read()
}

// Send writes a command without reading its reply.
func (c *Conn) Send(args ...string) {
	c.t.Helper()
	if err := c.RESP.Send(args...); err != nil {
		c.t.Fatalf("send %q: %v", args, err)
	}
}

// SendRaw writes bytes as they are.
func (c *Conn) SendRaw(b []byte) {
	c.t.Helper()
	if err := c.RESP.SendRaw(b); err != nil {
		c.t.Fatalf("send %.60q: %v", b, err)
	}
}

// Read reads the next reply.
func (c *Conn) Read() resp.Value {
	c.t.Helper()
	v, err := c.RESP.Receive()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return v
}

// ReadRaw reads the next reply's bytes exactly as the server sent them
// (resp.Parse gives the value too, where a test needs both).
func (c *Conn) ReadRaw() []byte {
	c.t.Helper()
	b, err := c.RESP.ReceiveRaw(nil)
	if err != nil {
		c.t.Fatalf("read reply: %v (so far %q)", err, b)
	}
	return b
}

// ExpectClosed asserts that the server closes the connection, sending
// nothing more, within the connection's timeout.
func (c *Conn) ExpectClosed() {
	c.t.Helper()
	c.RESP.SetReadDeadline(time.Now().Add(c.RESP.Timeout))
	b, err := c.RESP.Reader.ReadByte()
	if err == nil {
		rest, _ := c.RESP.Reader.Peek(c.RESP.Reader.Buffered())
		c.t.Fatalf("connection still open, read %q", append([]byte{b}, rest...))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed within %s", c.RESP.Timeout)
	}
}
