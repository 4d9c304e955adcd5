package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits on what a peer can make a reader allocate or recurse into.
const (
	MaxBulkLen = 512 << 20 // Redis's default proto-max-bulk-len
	MaxElems   = 1 << 26   // elements of one aggregate (a map counts keys and values)
	MaxDepth   = 128       // nesting of aggregates
)

// ErrProtocol is returned (wrapped, with detail) when the bytes read are
// not a well-formed RESP reply or exceed a limit above. The connection is
// then out of step and must be closed.
var ErrProtocol = errors.New("resp: protocol error")

// attribute is RESP3's attribute type: metadata that precedes a reply.
// Read skips it; ReadRaw keeps its bytes.
const attribute = '|'

// preallocation caps the capacity reserved up front for an aggregate, so
// an announced length cannot make us allocate more than what arrives.
const preallocation = 1024

// Read decodes one whole reply. At a clean end of stream (no byte of a
// new reply read) it returns io.EOF; a reply cut short is
// io.ErrUnexpectedEOF.
func Read(br *bufio.Reader) (Value, error) {
	d := decoder{br: br, build: true}
	return d.value(0)
}

// ReadRaw appends the bytes of one whole reply, exactly as received, to
// dst. On error it returns what it read so far.
func ReadRaw(br *bufio.Reader, dst []byte) ([]byte, error) {
	d := decoder{br: br, raw: dst, capture: true}
	_, err := d.value(0)
	return d.raw, err
}

// Parse decodes b, which must hold exactly one whole reply.
func Parse(b []byte) (Value, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	v, err := Read(br)
	if err != nil {
		return v, err
	}
	if br.Buffered() > 0 {
		return v, fmt.Errorf("%w: %d bytes after the reply", ErrProtocol, br.Buffered())
	}
	return v, nil
}

type decoder struct {
	br      *bufio.Reader
	raw     []byte
	capture bool // append every byte read to raw
	build   bool // build Values (off while skipping attributes or reading raw)
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// line reads one CRLF-terminated line and returns it without the CRLF.
// The slice is only valid until the next read.
func (d *decoder) line(depth int) ([]byte, error) {
	line, err := d.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull { // a line longer than the buffer
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(long) <= MaxBulkLen {
			line, err = d.br.ReadSlice('\n')
			long = append(long, line...)
		}
		if err == bufio.ErrBufferFull {
			err = protoErr("line longer than %d bytes", MaxBulkLen)
		}
		line = long
	}
	if d.capture {
		d.raw = append(d.raw, line...)
	}
	if err != nil {
		if err == io.EOF && (depth > 0 || len(line) > 0) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, protoErr("line without type or CRLF: %q", line)
	}
	return line[:len(line)-2], nil
}

// length parses an aggregate or bulk length; -1 means null.
func length(kind Kind, body []byte, max int64) (int, error) {
	n, ok := parseInt(body)
	if !ok || n < -1 || n > max {
		return 0, protoErr("bad length %q for type %q", body, byte(kind))
	}
	return int(n), nil
}

func (d *decoder) value(depth int) (Value, error) {
	line, err := d.line(depth)
	if err != nil {
		return Value{}, err
	}
	kind, body := Kind(line[0]), line[1:]
	switch kind {
	case SimpleString, Error, Double, BigNumber:
		v := Value{Kind: kind}
		if d.build {
			v.Str = append([]byte(nil), body...)
		}
		return v, nil
	case Integer:
		n, ok := parseInt(body)
		if !ok {
			return Value{}, protoErr("bad integer %q", body)
		}
		return Value{Kind: kind, Num: n}, nil
	case Boolean:
		if len(body) != 1 || (body[0] != 't' && body[0] != 'f') {
			return Value{}, protoErr("bad boolean %q", body)
		}
		v := Value{Kind: kind}
		if body[0] == 't' {
			v.Num = 1
		}
		return v, nil
	case Null:
		return Value{Kind: kind, Nil: true}, nil
	case BulkString, Verbatim, BulkError:
		n, err := length(kind, body, MaxBulkLen)
		if err != nil {
			return Value{}, err
		}
		if n < 0 {
			return Value{Kind: kind, Nil: true}, nil
		}
		return d.bulk(kind, n, depth)
	case Array, Set, Push, Map, attribute:
		n, err := length(kind, body, MaxElems)
		if err != nil {
			return Value{}, err
		}
		if n < 0 {
			return Value{Kind: kind, Nil: true}, nil
		}
		if depth >= MaxDepth {
			return Value{}, protoErr("replies nested deeper than %d", MaxDepth)
		}
		if kind == Map || kind == attribute {
			if n > MaxElems/2 {
				return Value{}, protoErr("map of %d entries", n)
			}
			n *= 2
		}
		if kind == attribute {
			build := d.build
			d.build = false
			for i := 0; i < n; i++ {
				if _, err := d.value(depth + 1); err != nil {
					return Value{}, err
				}
			}
			d.build = build
			return d.value(depth) // the reply the attributes describe
		}
		v := Value{Kind: kind}
		if d.build {
			v.Elems = make([]Value, 0, min(n, preallocation))
		}
		for i := 0; i < n; i++ {
			e, err := d.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			if d.build {
				v.Elems = append(v.Elems, e)
			}
		}
		return v, nil
	}
	return Value{}, protoErr("unknown reply type %q", byte(kind))
}

// bulk reads a bulk payload of n bytes and its CRLF.
func (d *decoder) bulk(kind Kind, n, depth int) (Value, error) {
	var buf []byte
	switch {
	case d.capture:
		// Read straight into raw; a built Value gets its own copy below.
		start := len(d.raw)
		d.raw = append(d.raw, make([]byte, n+2)...)
		buf = d.raw[start:]
	case d.build:
		buf = make([]byte, n+2)
	default:
		if _, err := d.br.Discard(n + 2); err != nil {
			return Value{}, unexpected(err)
		}
		return Value{Kind: kind}, nil
	}
	if m, err := io.ReadFull(d.br, buf); err != nil {
		if d.capture {
			d.raw = d.raw[:len(d.raw)-len(buf)+m]
		}
		return Value{}, unexpected(err)
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return Value{}, protoErr("bulk string of %d bytes not followed by CRLF", n)
	}
	v := Value{Kind: kind}
	if d.build {
		if d.capture {
			v.Str = append([]byte(nil), buf[:n]...)
		} else {
			v.Str = buf[:n:n]
		}
	}
	return v, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
