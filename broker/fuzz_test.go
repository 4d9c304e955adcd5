package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The RESP front end's fuzz targets. `make test` runs each for a few
// seconds, `make fuzz` for longer; crashing inputs are kept in
// testdata/fuzz/<Target> and replayed by every plain `go test`.

// respSeeds are request streams real clients send: the handshakes of
// redis-cli, go-redis and redis-py, publishing and subscribing, RESP3,
// transactions, history reads, inline commands, pipelines, and the
// malformed framing the differential tests compare with Redis.
var respSeeds = []string{
	"*1\r\n$7\r\nCOMMAND\r\n*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n",
	"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$8\r\nLIB-NAME\r\n$8\r\ngo-redis\r\n*4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$7\r\nLIB-VER\r\n$5\r\n9.7.0\r\n",
	"*4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$8\r\nLIB-NAME\r\n$8\r\nredis-py\r\n*1\r\n$4\r\nPING\r\n",
	"*3\r\n$7\r\nPUBLISH\r\n$4\r\nchat\r\n$5\r\nhello\r\n",
	"*3\r\n$8\r\nSPUBLISH\r\n$4\r\nchat\r\n$0\r\n\r\n*1\r\n$6\r\nSTATUS\r\n",
	"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nchat\r\n*3\r\n$7\r\nPUBLISH\r\n$4\r\nchat\r\n$2\r\nhi\r\n*1\r\n$11\r\nUNSUBSCRIBE\r\n",
	"*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\nc*\r\n*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nRESET\r\n",
	"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\nx\r\n*3\r\n$8\r\nSPUBLISH\r\n$1\r\nx\r\n$1\r\ny\r\n",
	"*1\r\n$5\r\nMULTI\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n*1\r\n$4\r\nEXEC\r\n",
	"*4\r\n$6\r\nXRANGE\r\n$4\r\nchat\r\n$1\r\n-\r\n$1\r\n+\r\n*6\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$1\r\n2\r\n$7\r\nSTREAMS\r\n$4\r\nchat\r\n$1\r\n0\r\n",
	"*6\r\n$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$2\r\n10\r\n$7\r\nSTREAMS\r\n$4\r\nchat\r\n$1\r\n$\r\n",
	"*2\r\n$4\r\nXLEN\r\n$4\r\nchat\r\n*1\r\n$4\r\nINFO\r\n*2\r\n$6\r\nPUBSUB\r\n$8\r\nCHANNELS\r\n",
	"PING\r\nECHO hello\r\nPUBLISH chat \"quoted payload\"\r\n\r\n",
	"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$5\r\nalice\r\n*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n",
	"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$1\r\nb\r\n",
	"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
	"*1\r\n$4\r\nPING\r\n*x\r\n",
	"*1\r\n$-1\r\n",
	"*1\r\n$99999999999\r\n",
	"*2\r\n$4\r\nECHO\r\n$5\r\nab\r\n",
	"*3000000000\r\n",
	"*1\r\nx4\r\nPING\r\n",
	"\"unbalanced\r\n",
	"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n",
	// Counts refused from the header, and requests whose arguments
	// (argOverhead each) exceed the request limit.
	"*1048577\r\n",
	"*2147483647\r\n$0\r\n\r\n$0\r\n\r\n",
	"*1\r\n$4\r\nPING\r\n*20000\r\n$0\r\n\r\n",
	"*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$70000\r\nxx",
}

