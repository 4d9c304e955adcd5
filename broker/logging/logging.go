// Package logging formats ordo's log lines: the demo guide's
// human-readable lines ("2024-10-21 12:34:56,789 - storage.1 - INFO - Loaded 10
// messages from log") or JSON, and names each line's component after the
// node ("storage.1").
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
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
// or one JSON object per line (format "json").
// level may be a *slog.LevelVar, to change it while the node runs.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(&lineHandler{w: w, level: level, mu: &sync.Mutex{}})
}

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
	component := "node"
	var extra strings.Builder
	add := func(a slog.Attr) bool {
		if a.Key == "component" {
			component = a.Value.String()
		} else {
			fmt.Fprintf(&extra, " %s=%v", a.Key, a.Value.Any())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
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
// "storage.<id>". The zero Node discards everything.
type Node struct {
	L  *slog.Logger
	ID uint64
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
	n.L.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", fmt.Sprintf("%s.%d", component, n.ID))
}

// Raw logs a line whose component is already qualified (the consensus
// core names its components "election.2" itself).
func (n Node) Raw(level slog.Level, component, format string, args ...any) {
	if !n.Enabled(level) {
		return
	}
	n.L.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", component)
}
