// Command xrange measures what big history replies cost a node (issue 10):
// it fills a channel with a million entries, then runs 1 and 3 parallel
// `XRANGE chat - +` readers while an unrelated client PINGs once a
// millisecond, and reports the server's peak RSS (VmHWM, reset before
// each run) and the PING latency, median of -runs runs. It does the same
// against redis-server with an equivalent stream (XADD of the same
// entries), for comparison.
//
//	go run ./bench/xrange -ordo bin/ordo            (make bench-xrange)
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ordo-broker/ordo/bench/proc"
	"github.com/ordo-broker/ordo/clients/resp"
)

func main() {
	ordoBin := flag.String("ordo", "bin/ordo", "ordo binary")
	redisBin := flag.String("redis", "redis-server", "redis-server binary (empty: skip Redis)")
	entries := flag.Int("entries", 1_000_000, "entries in the channel")
	size := flag.Int("size", 100, "payload bytes")
	runs := flag.Int("runs", 3, "runs per row (the median is reported)")
	readers := flag.String("readers", "1,3", "parallel XRANGE readers per row")
	jsonOut := flag.String("json", "", "also write the rows as JSON to this file (the benchmark suite, bench/suite, reads it)")
	flag.Parse()

	var rows []string
	var out []jsonRow
	targets := []struct{ name, bin string }{{"ordo", *ordoBin}, {"redis", *redisBin}}
	for _, tg := range targets {
		if tg.bin == "" {
			continue
		}
		srv, err := start(tg.name, tg.bin)
		if err != nil {
			fail(err)
		}
		t0 := time.Now()
		if err := fill(srv, *entries, *size); err != nil {
			srv.stop()
			fail(fmt.Errorf("%s: fill: %w", tg.name, err))
		}
		if tg.name == "ordo" {
			// Measure a node as it runs after a restart, not one still
			// holding the fill's garbage.
			if srv, err = srv.restart(); err != nil {
				fail(err)
			}
		}
		base := status(srv.pid(), "VmRSS")
		fmt.Fprintf(os.Stderr, "%s: %d entries in %s; RSS %d MB\n", tg.name, *entries, time.Since(t0).Round(time.Millisecond), base>>10)
		for _, f := range strings.Split(*readers, ",") {
			n, _ := strconv.Atoi(strings.TrimSpace(f))
			var rss, p99, p99c, pmax, took []float64
			var bytes int64
			for r := 0; r < *runs; r++ {
				res, err := measure(srv, n)
				if err != nil {
					srv.stop()
					fail(fmt.Errorf("%s, %d readers: %w", tg.name, n, err))
				}
				fmt.Fprintf(os.Stderr, "  %s %d readers run %d: peak RSS %d MB, PING p99 %.2f ms (corrected %.2f) max %.2f ms, XRANGE %.1f s\n",
					tg.name, n, r+1, res.peakKB>>10, res.p99, res.p99c, res.max, res.took.Seconds())
				rss = append(rss, float64(res.peakKB>>10))
				p99, pmax = append(p99, res.p99), append(pmax, res.max)
				p99c = append(p99c, res.p99c)
				took = append(took, res.took.Seconds())
				bytes = res.bytes
			}
			out = append(out, jsonRow{Server: tg.name, Readers: n, ReplyBytes: bytes, RSSBeforeMB: float64(base) / 1024, PeakRSSMB: median(rss),
				PingP99: median(p99), PingP99Corrected: median(p99c), PingMax: median(pmax), Seconds: median(took)})
			rows = append(rows, fmt.Sprintf("| %s | %d | %d MB | %d MB | %.0f MB | %.2f ms | %.2f ms | %.2f ms | %.1f s |",
				tg.name, n, bytes/1e6, base>>10, median(rss), median(p99), median(p99c), median(pmax), median(took)))
		}
		srv.stop()
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fail(err)
		}
	}
	fmt.Printf("XRANGE chat - + over %d entries of %d-byte payloads; medians of %d runs\n\n", *entries, *size, *runs)
	fmt.Println("| server | readers | reply each | RSS before | peak RSS | PING p99 | PING p99, corrected | PING max | XRANGE time |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

// jsonRow is one row of the table, for -json: medians of the runs (peak
// RSS in MB of 2^20 bytes, latencies in ms).
type jsonRow struct {
	Server           string  `json:"server"`
	Readers          int     `json:"readers"`
	ReplyBytes       int64   `json:"reply_bytes"`
	RSSBeforeMB      float64 `json:"rss_before_mb"`
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	PingP99          float64 `json:"ping_p99_ms"`
	PingP99Corrected float64 `json:"ping_p99_corrected_ms"`
	PingMax          float64 `json:"ping_max_ms"`
	Seconds          float64 `json:"xrange_seconds"`
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench-xrange:", err)
	os.Exit(1)
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

type server struct {
	name, addr string
	cmd        *exec.Cmd
	dir        string
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM) // (a clean stop: ORDO_CPUPROFILE is written)
	t := time.AfterFunc(30*time.Second, func() { s.cmd.Process.Kill() })
	s.cmd.Wait()
	t.Stop()
	os.RemoveAll(s.dir)
}

// restart stops the node (SIGTERM: a clean shutdown) and starts it again
// on the same data directory and port.
func (s *server) restart() (*server, error) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	cmd := exec.Command(s.cmd.Args[0], s.cmd.Args[1:]...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.cmd = cmd
	return s, s.waitReady()
}

func (s *server) waitReady() error {
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := resp.Dial(s.addr, 2*time.Second); err == nil {
			v, err := c.Do("PUBLISH", "warmup", "x")
			c.Close()
			if err == nil && v.Err() == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start on %s", s.name, s.addr)
		}
	}
}