// stateChanging reports inputs that would change the one server the
// target shares between inputs (stop it, pause it, change its limits or
// its cluster): later inputs would then test a different server, or none.
// Their parsing is still covered by FuzzRequestScanner.
func stateChanging(in []byte) bool {
	l := strings.ToLower(string(in))
	for _, w := range []string{"shutdown", "config", "cluster", "pause", "debug", "acl", "requirepass"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// FuzzRESPServer sends arbitrary bytes to a running node, half-closes the
// connection and requires that the node neither crashes nor hangs: the
// connection ends (after any replies) within a bound, and the process's
// heap stays bounded (max_request_size limits what one request may make
// it hold).
func FuzzRESPServer(f *testing.F) {
	for _, s := range respSeeds {
		f.Add([]byte(s))
	}
	s := startServer(f, func(c *Config) {
		c.NoSync = true // publishes are not what is tested: do not wait for fsyncs
		c.Limits.MaxRequestBytes = 1 << 20
		c.Limits.MaxMessageBytes = 64 << 10
	})
	addr := s.Addr().String()
	f.Fuzz(func(t *testing.T, in []byte) {
		if stateChanging(in) {
			return
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		limit := time.Now().Add(10 * time.Second)
		conn.SetDeadline(limit)
		// Write in another goroutine: a node that answers a large input
		// faster than it is read would otherwise fill both buffers.
		go func() {
			conn.Write(in)
			conn.(*net.TCPConn).CloseWrite()
		}()
		n, err := io.Copy(io.Discard, conn)
		if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("after %d reply bytes: %v (the node neither answered to the end nor closed the connection)", n, err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > 512<<20 {
			t.Fatalf("heap %d MiB after a %d-byte input", ms.HeapAlloc>>20, len(in))
		}
	})
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset by peer")
}

// chunkConn returns its input in reads of at most chunk bytes, like a
// network that splits a stream anywhere.
type chunkConn struct {
	net.Conn // nil: only Read and Write are used
	in       []byte
	chunk    int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.chunk, len(c.in))
	copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// readAll reads in, split into reads of at most chunk bytes, through a
// reqReader and returns the requests it yields (each as RESP) and the
// error that ended the stream. The reader reserves what its requests
// declare beyond maxBulk/4 from a budget of its own, which must be empty
// once the stream has ended.
func readAll(t *testing.T, in []byte, chunk int, maxBulk int64) ([]string, error) {
	budget := newRequestBudget(maxBulk / 2)
	rd := newReqReader(&chunkConn{in: in, chunk: chunk}, nil, requestLimits{maxReq: maxBulk, budget: budget, free: maxBulk / 4})
	defer func() {
		rd.close()
		if n := budget.inUse(); n != 0 {
			t.Fatalf("the closed reader still holds %d bytes of the budget", n)
		}
	}()
	var reqs []string
	for calls := 0; ; calls++ {
		if calls > len(in)+2 {
			t.Fatalf("no end after %d requests from a %d-byte input", calls, len(in))
		}
		args, err := rd.next()
		if err != nil {
			return reqs, err
		}
		if len(args) == 0 {
			t.Fatal("an empty request was returned")
		}
		var b []byte
		for _, a := range args {
			b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
		}
		reqs = append(reqs, fmt.Sprintf("*%d\r\n%s", len(args), b))
	}
}

// FuzzRequestScanner feeds arbitrary bytes, split at arbitrary places,
// through the request reader (reqreader.go). It must not panic, and must
// read the same requests and reach the same verdict however the stream is
// split: the reader keeps its state between reads, so a split may change
// nothing.
func FuzzRequestScanner(f *testing.F) {
	for _, s := range respSeeds {
		f.Add([]byte(s), uint8(1), uint16(100))
		f.Add([]byte(s), uint8(7), uint16(4))
		f.Add([]byte(s), uint8(3), uint16(65535))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, maxBulk uint16) {
		whole, werr := readAll(t, bytes.Clone(in), len(in)+1, int64(maxBulk))
		split, serr := readAll(t, bytes.Clone(in), int(chunk%64)+1, int64(maxBulk))
		if werr.Error() != serr.Error() {
			t.Fatalf("verdict depends on the split: whole %v, split by %d %v", werr, int(chunk%64)+1, serr)
		}
		if !slices.Equal(whole, split) {
			t.Fatalf("split by %d reads %q, whole %q", int(chunk%64)+1, split, whole)
		}
	})
}

// Found by the scanner's fuzzing: an empty request split across reads
// reached redcon, which refuses it ("invalid multibulk length") where
// Redis skips it.
func TestEmptyRequestSplitAcrossReads(t *testing.T) {
	for chunk := 1; chunk <= 4; chunk++ {
		reqs, err := readAll(t, []byte("*-1\r\n*0\r\n*1\r\n$4\r\nPING\r\n*0"), chunk, 100)
		if len(reqs) != 1 || reqs[0] != "*1\r\n$4\r\nPING\r\n" || !errors.Is(err, io.EOF) {
			t.Fatalf("reads of %d bytes: %q, %v; want only the PING", chunk, reqs, err)
		}
	}
}
