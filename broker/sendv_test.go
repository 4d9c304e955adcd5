package broker

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// writeCounter is a net.Conn that records each Write.
type writeCounter struct {
	net.Conn
	writes [][]byte
}

func (w *writeCounter) SetWriteDeadline(time.Time) error { return nil }

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(b))
	return len(b), nil
}

// A pipeline's replies reach the socket in one write, not one per reply:
// net.Buffers writes piece by piece on anything but a bare TCP socket
// (our clientConn wrapper, TLS), which doubled the CPU per PUBLISH at -P
// 16 (101,399 write calls for 100,000 publishes, 7,850 with this).
func TestSendvJoinsSmallPieces(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		wc := &writeCounter{}
		var conn net.Conn = wc
		if wrap {
			conn = newClientConn(wc)
		}
		c := &client{conn: conn, srv: &Server{}}
		var v net.Buffers
		var want []byte
		for i := 0; i < 32; i++ {
			piece := []byte(":1\r\n")
			v = append(v, piece)
			want = append(want, piece...)
		}
		if !c.sendv(v) {
			t.Fatal("sendv failed")
		}
		if len(wc.writes) != 1 || !bytes.Equal(wc.writes[0], want) {
			t.Fatalf("wrapped=%v: %d writes, want 1 carrying all 32 replies", wrap, len(wc.writes))
		}
		if got := c.srv.stats.netOutputBytes.Load(); got != int64(len(want)) {
			t.Fatalf("counted %d output bytes, want %d", got, len(want))
		}
	}
}