func start(name, bin string) (*server, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-xrange-")
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if name == "ordo" {
		// fsync never for the fill only: the readers' cost is the point.
		cmd = exec.Command(bin, "node", "--port", strconv.Itoa(port), "--data-dir", filepath.Join(dir, "data"), "--fsync", "never", "--log-level", "warn")
	} else {
		cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd, dir: dir}
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// fill writes n entries to chat over a pipelined connection, in batches
// (so that the server never holds a million requests at once): PUBLISH on
// ordo, XADD of the same fields on Redis.
func fill(s *server, n, size int) error {
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	payload := strings.Repeat("m", size)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	r := bufio.NewReaderSize(c, 1<<16)
	w := bufio.NewWriterSize(c, 1<<16)
	const batch = 2000
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		for j := i; j < i+k; j++ {
			var req []byte
			if s.name == "ordo" {
				req = resp.Command("PUBLISH", "chat", payload)
			} else {
				req = resp.Command("XADD", "chat", strconv.Itoa(j+1)+"-0", "payload", payload, "sender", "", "time", now)
			}
			if _, err := w.Write(req); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for j := 0; j < k; j++ {
			b, err := resp.ReadRaw(r, nil)
			if err == nil && len(b) > 0 && b[0] == '-' {
				err = errors.New(strings.TrimSpace(string(b)))
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

type result struct {
	peakKB   int64
	p99, max float64 // ms
	p99c     float64 // ms, corrected for coordinated omission
	took     time.Duration
	bytes    int64 // one reader's reply
}

// measure runs n parallel XRANGE readers and a PING client.
func measure(s *server, n int) (result, error) {
	var res result
	// Reset the peak RSS (Linux: "5" clears VmHWM), so it is this run's.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid()), []byte("5"), 0); err != nil {
		return res, fmt.Errorf("resetting VmHWM: %w", err)
	}
	pinger, err := resp.Dial(s.addr, 10*time.Second)
	if err != nil {
		return res, err
	}
	defer pinger.Close()
	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	// The same, corrected for coordinated omission: a PING stalled for
	// 1 s also stands for the ~1000 PINGs a client sending one a
	// millisecond would have waited on meanwhile.
	corrected := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	stop := make(chan struct{})
	pingDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pingDone <- nil
				return
			case <-tick.C:
			}
			t := time.Now()
			if _, err := pinger.Do("PING"); err != nil {
				pingDone <- err
				return
			}
			us := time.Since(t).Microseconds()
			hist.RecordValue(us)
			corrected.RecordCorrectedValue(us, 1000)
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	sizes := make([]int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sizes[i], errs[i] = readXRange(s.addr)
		}(i)
	}
	wg.Wait()
	res.took = time.Since(start)
	close(stop)
	if err := <-pingDone; err != nil {
		return res, fmt.Errorf("ping: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.bytes = sizes[0]
	res.peakKB = status(s.pid(), "VmHWM")
	res.p99 = float64(hist.ValueAtQuantile(99)) / 1000
	res.max = float64(hist.Max()) / 1000
	res.p99c = float64(corrected.ValueAtQuantile(99)) / 1000
	return res, nil
}

// readXRange sends XRANGE chat - + and reads the reply without keeping
// it, returning its size.
func readXRange(addr string) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := c.Write(resp.Command("XRANGE", "chat", "-", "+")); err != nil {
		return 0, err
	}
	cr := &countingReader{r: c}
	r := bufio.NewReaderSize(cr, 1<<16)
	if err := skipReply(r); err != nil {
		return 0, err
	}
	return cr.n - int64(r.Buffered()), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// skipReply reads one RESP2 reply, discarding bulk payloads as they come.
func skipReply(r *bufio.Reader) error {
	pending := 1
	for pending > 0 {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		pending--
		if len(line) < 3 {
			return fmt.Errorf("bad reply line %q", line)
		}
		n, _ := strconv.Atoi(string(line[1 : len(line)-2]))
		switch line[0] {
		case '*':
			pending += max(n, 0)
		case '$':
			if n >= 0 {
				if _, err := r.Discard(n + 2); err != nil {
					return err
				}
			}
		case '-':
			return errors.New(strings.TrimSpace(string(line)))
		}
	}
	return nil
}

// status reads a /proc/PID/status field in kB (0 if the process is gone).
func status(pid int, field string) int64 {
	n, _ := proc.StatusKB(pid, field)
	return n
}
