package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// reply is one parsed RESP value, enough for the load generator: simple
// strings, errors, integers, bulk strings and (push) arrays.
type reply struct {
	kind  byte // '+', '-', ':', '$', '*' ('>' pushes are reported as '*')
	str   []byte
	num   int64
	elems []reply
}

func (r reply) err() error {
	if r.kind == '-' {
		return errors.New(string(r.str))
	}
	return nil
}

func readReply(rd *bufio.Reader) (reply, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return reply{}, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return reply{}, fmt.Errorf("bad RESP line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+', '-':
		return reply{kind: kind, str: append([]byte(nil), body...)}, nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		return reply{kind: ':', num: n}, err
	case '_':
		return reply{kind: '$'}, nil
	case '$':
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return reply{}, err
		}
		if n < 0 {
			return reply{kind: '$'}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return reply{}, err
		}
		return reply{kind: '$', str: buf[:n]}, nil
	case '*', '>', '%':
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return reply{}, err
		}
		if kind == '%' {
			n *= 2
		}
		r := reply{kind: '*'}
		for i := 0; i < n; i++ {
			e, err := readReply(rd)
			if err != nil {
				return reply{}, err
			}
			r.elems = append(r.elems, e)
		}
		return r, nil
	}
	return reply{}, fmt.Errorf("unexpected RESP type %q", kind)
}

func appendCommand(b []byte, args ...[]byte) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
