package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadEveryType(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Value
		str  string
	}{
		{"+OK\r\n", Value{Kind: SimpleString, Str: []byte("OK")}, "OK"},
		{"-ERR no\r\n", Value{Kind: Error, Str: []byte("ERR no")}, "ERR no"},
		{":-42\r\n", Value{Kind: Integer, Num: -42}, "-42"},
		{"$5\r\nhe\r\no\r\n", Value{Kind: BulkString, Str: []byte("he\r\no")}, "he\r\no"},
		{"$0\r\n\r\n", Value{Kind: BulkString, Str: []byte{}}, ""},
		{"$-1\r\n", Value{Kind: BulkString, Nil: true}, ""},
		{"*-1\r\n", Value{Kind: Array, Nil: true}, ""},
		{"_\r\n", Value{Kind: Null, Nil: true}, ""},
		{"#t\r\n", Value{Kind: Boolean, Num: 1}, "true"},
		{"#f\r\n", Value{Kind: Boolean}, "false"},
		{",3.25\r\n", Value{Kind: Double, Str: []byte("3.25")}, "3.25"},
		{"(3492890328409238509324850943850943825024385\r\n", Value{Kind: BigNumber, Str: []byte("3492890328409238509324850943850943825024385")}, "3492890328409238509324850943850943825024385"},
		{"=8\r\ntxt:abcd\r\n", Value{Kind: Verbatim, Str: []byte("txt:abcd")}, "abcd"},
		{"!3\r\nERR\r\n", Value{Kind: BulkError, Str: []byte("ERR")}, "ERR"},
		{"*2\r\n:1\r\n$1\r\na\r\n", Value{Kind: Array, Elems: []Value{{Kind: Integer, Num: 1}, {Kind: BulkString, Str: []byte("a")}}}, ""},
		{"~1\r\n+x\r\n", Value{Kind: Set, Elems: []Value{{Kind: SimpleString, Str: []byte("x")}}}, ""},
		{">2\r\n+a\r\n+b\r\n", Value{Kind: Push, Elems: []Value{{Kind: SimpleString, Str: []byte("a")}, {Kind: SimpleString, Str: []byte("b")}}}, ""},
		{"%1\r\n+k\r\n:7\r\n", Value{Kind: Map, Elems: []Value{{Kind: SimpleString, Str: []byte("k")}, {Kind: Integer, Num: 7}}}, ""},
		{"|1\r\n+ttl\r\n:3\r\n+OK\r\n", Value{Kind: SimpleString, Str: []byte("OK")}, "OK"},
	} {
		br := bufio.NewReader(strings.NewReader(tc.raw + tc.raw))
		v, err := Read(br)
		if err != nil || !reflect.DeepEqual(v, tc.want) || v.String() != tc.str {
			t.Errorf("Read(%q) = %+v %q, %v; want %+v %q", tc.raw, v, v.String(), err, tc.want, tc.str)
		}
		raw, err := ReadRaw(br, nil)
		if err != nil || string(raw) != tc.raw {
			t.Errorf("ReadRaw(%q) = %q, %v", tc.raw, raw, err)
		}
		if p, err := Parse([]byte(tc.raw)); err != nil || !reflect.DeepEqual(p, tc.want) {
			t.Errorf("Parse(%q) = %+v, %v", tc.raw, p, err)
		}
		if _, err := Read(br); err != io.EOF {
			t.Errorf("after %q: %v, want io.EOF", tc.raw, err)
		}
	}
}

func TestHelpers(t *testing.T) {
	v, _ := Parse([]byte("*4\r\n$4\r\nrole\r\n$6\r\nleader\r\n$4\r\nterm\r\n:3\r\n"))
	if m := v.StringMap(); m["role"] != "leader" || m["term"] != "3" {
		t.Fatalf("StringMap %v", m)
	}
	if got := v.Strings(); strings.Join(got, ",") != "role,leader,term,3" {
		t.Fatalf("Strings %v", got)
	}
	if n, err := v.Array()[3].Int(); n != 3 || err != nil {
		t.Fatalf("Int %d %v", n, err)
	}
	if n, err := (Value{Kind: BulkString, Str: []byte("-17")}).Int(); n != -17 || err != nil {
		t.Fatalf("Int of bulk %d %v", n, err)
	}
	e, _ := Parse([]byte("-CLUSTERDOWN no leader\r\n"))
	var re ReplyError
	if !errors.As(e.Err(), &re) || !e.IsErr("CLUSTERDOWN") || e.IsErr("TRYAGAIN") || v.Err() != nil {
		t.Fatalf("Err %v", e.Err())
	}
	if _, err := e.Int(); err == nil || err.Error() != "CLUSTERDOWN no leader" {
		t.Fatalf("Int of an error reply: %v", err)
	}
}

func TestMalformedAndOversized(t *testing.T) {
	for _, raw := range []string{
		"OK\r\n", "+OK\n", ":12a\r\n", "$3\r\nabcd\r\n", "$-2\r\n", "*2147483647999\r\n",
		"$1073741824\r\n", "#x\r\n", "$?\r\n", strings.Repeat("*1\r\n", MaxDepth+1) + ":1\r\n",
	} {
		_, err := Read(bufio.NewReader(strings.NewReader(raw)))
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%.40q: %v, want ErrProtocol", raw, err)
		}
	}
	for _, raw := range []string{"$5\r\nab", "*2\r\n:1\r\n", "+OK"} {
		if _, err := Read(bufio.NewReader(strings.NewReader(raw))); err != io.ErrUnexpectedEOF {
			t.Errorf("%q: %v, want io.ErrUnexpectedEOF", raw, err)
		}
	}
}

// A simple string longer than the reader's buffer is still one line.
func TestLongLine(t *testing.T) {
	long := strings.Repeat("x", 10000)
	v, err := Read(bufio.NewReaderSize(strings.NewReader("+"+long+"\r\n"), 16))
	if err != nil || v.String() != long {
		t.Fatalf("%d bytes, %v", len(v.Str), err)
	}
}

func TestCommand(t *testing.T) {
	if got := string(Command("PUBLISH", "ch", "")); got != "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n" {
		t.Fatalf("%q", got)
	}
	if got := AppendCommand([]byte("x"), []byte("PING")); string(got) != "x*1\r\n$4\r\nPING\r\n" {
		t.Fatalf("%q", got)
	}
}

// The load generator reads an acknowledgement per publish and a message
// per delivery: an integer costs nothing, a message one slice for its
// elements and one per bulk string.
func TestReadAllocations(t *testing.T) {
	ack := bytes.Repeat([]byte(":1\r\n"), 1000)
	msg := bytes.Repeat([]byte("*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$3\r\nabc\r\n"), 1000)
	for _, tc := range []struct {
		in   []byte
		want float64
	}{{ack, 0}, {msg, 4}} {
		r := bytes.NewReader(tc.in)
		br := bufio.NewReader(r)
		got := testing.AllocsPerRun(500, func() {
			if _, err := Read(br); err != nil {
				r.Reset(tc.in)
				br.Reset(r)
			}
		})
		if got > tc.want {
			t.Errorf("%.10q: %.1f allocations per reply, want <= %.0f", tc.in, got, tc.want)
		}
	}
}

func BenchmarkReadMessage(b *testing.B) {
	in := bytes.Repeat([]byte("*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$64\r\n"+strings.Repeat("p", 64)+"\r\n"), 1000)
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(br); err != nil {
			r.Reset(in)
			br.Reset(r)
		}
	}
}
