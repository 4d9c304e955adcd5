package broker

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
)

// Diagnostics and administration as Redis has them: MONITOR, SLOWLOG,
// LATENCY and SHUTDOWN.

// observe runs after every executed command (also inside EXEC): it feeds
// the slow log and the MONITOR clients, as Redis's call() does.
func (s *Server) observe(c *client, cmd *command, args [][]byte, start time.Time) {
	th := s.cfg.Slowlog.SlowerThan
	if th < 0 && s.monitors.n.Load() == 0 {
		return
	}
	if th >= 0 && !cmd.skipSlowlog {
		if d := time.Since(start); d.Microseconds() >= th {
			s.slowlog.add(c, redact(cmd, args), start, d, s.cfg.Slowlog.MaxLen)
		}
	}
	if s.monitors.n.Load() > 0 && !cmd.admin {
		s.monitors.feed(c, redact(cmd, args), start)
	}
}

// redact hides credentials from the slow log and MONITOR, as Redis does.
func redact(cmd *command, args [][]byte) [][]byte {
	hidden := []byte("(redacted)")
	switch cmd.name {
	case "auth":
		out := append([][]byte{args[0]}, make([][]byte, len(args)-1)...)
		for i := 1; i < len(args); i++ {
			out[i] = hidden
		}
		return out
	case "hello":
		out := append([][]byte(nil), args...)
		for i := 2; i+2 < len(out); i++ {
			if strings.EqualFold(string(out[i]), "auth") {
				out[i+1], out[i+2] = hidden, hidden
				i += 2
			}
		}
		return out
	}
	return args
}

// monitors are the clients in MONITOR mode.
type monitors struct {
	mu sync.Mutex
	cs map[*client]struct{}
	n  atomic.Int64
}

func (m *monitors) add(c *client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cs == nil {
		m.cs = map[*client]struct{}{}
	}
	m.cs[c] = struct{}{}
	m.n.Store(int64(len(m.cs)))
}

func (m *monitors) remove(c *client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cs, c)
	m.n.Store(int64(len(m.cs)))
}

// feed sends one line in Redis's format:
// +1700000000.123456 [0 127.0.0.1:50000] "publish" "ch" "hi"
func (m *monitors) feed(c *client, args [][]byte, at time.Time) {
	b := make([]byte, 0, 64)
	b = fmt.Appendf(b, "+%d.%06d [0 %s]", at.Unix(), at.Nanosecond()/1000, c.addr)
	for _, a := range args {
		b = append(b, ' ')
		b = appendRepr(b, a)
	}
	b = append(b, '\r', '\n')
	m.mu.Lock()
	defer m.mu.Unlock()
	for o := range m.cs {
		o.write(b, true) // a slow monitor is cut off like a slow subscriber
	}
}

// appendRepr quotes s as Redis's sdscatrepr does.
func appendRepr(b []byte, s []byte) []byte {
	b = append(b, '"')
	for _, ch := range s {
		switch ch {
		case '\\', '"':
			b = append(b, '\\', ch)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\a':
			b = append(b, '\\', 'a')
		case '\b':
			b = append(b, '\\', 'b')
		default:
			if ch >= ' ' && ch <= '~' {
				b = append(b, ch)
			} else {
				b = fmt.Appendf(b, "\\x%02x", ch)
			}
		}
	}
	return append(b, '"')
}

func cmdMonitor(c *client, _ [][]byte) {
	if c.monitoring.Swap(true) {
		return // Redis ignores a second MONITOR
	}
	c.srv.monitors.add(c)
	c.w.OK()
}

// Slow log entries, newest first, as Redis keeps them.
type slowlogEntry struct {
	id         int64
	at         time.Time
	dur        time.Duration
	args       [][]byte
	addr, name string
}

type slowlog struct {
	mu      sync.Mutex
	entries []slowlogEntry
	nextID  int64
}

// Redis trims what it keeps of a slow command.
const (
	slowlogMaxArgc   = 32
	slowlogMaxArgLen = 128
)

