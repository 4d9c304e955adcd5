package broker

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitError is a request the node refuses: malformed framing or a size
// limit. msg is the text Redis sends (after "-ERR ") before closing.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// Redis's limits on request framing (PROTO_INLINE_MAX_SIZE and the bound
// on a multibulk count).
//
// The count bound is Redis 6's (Redis 7 allows up to 2^31-1 and grows
// argv as arguments arrive): each argument costs memory whatever its
// length (argOverhead), and a million is more than any command needs.
const (
	maxInlineBytes = 64 << 10
	maxMultibulk   = 1024 * 1024
)

// argOverhead is what one argument costs the node besides its bytes, and
// what it counts against max_request_size and the node's request budget:
// its slot in the reader's argument slice (a slice header, kept for the
// next request), its "$<n>\r\n...\r\n" framing in the read buffer, and
// the allocation rounding of its bytes. Without it a request of millions
// of empty arguments passed the byte limit and cost gigabytes.
const argOverhead = 64

// budgetRefused is the reply to a request that waited for the node's
// request budget (max_pending_request_bytes) and did not get it.
const budgetRefused = "request refused: max_pending_request_bytes is held by other clients' large requests, try again later"

// requestLimits bounds what one connection's request in progress may
// declare (reqReader asks before it allocates):
//
//   - a bulk length above max_request_size is refused from its header,
//     before the payload arrives, and so is a request whose bulks and
//     arguments together (argOverhead each) declare more than
//     max_request_size;
//   - what a request declares beyond free is reserved from the node's
//     requestBudget until the request is complete; while it does not fit,
//     the connection's reads pause (the reader waits here);
//   - requests of clients that must authenticate first are bounded as
//     Redis bounds them (10 arguments, 16 KB bulks).
//
// It is used by the connection's reading goroutine only.
type requestLimits struct {
	limits *atomic.Pointer[Limits] // max_request_size, read per request (nil: maxReq)
	maxReq int64
	budget *requestBudget  // shared by the node's connections (nil: none)
	free   int64           // what a request may declare without reserving
	cancel <-chan struct{} // closed when the connection closes: ends a wait
	// auth is Redis's authRequired(c) (nil: never).
	auth func() bool

	reqBytes int64 // what the request in progress declares
	reqCost  int64 // and what that costs in memory, against the budget
	reserved int64 // its reservation from the budget
}

func (l *requestLimits) maxRequest() int64 {
	if l.limits != nil {
		return l.limits.Load().MaxRequestBytes
	}
	return l.maxReq
}

func (l *requestLimits) authRequired() bool { return l.auth != nil && l.auth() }

// declare adds n bytes to what the request in progress declares, and
// returns the error that refuses it, if any: over max_request_size, or no
// room in the node's budget (after waiting for it). cost is what the
// bytes take in memory while they arrive, which the budget counts.
func (l *requestLimits) declare(n, cost int64) string {
	l.reqBytes += n
	l.reqCost += cost
	if l.reqBytes > l.maxRequest() {
		return "Protocol error: request exceeds max_request_size"
	}
	want := l.reqCost - l.free
	if l.budget == nil || want <= l.reserved {
		return ""
	}
	if !l.budget.grow(l.reserved, want-l.reserved, l.cancel) {
		l.reserved = 0 // a refused grow holds nothing
		return budgetRefused
	}
	l.reserved = want
	return ""
}

// complete ends the request in progress (read, refused, or the
// connection ended) and gives back its reservation.
func (l *requestLimits) complete() {
	l.budget.release(l.reserved)
	l.reserved, l.reqBytes, l.reqCost = 0, 0, 0
}

// clientConn is an accepted connection. Its Close also ends a wait of its
// reader for the request budget, whichever goroutine closes it.
type clientConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func newClientConn(c net.Conn) *clientConn {
	return &clientConn{Conn: c, closed: make(chan struct{})}
}

func (c *clientConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
