package broker

import (
	"strconv"

	"github.com/tidwall/redcon"
)

// replyBuf builds RESP replies for one client, in RESP2 or RESP3 according
// to the protocol the client negotiated with HELLO. Aggregate types that
// RESP2 lacks degrade exactly as Redis degrades them (maps to flat arrays,
// pushes to arrays, nulls to $-1 / *-1).
type replyBuf struct {
	b     []byte
	resp3 bool
}

func (w *replyBuf) Simple(s string) { w.b = redcon.AppendString(w.b, s) }
func (w *replyBuf) OK()             { w.b = append(w.b, "+OK\r\n"...) }
func (w *replyBuf) Error(s string)  { w.b = redcon.AppendError(w.b, s) }
func (w *replyBuf) Int(n int64)     { w.b = redcon.AppendInt(w.b, n) }
func (w *replyBuf) Bulk(b []byte)   { w.b = redcon.AppendBulk(w.b, b) }
func (w *replyBuf) BulkString(s string) {
	w.b = redcon.AppendBulkString(w.b, s)
}
func (w *replyBuf) BulkUint(n uint64) {
	w.b = redcon.AppendBulkString(w.b, strconv.FormatUint(n, 10))
}

// Null is a null bulk string ($-1 in RESP2, _ in RESP3).
func (w *replyBuf) Null() {
	if w.resp3 {
		w.b = append(w.b, "_\r\n"...)
	} else {
		w.b = append(w.b, "$-1\r\n"...)
	}
}

// NullArray is a null aggregate (*-1 in RESP2, _ in RESP3).
func (w *replyBuf) NullArray() {
	if w.resp3 {
		w.b = append(w.b, "_\r\n"...)
	} else {
		w.b = append(w.b, "*-1\r\n"...)
	}
}

func (w *replyBuf) Array(n int) { w.b = redcon.AppendArray(w.b, n) }

// Map announces n key/value pairs.
func (w *replyBuf) Map(n int) {
	if w.resp3 {
		w.b = appendHeader(w.b, '%', n)
	} else {
		w.b = redcon.AppendArray(w.b, 2*n)
	}
}

// Set announces n members.
func (w *replyBuf) Set(n int) {
	if w.resp3 {
		w.b = appendHeader(w.b, '~', n)
	} else {
		w.b = redcon.AppendArray(w.b, n)
	}
}

// Push announces an out-of-band message (pub/sub deliveries).
func (w *replyBuf) Push(n int) {
	if w.resp3 {
		w.b = appendHeader(w.b, '>', n)
	} else {
		w.b = redcon.AppendArray(w.b, n)
	}
}

// Verbatim is a RESP3 verbatim string ("txt" format), a bulk in RESP2.
func (w *replyBuf) Verbatim(s string) {
	if !w.resp3 {
		w.BulkString(s)
		return
	}
	w.b = appendHeader(w.b, '=', len(s)+4)
	w.b = append(w.b, "txt:"...)
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

// Bool is #t/#f in RESP3 and :1/:0 in RESP2.
func (w *replyBuf) Bool(v bool) {
	switch {
	case w.resp3 && v:
		w.b = append(w.b, "#t\r\n"...)
	case w.resp3:
		w.b = append(w.b, "#f\r\n"...)
	case v:
		w.Int(1)
	default:
		w.Int(0)
	}
}

func appendHeader(b []byte, prefix byte, n int) []byte {
	b = append(b, prefix)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}