func (l *slowlog) add(c *client, args [][]byte, at time.Time, d time.Duration, maxLen int) {
	kept := make([][]byte, 0, min(len(args), slowlogMaxArgc))
	for i, a := range args {
		if i == slowlogMaxArgc-1 && len(args) > slowlogMaxArgc {
			kept = append(kept, fmt.Appendf(nil, "... (%d more arguments)", len(args)-slowlogMaxArgc+1))
			break
		}
		if len(a) > slowlogMaxArgLen {
			a = fmt.Appendf(append([]byte(nil), a[:slowlogMaxArgLen]...), "... (%d more bytes)", len(a)-slowlogMaxArgLen)
		} else {
			a = append([]byte(nil), a...)
		}
		kept = append(kept, a)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := slowlogEntry{id: l.nextID, at: at, dur: d, args: kept, addr: c.addr, name: c.getName()}
	l.nextID++
	l.entries = append([]slowlogEntry{e}, l.entries...)
	if len(l.entries) > maxLen {
		l.entries = l.entries[:maxLen]
	}
}

func cmdSlowlogGet(c *client, args [][]byte) {
	n := int64(10)
	if len(args) > 3 {
		c.w.Error("ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")
		return
	}
	if len(args) == 3 {
		v, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil || v < -1 {
			c.w.Error("ERR count should be greater than or equal to -1")
			return
		}
		n = v
	}
	l := &c.srv.slowlog
	l.mu.Lock()
	es := l.entries
	if n >= 0 && int64(len(es)) > n {
		es = es[:n]
	}
	es = append([]slowlogEntry(nil), es...)
	l.mu.Unlock()
	c.w.Array(len(es))
	for _, e := range es {
		c.w.Array(6)
		c.w.Int(e.id)
		c.w.Int(e.at.Unix())
		c.w.Int(e.dur.Microseconds())
		c.w.Array(len(e.args))
		for _, a := range e.args {
			c.w.Bulk(a)
		}
		c.w.BulkString(e.addr)
		c.w.BulkString(e.name)
	}
}

func cmdSlowlogLen(c *client, _ [][]byte) {
	l := &c.srv.slowlog
	l.mu.Lock()
	n := len(l.entries)
	l.mu.Unlock()
	c.w.Int(int64(n))
}

func cmdSlowlogReset(c *client, _ [][]byte) {
	l := &c.srv.slowlog
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
	c.w.OK()
}

var slowlogHelp = []string{
	"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GET [<count>]",
	"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
	"    Entries are made of:",
	"    id, timestamp, time in microseconds, arguments array, client IP and port,",
	"    client name",
	"LEN",
	"    Return the length of the slowlog.",
	"RESET",
	"    Reset the slowlog.",
	"HELP",
	"    Prints this help.",
}

// LATENCY answers as a Redis whose latency monitor is disabled (its
// default, latency-monitor-threshold 0): nothing is ever recorded.

func cmdLatencyEmpty(c *client, _ [][]byte) { c.w.Array(0) }

func cmdLatencyReset(c *client, _ [][]byte) { c.w.Int(0) }

func cmdLatencyGraph(c *client, args [][]byte) {
	c.w.Error(fmt.Sprintf("ERR No samples available for event '%s'", args[2]))
}

func cmdLatencyDoctor(c *client, _ [][]byte) {
	c.w.Verbatim(`I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "CONFIG SET latency-monitor-threshold <milliseconds>." in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.` + "\n")
}

var latencyHelp = []string{
	"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"DOCTOR",
	"    Return a human readable latency analysis report.",
	"GRAPH <event>",
	"    Return an ASCII latency graph for the <event> class.",
	"HISTORY <event>",
	"    Return time-latency samples for the <event> class.",
	"LATEST",
	"    Return the latest latency samples for all events.",
	"RESET [<event> ...]",
	"    Reset latency data of one or more <event> classes.",
	"    (default: reset all data for all event classes)",
	"HELP",
	"    Prints this help.",
}

// cmdShutdown stops the node gracefully (Server.Shutdown: a leader hands
// over first). As in Redis, the connection closes without a reply; the
// node's Serve then returns nil, so `ordo node` exits 0. SAVE, NOSAVE, NOW
// and FORCE change nothing: every acknowledged message is already on
// disk, and there is no shutdown timeout to skip. ABORT finds no
// shutdown in progress, as on a Redis that is not waiting for replicas.
func cmdShutdown(c *client, args [][]byte) {
	var save, nosave, abort bool
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "save":
			save = true
		case "nosave":
			nosave = true
		case "now", "force":
		case "abort":
			abort = true
		default:
			c.w.Error("ERR syntax error")
			return
		}
	}
	if (save && nosave) || (abort && len(args) > 2) {
		c.w.Error("ERR syntax error")
		return
	}
	if abort {
		c.w.Error("ERR No shutdown in progress.")
		return
	}
	s := c.srv
	s.log.Logf(logging.Warn, "node", "SHUTDOWN requested by client id=%d addr=%s: shutting down", c.id, c.addr)
	c.quitting = true
	go func() {
		if err := s.Shutdown(); err != nil {
			s.log.Logf(logging.Warn, "node", "Shutdown: %v", err)
		}
	}()
}
