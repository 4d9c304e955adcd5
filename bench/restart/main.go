// Command restart measures what restarting a node with a long log costs
// (issue 10): it fills a node's log with N 100-byte messages (--fsync
// never, one pipelined connection), stops it cleanly, then starts it
// again -runs times and reports, median of the runs:
//
//   - ping: from starting the process to the first PING answered;
//   - serve: until STATUS and an XRANGE of the log's last entries answer
//     (the node serves history, not just PING);
//   - RSS and peak RSS (VmRSS, VmHWM) right after serve, and RSS again
//     -settle later (background work after start shows there).
//
// The filled data directory is kept in -dir (reused by the next run if it
// holds the same count), so the fill is paid once. Set ORDO_CPUPROFILE in
// the environment to profile each restart (the node writes it on SIGTERM).
//
//	go run ./bench/restart -ordo bin/ordo -messages 1000000,10000000
package main

import (
	"bufio"
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
	"syscall"
	"time"

	"github.com/ordo-broker/ordo/bench/proc"
	"github.com/ordo-broker/ordo/clients/resp"
)

func main() {
	ordoBin := flag.String("ordo", "bin/ordo", "ordo binary")
	counts := flag.String("messages", "1000000", "comma-separated message counts to fill and restart with")
	size := flag.Int("size", 100, "payload bytes")
	runs := flag.Int("runs", 3, "restarts per count (the median is reported)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "bench-restart"), "where the filled data directories are kept (one per count)")
	settle := flag.Duration("settle", 3*time.Second, "how long after serving to read RSS again")
	extra := flag.String("args", "", "extra arguments for `ordo node` on restart (space-separated)")
	flag.Parse()

	fmt.Printf("restart of a 1-node ordo with N %d-byte messages in its log; medians of %d restarts (warm page cache)\n\n", *size, *runs)
	fmt.Println("| messages | log on disk | PING after | serving after | RSS | peak RSS | RSS after settle |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fail(err)
		}
		data := filepath.Join(*dir, fmt.Sprintf("n%d-s%d", n, *size))
		if err := ensureFilled(*ordoBin, data, n, *size); err != nil {
			fail(err)
		}
		var ping, serve, rss, hwm, settled []float64
		for r := 0; r < *runs; r++ {
			res, err := restart(*ordoBin, data, n, *settle, strings.Fields(*extra))
			if err != nil {
				fail(fmt.Errorf("%d messages: %w", n, err))
			}
			fmt.Fprintf(os.Stderr, "  %d messages run %d: PING %.2f s, serving %.2f s, RSS %d MB, peak %d MB, settled %d MB\n",
				n, r+1, res.ping.Seconds(), res.serve.Seconds(), res.rssKB>>10, res.hwmKB>>10, res.settledKB>>10)
			ping, serve = append(ping, res.ping.Seconds()), append(serve, res.serve.Seconds())
			rss, hwm = append(rss, float64(res.rssKB>>10)), append(hwm, float64(res.hwmKB>>10))
			settled = append(settled, float64(res.settledKB>>10))
		}
		fmt.Printf("| %d | %d MB | %.2f s | %.2f s | %.0f MB | %.0f MB | %.0f MB |\n",
			n, dirSize(data)>>20, median(ping), median(serve), median(rss), median(hwm), median(settled))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench-restart:", err)
	os.Exit(1)
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

type node struct {
	cmd  *exec.Cmd
	addr string
}

func startNode(bin, data string, args ...string) (*node, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := append([]string{"node", "--port", strconv.Itoa(port), "--data-dir", data, "--log-level", "warn"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &node{cmd, addr}, nil
}

// stop is a clean shutdown (SIGTERM), killed after a minute.
func (n *node) stop() error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	t := time.AfterFunc(time.Minute, func() { n.cmd.Process.Kill() })
	defer t.Stop()
	return n.cmd.Wait()
}

// ensureFilled leaves data holding exactly n messages on channel chat,
// filling it from scratch unless a marker says an earlier run did.
func ensureFilled(bin, data string, n, size int) error {
	marker := data + ".filled"
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	os.RemoveAll(data)
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		return err
	}
	nd, err := startNode(bin, data, "--fsync", "never")
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := waitPing(nd.addr, time.Minute); err != nil {
		nd.stop()
		return err
	}
	if err := fill(nd.addr, n, size); err != nil {
		nd.stop()
		return fmt.Errorf("fill: %w", err)
	}
	fmt.Fprintf(os.Stderr, "filled %d messages in %s\n", n, time.Since(t0).Round(time.Millisecond))
	if err := nd.stop(); err != nil {
		return fmt.Errorf("stop after fill: %w", err)
	}
	return os.WriteFile(marker, nil, 0o644)
}

// fill publishes n messages to chat over one connection, a writer and a
// reader goroutine keeping at most window requests outstanding.
func fill(addr string, n, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	const window = 4096
	credits := make(chan struct{}, window)
	for i := 0; i < window; i++ {
		credits <- struct{}{}
	}
	readErr := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c, 1<<16)
		for i := 0; i < n; i++ {
			b, err := resp.ReadRaw(r, nil)
			if err == nil && len(b) > 0 && b[0] == '-' {
				err = errors.New(strings.TrimSpace(string(b)))
			}
			if err != nil {
				readErr <- err
				return
			}
			credits <- struct{}{}
		}
		readErr <- nil
	}()
	w := bufio.NewWriterSize(c, 1<<16)
	req := resp.Command("PUBLISH", "chat", strings.Repeat("m", size))
	for i := 0; i < n; i++ {
		select {
		case <-credits:
		default:
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case <-credits:
			case err := <-readErr:
				return fmt.Errorf("reply %d: %v", i, err)
			}
		}
		if _, err := w.Write(req); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return <-readErr
}

