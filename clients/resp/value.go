// Package resp encodes Redis commands and decodes RESP2/RESP3 replies.
//
// It is the one RESP client codec of the project: the load generator
// (bench), the test kit and any production code that talks to ordo or
// Redis over a raw socket use it. It promises:
//
//   - Read decodes exactly one whole reply of any RESP2 or RESP3 type
//     (simple string, error, integer, bulk string, array, null, map, set,
//     push, verbatim string, double, boolean, big number; attributes are
//     skipped) into a Value, and ReadRaw returns the same reply's bytes
//     untouched, for tests that compare replies byte for byte.
//   - Lengths are checked before anything is allocated: a bulk string
//     longer than MaxBulkLen, an aggregate of more than MaxElems elements
//     or nesting deeper than MaxDepth is an ErrProtocol, never an
//     allocation of the size a peer announced.
//   - Reading a reply allocates only what the reply holds: one slice per
//     bulk string, one per aggregate, nothing for integers and simple
//     replies beyond their text (the load generator depends on this).
//
// Streamed RESP3 strings and aggregates (`$?`, `*?`) are not supported:
// no server ordo talks to sends them; they are an ErrProtocol.
package resp

import (
	"errors"
	"strconv"
)

// Kind is a reply's RESP type byte.
type Kind byte

// The RESP2 and RESP3 reply kinds, by their type byte.
const (
	SimpleString Kind = '+'
	Error        Kind = '-'
	Integer      Kind = ':'
	BulkString   Kind = '$'
	Array        Kind = '*'
	Null         Kind = '_'
	Map          Kind = '%'
	Set          Kind = '~'
	Push         Kind = '>'
	Verbatim     Kind = '='
	Double       Kind = ','
	Boolean      Kind = '#'
	BigNumber    Kind = '('
	BulkError    Kind = '!'
)

// Value is one decoded reply. Only the fields its Kind uses are set.
type Value struct {
	Kind Kind
	// Str is the text of simple strings, errors (without the leading
	// "-"), bulk strings, verbatim strings (with their "txt:" format
	// prefix), doubles and big numbers.
	Str []byte
	// Num is an integer's value; a boolean's is 1 or 0.
	Num int64
	// Elems are the elements of an array, set or push; a map's keys and
	// values alternate (key, value, key, value ...).
	Elems []Value
	// Nil marks RESP3 null and the RESP2 null bulk string and null array.
	Nil bool
}

// ReplyError is the error an error reply stands for.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// Err returns the reply as an error if it is an error reply, else nil.
func (v Value) Err() error {
	if v.Kind == Error || v.Kind == BulkError {
		return ReplyError(v.Str)
	}
	return nil
}

// IsErr reports whether the reply is an error whose text starts with
// prefix (e.g. "CLUSTERDOWN", "TRYAGAIN"; "" matches any error).
func (v Value) IsErr(prefix string) bool {
	if v.Err() == nil || len(v.Str) < len(prefix) {
		return false
	}
	return string(v.Str[:len(prefix)]) == prefix
}

// String is the reply as text: the text of strings, errors, doubles and
// big numbers (a verbatim string without its format prefix), the decimal
// form of integers, "true"/"false" for booleans and "" for null and
// aggregates.
func (v Value) String() string {
	switch v.Kind {
	case Integer:
		return strconv.FormatInt(v.Num, 10)
	case Boolean:
		return strconv.FormatBool(v.Num != 0)
	case Verbatim:
		if len(v.Str) >= 4 && v.Str[3] == ':' {
			return string(v.Str[4:])
		}
	}
	return string(v.Str)
}

// errNotInt is returned by Int for replies that hold no integer.
var errNotInt = errors.New("resp: reply is not an integer")

// Int is the reply as an integer: integers and booleans as they are,
// strings that hold a decimal integer parsed; an error reply returns its
// error.
func (v Value) Int() (int64, error) {
	switch v.Kind {
	case Integer, Boolean:
		return v.Num, nil
	case Error, BulkError:
		return 0, v.Err()
	case SimpleString, BulkString, BigNumber:
		if !v.Nil {
			if n, ok := parseInt(v.Str); ok {
				return n, nil
			}
		}
	}
	return 0, errNotInt
}

// Float is a double reply (or a string holding a number) as a float64.
func (v Value) Float() (float64, error) {
	switch v.Kind {
	case Integer:
		return float64(v.Num), nil
	case Error, BulkError:
		return 0, v.Err()
	}
	return strconv.ParseFloat(string(v.Str), 64)
}

// Array is the elements of an array, set, push or map (nil otherwise).
func (v Value) Array() []Value {
	switch v.Kind {
	case Array, Set, Push, Map:
		return v.Elems
	}
	return nil
}

// Strings is an aggregate's elements as text (see String).
func (v Value) Strings() []string {
	out := make([]string, len(v.Array()))
	for i, e := range v.Array() {
		out[i] = e.String()
	}
	return out
}

// StringMap reads a map, or an array of alternating keys and values (the
// RESP2 form of a map), as text. A trailing odd element is ignored.
func (v Value) StringMap() map[string]string {
	es := v.Array()
	out := make(map[string]string, len(es)/2)
	for i := 0; i+1 < len(es); i += 2 {
		out[es[i].String()] = es[i+1].String()
	}
	return out
}

// parseInt parses a decimal int64 without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg || b[0] == '+' {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
