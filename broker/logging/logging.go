// Package logging formats ordo's log lines: the demo guide's
// human-readable lines ("2024-10-21 12:34:56,789 - storage.1 - INFO - Loaded 10
// messages from log") or JSON, one object per line, whose fields a log
// pipeline can filter on without parsing the text:
//
//	{"time":"2024-10-21T12:34:56.789Z","level":"INFO","msg":"Loaded 10 messages from log","component":"storage","node":1,"term":3}
//
// component and node are on every line of a node; term (the node's
// current term, as of its last consensus step) once it is known; seq on
// lines about one message. The text format shows component and node as
// the guide's "storage.1" and leaves the other fields out, so its lines
// stay exactly the guide's.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log levels as the demo guide prints them.
const (
	Debug = slog.LevelDebug
	Info  = slog.LevelInfo
	Warn  = slog.LevelWarn
	Error = slog.LevelError
)

// NewLogger returns a slog logger writing either the demo guide's
// human-readable lines,
//
//	2024-10-21 12:34:56,789 - storage.1 - INFO - Loaded 10 messages from log
//
// or one JSON object per line (format "json"), its time in UTC with
// milliseconds.
// level may be a *slog.LevelVar, to change it while the node runs.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: jsonTime}))
	}
	return slog.New(&lineHandler{w: w, level: level, mu: &sync.Mutex{}})
}

// JSONTimeFormat is the time of a JSON line: RFC 3339 in UTC, with
// milliseconds, the precision of the text format.
const JSONTimeFormat = "2006-01-02T15:04:05.000Z07:00"

func jsonTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(JSONTimeFormat))
	}
	return a
}

// Field names of a node's lines.
const (
	KeyComponent = "component"
	KeyNode      = "node"
	KeyTerm      = "term"
	KeySeq       = "seq"
)

// ParseLevel accepts debug, info, warn(ing) and error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return Debug, nil
	case "", "info":
		return Info, nil
	case "warn", "warning":
		return Warn, nil
	case "error":
		return Error, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

type lineHandler struct {
	w     io.Writer
	level slog.Leveler
	mu    *sync.Mutex
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	component, node := "node", ""
	var extra strings.Builder
	add := func(a slog.Attr) bool {
		switch a.Key {
		case KeyComponent:
			component = a.Value.String()
		case KeyNode:
			node = a.Value.String()
		case KeyTerm, KeySeq:
			// JSON-only: the guide's lines say it in their text when it matters.
		default:
			fmt.Fprintf(&extra, " %s=%v", a.Key, a.Value.Any())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if node != "" {
		component += "." + node
	}
	level := r.Level.String()
	if r.Level == Warn {
		level = "WARNING"
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	line := fmt.Sprintf("%s - %s - %s - %s%s\n", t.Format("2006-01-02 15:04:05,000"), component, level, r.Message, extra.String())
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// Node logs the lines of one node: a component "storage" is printed as
// "storage.<id>". The zero Node discards everything. Copies share the
// term set by SetTerm (on a Node made by NewNode).
type Node struct {
	L    *slog.Logger
	ID   uint64
	term *atomic.Uint64
	seq  uint64
}

// NewNode returns the logger of node id, with a term that SetTerm keeps
// current for every copy.
func NewNode(l *slog.Logger, id uint64) Node {
	return Node{L: l, ID: id, term: new(atomic.Uint64)}
}

// SetTerm records the node's current term for the term field of later
// lines (JSON only). A Node not made by NewNode ignores it.
func (n Node) SetTerm(term uint64) {
	if n.term != nil {
		n.term.Store(term)
	}
}

// WithSeq returns a Node whose lines carry seq, the sequence number of
// the message they are about (JSON only).
func (n Node) WithSeq(seq uint64) Node {
	n.seq = seq
	return n
}

// Enabled reports whether lines at level are written.
func (n Node) Enabled(level slog.Level) bool {
	return n.L != nil && n.L.Enabled(context.Background(), level)
}

// Logf logs a line for a component of this node, formatting like the demo
// guide.
func (n Node) Logf(level slog.Level, component, format string, args ...any) {
	if !n.Enabled(level) {
		return
	}
	n.log(level, component, true, fmt.Sprintf(format, args...))
}

// Raw logs a line whose component is already qualified (the consensus
// core names its components "election.2" itself); a qualifier that is
// this node's id becomes the node field.
func (n Node) Raw(level slog.Level, component, format string, args ...any) {
	if !n.Enabled(level) {
		return
	}
	withNode := false
	if base, id, ok := strings.Cut(component, "."); ok && id == strconv.FormatUint(n.ID, 10) {
		component, withNode = base, true
	}
	n.log(level, component, withNode, fmt.Sprintf(format, args...))
}

func (n Node) log(level slog.Level, component string, withNode bool, msg string) {
	attrs := make([]slog.Attr, 0, 4)
	attrs = append(attrs, slog.String(KeyComponent, component))
	if withNode {
		attrs = append(attrs, slog.Uint64(KeyNode, n.ID))
	}
	if n.term != nil {
		if t := n.term.Load(); t > 0 {
			attrs = append(attrs, slog.Uint64(KeyTerm, t))
		}
	}
	if n.seq > 0 {
		attrs = append(attrs, slog.Uint64(KeySeq, n.seq))
	}
	n.L.LogAttrs(context.Background(), level, msg, attrs...)
}
