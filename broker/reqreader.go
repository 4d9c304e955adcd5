package broker

import (
	"bytes"
	"io"
	"math"
	"sync/atomic"
)

// reqReader reads a client's requests, RESP multibulk or inline, parsing
// each byte once as it arrives, as Redis's processInputBuffer does, and
// answers malformed input with Redis's protocol errors.
//
// Why not redcon's reader: it parses an incomplete request again from its
// start on every read (regrowing its argument offsets each time) and grows
// its buffer by doubling with one non-preemptible copy, so one client
// streaming a request of a million arguments or a 60 MB bulk took most of
// the node's CPU and stalled every other client (issue 10).
//
// Here a request's state survives between reads: the arguments parsed so
// far are kept in a slice reused from request to request, small arguments
// are sliced from a fixed read buffer and copied out together (one
// allocation per request, or per buffer when a request spans reads), and
// a large bulk gets an allocation of exactly its size that the socket is
// read into directly. What a request declares is bounded before it is
// allocated (limits.go): max_request_size, at most 1024*1024 arguments,
// and the node's pending-request budget.
type reqReader struct {
	rd   io.Reader
	buf  []byte // read buffer; buf[r:w] is not parsed yet
	r, w int
	in   *atomic.Int64 // bytes read, for INFO (nil: not counted)
	lim  requestLimits
	err  error // sticky: the stream is unusable after an error

	// The request in progress.
	state   int
	args    [][]byte // its arguments so far; reused by the next request
	local   []int32  // indexes of args that still point into buf
	left    int64    // arguments still to come
	bulk    int64    // length of the bulk being read
	big     []byte   // a large bulk being read into its own allocation
	bigN    int      // how much of big is filled
	skip    int      // bytes after a bulk still to skip
	line    lineScan // the header line being read
	inline  []byte   // an inline request spanning reads (bounded)
	stuckAt int      // inline: bytes consumed with no end in sight
}

// Reader states.
const (
	rqStart       = iota // between requests
	rqCount              // the "*<count>" line
	rqBulkLine           // a "$<length>" line
	rqBody               // a bulk that will fit in buf: wait for all of it
	rqBig                // a large bulk, read into its own allocation
	rqSkip               // the two bytes after a bulk (Redis does not check them)
	rqInline             // an inline request line
	rqInlineStuck        // an inline line with a NUL before its end
)

const (
	// A connection's read buffer starts small (most clients, subscribers
	// above all, send little) and grows to readBufSize, Redis's
	// PROTO_IOBUF_LEN, once a read fills it.
	firstBufSize = 4 << 10
	readBufSize  = 16 << 10
	// A bulk longer than this that is not in buf yet gets its own
	// allocation, read into directly; a shorter one waits in buf.
	bigBulk = readBufSize / 2
	// Argument slices larger than this are not kept for the next request
	// unless it is as large: one request of a million arguments must not
	// pin 24 MB for the connection's life.
	keepArgs = 1024
)

// emptyArg is every empty argument: it pins no buffer.
var emptyArg = []byte{}

func newReqReader(rd io.Reader, in *atomic.Int64, lim requestLimits) *reqReader {
	return &reqReader{rd: rd, buf: make([]byte, firstBufSize), in: in, lim: lim}
}

// next returns the next request's arguments (never none: empty requests
// are skipped, as Redis skips them). The slice is valid until the next
// call; the argument bytes are never reused and may be kept. A protocol
// error is a *limitError whose text Redis sends before closing; any other
// error is the connection's. After an error, next returns it again.
func (q *reqReader) next() ([][]byte, error) {
	if q.err != nil {
		return nil, q.err
	}
	clear(q.args) // drop the previous request's bytes
	q.args = q.args[:0]
	for {
		done, err := q.parse()
		if err != nil {
			return nil, q.fail(err)
		}
		if done {
			q.detach()
			q.lim.complete()
			return q.args, nil
		}
		if err := q.fill(); err != nil {
			return nil, q.fail(err)
		}
	}
}

func (q *reqReader) fail(err error) error {
	q.err = err
	q.state = rqStart
	q.lim.complete()
	return err
}

// close gives back what the request in progress reserved.
func (q *reqReader) close() { q.lim.complete() }

// buffered is what was read and not parsed yet.
func (q *reqReader) buffered() []byte { return q.buf[q.r:q.w] }

