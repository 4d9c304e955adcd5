package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ordo-broker/ordo/bench/proc"
	"github.com/ordo-broker/ordo/clients/resp"
)

// server is one process the suite started: an ordo node, a redis-server or
// a nats-server.
type server struct {
	name string
	addr string // host:port of its client port
	port int
	args []string
	cmd  *exec.Cmd
	dir  string // its data directory, removed when it stops for good
	logw io.Writer
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) start() error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = s.logw, s.logw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.cmd = cmd
	return nil
}

// halt stops the process (SIGTERM, a clean shutdown; SIGKILL after 30 s)
// and keeps its data.
func (s *server) halt() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.AfterFunc(30*time.Second, func() { s.cmd.Process.Kill() })
	s.cmd.Wait()
	t.Stop()
	s.cmd = nil
}

// stop halts the process and removes its data.
func (s *server) stop() {
	s.halt()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// cpuSeconds is the process's user plus system CPU time so far.
func (s *server) cpuSeconds() (float64, error) { return cpuSeconds(s.pid()) }

// rssMB is the process's resident set (VmRSS) in MB (2^20 bytes).
func (s *server) rssMB() float64 {
	kb, _ := proc.StatusKB(s.pid(), "VmRSS")
	return float64(kb) / 1024
}

// cpuSeconds reads utime+stime of /proc/PID/stat. USER_HZ is 100 on
// every Linux the suite runs on (it is fixed in the kernel ABI for
// /proc, whatever CONFIG_HZ is).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPU(string(b))
}

// parseCPU takes utime and stime (fields 14 and 15) from a /proc/PID/stat
// line; the command name (field 2) may hold spaces and parentheses, so
// fields are counted after its last ')'.
func parseCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc stat line %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bad /proc stat line %q", stat)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc stat line %q", stat)
	}
	return float64(ut+st) / 100, nil
}

// waitRESP polls until the server answers PING (and ready, if set,
// accepts its connection), within limit.
func waitRESP(ctx context.Context, s *server, limit time.Duration, ready func(*resp.Conn) bool) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := resp.Dial(s.addr, time.Second); err == nil {
			v, err := c.Do("PING")
			ok := err == nil && v.Err() == nil && (ready == nil || ready(c))
			c.Close()
			if ok {
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s not ready after %s", s.name, s.addr, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// env starts the processes of a suite run and stops them all at the end.
type env struct {
	ordoBin, redisBin, natsBin string
	tmp                        string
	log                        io.Writer // the servers' own output
	started                    []*server
}

func (e *env) newServer(name string, args ...string) (*server, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		return nil, err
	}
	s := &server{name: name, port: port, addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, logw: e.log}
	s.args = args
	e.started = append(e.started, s)
	return s, nil
}

func (e *env) stopAll() {
	for _, s := range e.started {
		s.stop()
	}
	e.started = nil
}

func (e *env) redis(ctx context.Context) (*server, error) {
	s, err := e.newServer("redis", e.redisBin)
	if err != nil {
		return nil, err
	}
	s.args = append(s.args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir)
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, waitRESP(ctx, s, 30*time.Second, nil)
}

// ordoNode starts a one-node ordo with extra flags (e.g. --fsync never).
func (e *env) ordoNode(ctx context.Context, extra ...string) (*server, error) {
	s, err := e.newServer("ordo", e.ordoBin)
	if err != nil {
		return nil, err
	}
	s.args = append(append(s.args, "node", "--port", strconv.Itoa(s.port), "--data-dir", filepath.Join(s.dir, "data"), "--log-level", "warn"), extra...)
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, waitRESP(ctx, s, 60*time.Second, canPublish)
}

// canPublish: a node serves once a PUBLISH commits (it has a leader).
func canPublish(c *resp.Conn) bool {
	v, err := c.Do("PUBLISH", "warmup", "x")
	return err == nil && v.Err() == nil
}

// cluster is a three-node ordo cluster.
type cluster struct {
	nodes []*server
}

func (e *env) ordoCluster(ctx context.Context, extra ...string) (*cluster, error) {
	var c cluster
	var peers []string
	for i := 1; i <= 3; i++ {
		s, err := e.newServer(fmt.Sprintf("ordo%d", i), e.ordoBin)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, s)
		peers = append(peers, fmt.Sprintf("%d:%s", i, s.addr))
	}
	for i, s := range c.nodes {
		s.args = append(append(s.args, "node", "--id", strconv.Itoa(i+1), "--port", strconv.Itoa(s.port), "--peers", strings.Join(peers, ","),
			"--data-dir", filepath.Join(s.dir, "data"), "--log-level", "warn"), extra...)
		if err := s.start(); err != nil {
			return nil, err
		}
	}
	for _, s := range c.nodes {
		if err := waitRESP(ctx, s, 60*time.Second, canPublish); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// status is a node's STATUS reply as field -> value.
func status(addr string) (map[string]string, error) {
	c, err := resp.Dial(addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	v, err := c.Do("STATUS")
	if err != nil {
		return nil, err
	}
	if e := v.Err(); e != nil {
		return nil, e
	}
	m := map[string]string{}
	for i := 0; i+1 < len(v.Elems); i += 2 {
		m[string(v.Elems[i].Str)] = string(v.Elems[i+1].Str)
	}
	return m, nil
}

// leader and follower derive the roles from STATUS: the node whose role
// is leader, and another one that follows it.
func (c *cluster) roles() (leader *server, followers []*server, err error) {
	for _, s := range c.nodes {
		if s.cmd == nil {
			continue
		}
		st, err := status(s.addr)
		if err != nil {
			return nil, nil, err
		}
		switch st["role"] {
		case "leader":
			leader = s
		case "follower":
			followers = append(followers, s)
		}
	}
	if leader == nil || len(followers) == 0 {
		return nil, nil, fmt.Errorf("no leader and follower in the cluster yet")
	}
	return leader, followers, nil
}

// waitRoles polls roles until the cluster has a leader and a follower.
func (c *cluster) waitRoles(ctx context.Context) (*server, []*server, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, f, err := c.roles()
		if err == nil {
			return l, f, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("cluster roles: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) addrs() []string {
	var a []string
	for _, s := range c.nodes {
		a = append(a, s.addr)
	}
	return a
}
