// Command attack measures what hostile request streams cost a server: it
// starts a fresh ordo node (and, for comparison, a fresh redis-server) per
// attack and run, sends the attack for a few seconds while an unrelated
// client PINGs every 10 ms, and reports the server's peak RSS (VmHWM
// from /proc), the PING latency p99 (from each PING's intended send time,
// so a stall counts for every PING it delays) and the CPU the server
// spent during the attack and in the second after it.
//
//	make bench-attack
//	go run ./bench/attack -ordo bin/ordo -runs 3 -duration 3s
//
// Linux only (/proc). Everything on 127.0.0.1; every loop is bounded by
// -duration.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/ordo-broker/ordo/bench/proc"
)

// An attack sends its hostile traffic to addr until ctx ends.
type attack struct {
	name, desc string
	run        func(ctx context.Context, addr string)
}

var attacks = []attack{
	{"empty-args", "2 connections stream a request of 5M empty arguments",
		func(ctx context.Context, addr string) {
			block := []byte(strings.Repeat("$0\r\n\r\n", 64<<10/6))
			conns(ctx, addr, 2, func(c net.Conn) {
				if _, err := c.Write([]byte("*5000000\r\n")); err != nil {
					return
				}
				for ctx.Err() == nil {
					if _, err := c.Write(block); err != nil {
						return
					}
				}
			})
		}},
	{"max-args", "4 connections send requests of 1048576 empty arguments (the most allowed), again and again",
		func(ctx context.Context, addr string) {
			req := []byte("*1048576\r\n" + strings.Repeat("$0\r\n\r\n", 1048576))
			conns(ctx, addr, 4, func(c net.Conn) {
				go io.Copy(io.Discard, c) // the error replies
				for ctx.Err() == nil {
					if _, err := c.Write(req); err != nil {
						return
					}
				}
			})
		}},
	{"count-trickle", "8 connections send *2147483647, then 6 bytes every 100 ms",
		func(ctx context.Context, addr string) {
			conns(ctx, addr, 8, func(c net.Conn) {
				if _, err := c.Write([]byte("*2147483647\r\n")); err != nil {
					return
				}
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						if _, err := c.Write([]byte("$0\r\n\r\n")); err != nil {
							return
						}
					}
				}
			})
		}},
	{"huge-bulks", "16 connections declare 60 MB bulks, send all but the last byte, hold",
		func(ctx context.Context, addr string) {
			const size = 60 << 20
			chunk := make([]byte, 64<<10)
			conns(ctx, addr, 16, func(c net.Conn) {
				if _, err := fmt.Fprintf(c, "*3\r\n$7\r\nPUBLISH\r\n$1\r\nx\r\n$%d\r\n", size); err != nil {
					return
				}
				for sent := 0; sent+len(chunk) < size && ctx.Err() == nil; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
				<-ctx.Done()
			})
		}},
}

// conns runs f on n connections to addr at once, each opened again when f
// returns early (the server refused it), until ctx ends.
func conns(ctx context.Context, addr string, n int, f func(net.Conn)) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				f(c)
				stop()
				c.Close()
				select { // a refused connection: do not spin
				case <-ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
	}
	wg.Wait()
}

// ATTACK_DEBUG=1 prints PINGs later than 100 ms, to see when a stall began.
var debugSlow = os.Getenv("ATTACK_DEBUG") != ""

type result struct {
	hwmMB, p99ms, maxms, cpuS float64
}

func main() {
	ordo := flag.String("ordo", "bin/ordo", "ordo binary")
	redis := flag.String("redis", "redis-server", "redis-server binary (empty: ordo only)")
	runs := flag.Int("runs", 3, "runs per attack and server (the median is reported)")
	dur := flag.Duration("duration", 3*time.Second, "how long each attack runs")
	only := flag.String("attacks", "", "comma-separated attack names (default: all)")
	flag.Parse()
	servers := []string{"ordo"}
	if *redis != "" {
		servers = append(servers, "redis")
	}
	fmt.Printf("%-14s %-6s %12s %12s %12s %10s\n", "attack", "server", "peak RSS MB", "PING p99 ms", "PING max ms", "CPU s")
	failed := false
	for _, a := range attacks {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), a.name) {
			continue
		}
		for _, srv := range servers {
			var rs []result
			for range *runs {
				r, err := runOnce(a, srv, *ordo, *redis, *dur)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s against %s: %v\n", a.name, srv, err)
					failed = true
					break
				}
				rs = append(rs, r)
			}
			if len(rs) == 0 {
				continue
			}
			med := func(f func(result) float64) float64 {
				v := make([]float64, len(rs))
				for i, r := range rs {
					v[i] = f(r)
				}
				slices.Sort(v)
				return v[len(v)/2]
			}
			fmt.Printf("%-14s %-6s %12.0f %12.2f %12.1f %10.2f\n", a.name, srv,
				med(func(r result) float64 { return r.hwmMB }), med(func(r result) float64 { return r.p99ms }),
				med(func(r result) float64 { return r.maxms }), med(func(r result) float64 { return r.cpuS }))
		}
	}
	if failed {
		os.Exit(1)
	}
}

// runOnce starts a fresh server, runs the attack for dur with a PINGing
// client, keeps PINGing for a second after it, and measures.
func runOnce(a attack, srv, ordoBin, redisBin string, dur time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "ordo-attack-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	port, err := proc.FreePort()
	if err != nil {
		return result{}, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var cmd *exec.Cmd
	if srv == "ordo" {
		cmd = exec.Command(ordoBin, "node", "--port", strconv.Itoa(port), "--host", "127.0.0.1",
			"--data-dir", filepath.Join(dir, "data"), "--log-level", "error")
	} else {
		cmd = exec.Command(redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		// A graceful stop, so that an ORDO_CPUPROFILE profile is written.
		cmd.Process.Signal(syscall.SIGTERM)
		t := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		cmd.Wait()
		t.Stop()
	}()
	if err := waitPing(addr, 10*time.Second); err != nil {
		return result{}, err
	}
	cpu0, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	pingCtx, stopPing := context.WithCancel(context.Background())
	pingDone := make(chan error, 1)
	go func() { pingDone <- pinger(pingCtx, addr, hist) }()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	a.run(ctx, addr)
	cancel()
	time.Sleep(time.Second) // what the attack still costs after it left
	stopPing()
	if err := <-pingDone; err != nil {
		return result{}, fmt.Errorf("the unrelated client: %w", err)
	}
	cpu1, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	hwm, err := proc.StatusKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		return result{}, err
	}
	return result{
		hwmMB: float64(hwm) / 1024,
		p99ms: float64(hist.ValueAtQuantile(99)) / 1000,
		maxms: float64(hist.Max()) / 1000,
		cpuS:  cpu1 - cpu0,
	}, nil
}

// pinger PINGs addr every 10 ms until ctx ends, recording each
// reply's latency from the PING's intended send time.
func pinger(ctx context.Context, addr string, hist *hdrhistogram.Histogram) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	const interval = 10 * time.Millisecond
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != "+PONG\r\n" {
			return fmt.Errorf("PING: %q", line)
		}
		lat := time.Since(intended)
		if debugSlow && lat > 100*time.Millisecond && (i%10 == 0) {
			fmt.Fprintf(os.Stderr, "ping %d at +%v: %v\n", i, intended.Sub(start), lat)
		}
		hist.RecordValue(lat.Microseconds())
	}
	return nil
}

func waitPing(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("PING\r\n"))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && line == "+PONG\r\n" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer PING", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuSeconds is the user and system CPU time of a process so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces; utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // clock ticks (USER_HZ, 100 on Linux)
}