// fill reads more. Before buf's parsed part is reused, the arguments still
// pointing into it are copied out.
func (q *reqReader) fill() error {
	need := 1
	if q.state == rqBody {
		need = int(q.bulk) + 2
	}
	if len(q.buf) < readBufSize && (q.w == len(q.buf) || need > len(q.buf)) {
		// Grow: the arguments in the old buffer keep it until detached.
		nb := make([]byte, readBufSize)
		q.w = copy(nb, q.buf[q.r:q.w])
		q.r, q.buf = 0, nb
	} else if q.r == q.w {
		q.detach()
		q.r, q.w = 0, 0
	} else if len(q.buf)-q.r < need || q.w == len(q.buf) {
		q.detach()
		q.w = copy(q.buf, q.buf[q.r:q.w])
		q.r = 0
	}
	n, err := q.rd.Read(q.buf[q.w:])
	q.count(n)
	q.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (q *reqReader) count(n int) {
	if q.in != nil && n > 0 {
		q.in.Add(int64(n))
	}
}

// detach copies the arguments that point into buf into one allocation of
// their own.
func (q *reqReader) detach() {
	if len(q.local) == 0 {
		return
	}
	size := 0
	for _, i := range q.local {
		size += len(q.args[i])
	}
	block := make([]byte, 0, size)
	for _, i := range q.local {
		start := len(block)
		block = append(block, q.args[i]...)
		q.args[i] = block[start:len(block):len(block)]
	}
	q.local = q.local[:0]
}

// parse advances over buf[r:w] and reports whether a request is complete.
func (q *reqReader) parse() (bool, error) {
	for q.r < q.w || q.state == rqBig {
		switch q.state {
		case rqStart:
			if q.buf[q.r] == '*' {
				q.r++
				q.state = rqCount
				q.line = lineScan{n: 1, prefix: '*'}
			} else {
				q.state = rqInline
				q.inline = q.inline[:0]
			}
		case rqCount:
			if !q.line.scan(q) {
				if q.line.tooLong() {
					return false, protoErr("too big mbulk count string")
				}
				continue
			}
			n, ok := q.line.num.value()
			if !ok || n > math.MaxInt32 {
				return false, protoErr("invalid multibulk length")
			}
			if n > 10 && q.lim.authRequired() {
				return false, protoErr("unauthenticated multibulk length")
			}
			if n > maxMultibulk {
				return false, protoErr("invalid multibulk length")
			}
			if n <= 0 {
				q.state = rqStart // an empty request: Redis skips it
				continue
			}
			if msg := q.lim.declare(n*argOverhead, n*argOverhead); msg != "" {
				return false, &limitError{msg}
			}
			// Room for every argument at once (growing by appending
			// copied a million-argument slice dozens of times); what the
			// count declares is already charged (argOverhead each).
			if c := int64(cap(q.args)); c < n || c > keepArgs && n < c/4 {
				q.args = make([][]byte, 0, n)
			}
			q.left = n
			q.startBulkLine()
		case rqBulkLine:
			if n, ok := q.quickBulkLine(); ok {
				// The common case, a whole "$<n>\r\n" in buf.
				if msg := q.lim.declare(n, n); msg != "" {
					return false, &limitError{msg}
				}
				if q.startBody(n) {
					return true, nil
				}
				continue
			}
			if !q.line.scan(q) {
				if q.line.tooLong() {
					return false, protoErr("too big bulk count string")
				}
				continue
			}
			if p := q.line.prefix; p != '$' {
				if p == '\r' || p == '\n' {
					p = ' ' // Redis maps newlines in error texts to spaces
				}
				return false, protoErr("expected '$', got '" + string([]byte{p}) + "'")
			}
			n, ok := q.line.num.value()
			if !ok || n < 0 || n > q.lim.maxRequest() {
				return false, protoErr("invalid bulk length")
			}
			if n > 16384 && q.lim.authRequired() {
				return false, protoErr("unauthenticated bulk length")
			}
			if msg := q.lim.declare(n, n); msg != "" {
				return false, &limitError{msg}
			}
			if q.startBody(n) {
				return true, nil
			}
		case rqBody:
			n := int(q.bulk)
			if q.w-q.r < n+2 {
				return false, nil // fill makes room for all of it
			}
			q.local = append(q.local, int32(len(q.args)))
			q.args = append(q.args, q.buf[q.r:q.r+n:q.r+n])
			q.r += n + 2
			if q.argDone() {
				return true, nil
			}
		case rqBig:
			if q.bigN < len(q.big) {
				// Straight from the socket into the argument.
				n, err := q.rd.Read(q.big[q.bigN:])
				q.count(n)
				q.bigN += n
				if n == 0 {
					if err == nil {
						err = io.ErrNoProgress
					}
					return false, err
				}
				continue
			}
			q.args = append(q.args, q.big)
			q.big, q.bigN = nil, 0
			q.skip, q.state = 2, rqSkip
		case rqSkip:
			k := min(q.skip, q.w-q.r)
			q.r += k
			q.skip -= k
			if q.skip == 0 && q.argDone() {
				return true, nil
			}
		case rqInline:
			done, err := q.scanInline()
			if err != nil || done {
				return done, err
			}
		case rqInlineStuck:
			// Redis looks for the end of an inline line with strchr, which
			// stops at a NUL: the line never ends, and grows until refused.
			q.stuckAt += q.w - q.r
			q.r = q.w
			if q.stuckAt > maxInlineBytes {
				return false, protoErr("too big inline request")
			}
		}
	}
	return false, nil
}

// startBody begins reading a bulk of n bytes; it reports whether that
// completed the request (an empty last argument, already in buf).
func (q *reqReader) startBody(n int64) bool {
	q.bulk = n
	switch {
	case n == 0 && q.w-q.r >= 2:
		q.args = append(q.args, emptyArg)
		q.r += 2
		return q.argDone()
	case n == 0:
		q.args = append(q.args, emptyArg)
		q.skip, q.state = 2, rqSkip
	case int64(q.w-q.r) >= n+2 || n <= bigBulk:
		q.state = rqBody
	default:
		q.big = make([]byte, n)
		q.bigN = copy(q.big, q.buf[q.r:q.w])
		q.r += q.bigN
		q.state = rqBig
	}
	return false
}

// quickBulkLine parses a bulk line that is whole in buf and well formed
// (the usual case) without the byte-at-a-time lineScan: "$", 1 to 18
// digits without a leading zero (or "0"), '\r' and one more byte. It
// leaves anything else to lineScan, which gives the same verdict. The
// length is checked as the slow path checks it; ok false means "not
// handled", never "invalid".
func (q *reqReader) quickBulkLine() (int64, bool) {
	if q.line.n != 0 {
		return 0, false // a line already begun
	}
	b := q.buf[q.r:q.w]
	if len(b) < 4 || b[0] != '$' || b[1] < '0' || b[1] > '9' || b[1] == '0' && b[2] != '\r' {
		return 0, false
	}
	var n int64
	i := 1
	for ; i < len(b) && i <= 19; i++ {
		c := b[i]
		if c == '\r' {
			break
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if i+1 >= len(b) || b[i] != '\r' || i > 19 || n > q.lim.maxRequest() || n > 16384 && q.lim.authRequired() {
		return 0, false
	}
	q.r += i + 2
	return n, true
}

// argDone counts an argument read; it reports whether the request is
// complete, and otherwise expects the next bulk line.
func (q *reqReader) argDone() bool {
	q.left--
	if q.left == 0 {
		q.state = rqStart
		return true
	}
	q.startBulkLine()
	return false
}

func (q *reqReader) startBulkLine() {
	q.state = rqBulkLine
	q.line = lineScan{}
}

// scanInline reads an inline request line up to '\n', as Redis's
// processInlineBuffer does.
func (q *reqReader) scanInline() (bool, error) {
	seg := q.buf[q.r:q.w]
	end := bytes.IndexByte(seg, '\n')
	upto := seg
	if end >= 0 {
		upto = seg[:end]
	}
	if nul := bytes.IndexByte(upto, 0); nul >= 0 {
		q.stuckAt = len(q.inline) + len(seg)
		q.r = q.w
		q.state = rqInlineStuck
		if q.stuckAt > maxInlineBytes {
			return false, protoErr("too big inline request")
		}
		return false, nil
	}
	if end >= 0 && len(q.inline)+end > maxInlineBytes || end < 0 && len(q.inline)+len(seg) > maxInlineBytes {
		// Longer than Redis buffers without finding its end (checked
		// for the whole line, so that the verdict does not depend on how
		// the stream is split).
		return false, protoErr("too big inline request")
	}
	if end < 0 {
		q.inline = append(q.inline, seg...)
		q.r = q.w
		return false, nil
	}
	line := upto
	if len(q.inline) > 0 {
		q.inline = append(q.inline, upto...)
		line = q.inline
	}
	q.r += end + 1
	q.state = rqStart
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	args, ok := splitArgs(line, q.args)
	if cap(q.inline) > readBufSize {
		q.inline = nil // a long line once: not kept for the connection's life
	}
	if !ok {
		return false, protoErr("unbalanced quotes in request")
	}
	q.args = args
	return len(args) > 0, nil
}

func protoErr(what string) *limitError { return &limitError{msg: "Protocol error: " + what} }

// lineScan reads a header line ("*3", "$5") as Redis finds it: the line
// ends at its first '\r' plus one more byte (Redis skips that byte
// without looking at it), and a NUL before the '\r' hides the end from
// Redis's strchr, so the line goes on until it is too long.
type lineScan struct {
	n      int  // bytes of the line so far, its prefix included
	prefix byte // the first byte ('*' for a count line)
	cr     bool // '\r' seen: one more byte ends the line
	stuck  bool // a NUL came first
	num    numScan
}

// tooLong reports a line that Redis would refuse: more than 64 KB with
// no end found. (Redis checks what it has buffered after each read; the
// check per byte gives the same verdict however the stream is split.)
func (l *lineScan) tooLong() bool { return !l.cr && l.n > maxInlineBytes }

// scan consumes bytes of the line from q's buffer and reports whether the
// line is complete.
func (l *lineScan) scan(q *reqReader) bool {
	b := q.buf[q.r:q.w]
	if l.stuck {
		l.n += len(b)
		q.r = q.w
		return false
	}
	for i, c := range b {
		if l.cr {
			q.r += i + 1
			return true
		}
		l.n++
		switch {
		case c != '\r' && l.n > maxInlineBytes:
			q.r += i + 1 // too long: the caller refuses it
			return false
		case c == 0:
			l.stuck = true
			l.n += len(b) - i - 1
			q.r = q.w
			return false
		case c == '\r':
			l.cr = true
			if l.n == 1 {
				l.prefix = c
			}
		case l.n == 1:
			l.prefix = c
		default:
			l.num.add(c)
		}
	}
	q.r = q.w
	return false
}

// numScan parses a number as Redis's string2ll does, a byte at a time:
// no sign but a leading '-', no leading zeros, at most 20 bytes, within
// int64.
type numScan struct {
	len  int
	neg  bool
	zero bool // the first digit is 0
	bad  bool
	v    uint64
}

func (s *numScan) add(c byte) {
	s.len++
	if s.bad {
		return
	}
	first := s.len == 1 || s.len == 2 && s.neg
	switch {
	case s.len == 1 && c == '-':
		s.neg = true
	case s.len == 1 && c == '0':
		s.zero = true
	case s.zero || c < '0' || c > '9' || first && c == '0':
		s.bad = true
	default:
		d := uint64(c - '0')
		if s.v > (math.MaxUint64-d)/10 {
			s.bad = true
			return
		}
		s.v = s.v*10 + d
	}
}

func (s *numScan) value() (int64, bool) {
	switch {
	case s.bad || s.len == 0 || s.len >= 21 || s.neg && s.len == 1:
		return 0, false
	case s.zero:
		return 0, true
	case s.neg && s.v > 1<<63, !s.neg && s.v > math.MaxInt64:
		return 0, false
	case s.neg:
		return -int64(s.v), true
	}
	return int64(s.v), true
}

// splitArgs splits an inline request into arguments as Redis's
// sdssplitargs does (quotes, escapes, "\xHH"), appending them to args; it
// reports false for unbalanced quotes. line holds no NUL (see
// rqInlineStuck), so the end of line plays the C string's terminator.
func splitArgs(line []byte, args [][]byte) ([][]byte, bool) {
	at := func(i int) byte {
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p >= len(line) {
			return args, true
		}
		cur := []byte{}
		inq, insq := false, false
		for done := false; !done; {
			c := at(p)
			switch {
			case inq:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					cur = append(cur, hexVal(at(p+2))<<4|hexVal(at(p+3)))
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					e := at(p)
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					cur = append(cur, e)
				case c == '"':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return nil, false // closing quote must be followed by a space
					}
					done = true
				case c == 0:
					return nil, false // unterminated quotes
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return nil, false
					}
					done = true
				case c == 0:
					return nil, false
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if at(p) != 0 {
				p++
			}
		}
		args = append(args, cur)
	}
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