// waitPing dials and PINGs until a PONG comes back; it returns when.
func waitPing(addr string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		if c, err := resp.Dial(addr, 100*time.Millisecond); err == nil {
			v, err := c.Do("PING")
			c.Close()
			if err == nil && v.Err() == nil {
				return time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no PONG from %s within %s", addr, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type result struct {
	ping, serve             time.Duration
	rssKB, hwmKB, settledKB int64
}

func restart(bin, data string, n int, settle time.Duration, args []string) (result, error) {
	var res result
	t0 := time.Now()
	nd, err := startNode(bin, data, args...)
	if err != nil {
		return res, err
	}
	defer nd.stop()
	tp, err := waitPing(nd.addr, 5*time.Minute)
	if err != nil {
		return res, err
	}
	res.ping = tp.Sub(t0)
	if err := serving(nd.addr, n, time.Minute); err != nil {
		return res, err
	}
	res.serve = time.Since(t0)
	pid := nd.cmd.Process.Pid
	if res.rssKB, err = proc.StatusKB(pid, "VmRSS"); err != nil {
		return res, err
	}
	if res.hwmKB, err = proc.StatusKB(pid, "VmHWM"); err != nil {
		return res, err
	}
	time.Sleep(settle) // (a measurement interval, not a wait for a condition)
	res.settledKB, err = proc.StatusKB(pid, "VmRSS")
	return res, err
}

// serving waits until STATUS answers and XRANGE returns the log's last
// message (seq n) and its first.
func serving(addr string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		last = tryServe(addr, n)
		if last == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("not serving within %s: %v", limit, last)
}

func tryServe(addr string, n int) error {
	c, err := resp.Dial(addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if v, err := c.Do("STATUS"); err != nil || v.Err() != nil {
		return fmt.Errorf("STATUS: %v %v", err, v.Err())
	}
	for _, q := range [][]string{
		{"XRANGE", "chat", strconv.Itoa(n), "+"},
		{"XRANGE", "chat", "-", "+", "COUNT", "1"},
	} {
		v, err := c.Do(q...)
		if err != nil {
			return err
		}
		if v.Err() != nil {
			return v.Err()
		}
		if len(v.Array()) != 1 {
			return fmt.Errorf("%s: %d entries, want 1", strings.Join(q, " "), len(v.Array()))
		}
	}
	return nil
}
