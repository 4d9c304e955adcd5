package chat

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/ordo-broker/ordo/clients/terminal"
)

// LogFeed is the writer a peer gives its node's logger
// (logging.NewLogger(feed, "text", level)): every line goes to the full
// log, and the lines a person running the demo watches for (elections,
// joins, leaves, recovery, errors) also appear in the conversation, with
// node_N read as peer_N ("* New coordinator: peer_3, term=3").
type LogFeed struct {
	mu      sync.Mutex
	full    io.Writer
	prefix  string
	out     terminal.Output
	pending []string // events logged before a terminal was attached
	partial []byte   // a line not yet ended by '\n'
}

// eventPrefixes are the log messages shown in the conversation: the
// guide's election lines, membership and recovery.
var eventPrefixes = []string{
	"Leader timeout!",
	"Starting election for term",
	"Became LEADER for term",
	"New coordinator:",
	"Attempting to join via",
	"Joined cluster",
	"Sent JOIN_ACK",
	"Join refused",
	"Leaving the cluster",
	"Left the cluster",
	"This node was removed",
	"Loaded ",
}

// maxPending bounds the events kept until a terminal is attached.
const maxPending = 200

// NewLogFeed writes the full log to full (a file, stderr) and shows
// events with node ids written prefix+N ("peer_").
func NewLogFeed(full io.Writer, prefix string) *LogFeed {
	if full == nil {
		full = io.Discard
	}
	return &LogFeed{full: full, prefix: prefix}
}

var nodeID = regexp.MustCompile(`\bnode_(\d+)`)

// Write implements io.Writer for the node's logger (which writes whole
// lines; partial writes are joined anyway).
func (f *LogFeed) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.full.Write(b)
	f.partial = append(f.partial, b...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			break
		}
		if e, ok := f.event(string(f.partial[:i])); ok {
			f.showLocked(e)
		}
		f.partial = f.partial[i+1:]
	}
	if len(f.partial) == 0 {
		f.partial = nil // let a large buffer go
	}
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return len(b), err
}

// event picks a line the person should see out of the log's text format
// "<time> - <component> - <LEVEL> - <message>".
func (f *LogFeed) event(line string) (string, bool) {
	parts := strings.SplitN(line, " - ", 4)
	if len(parts) != 4 {
		return "", false
	}
	level, msg := parts[2], parts[3]
	show := level == "ERROR" || strings.Contains(msg, " removed; voters now")
	for _, p := range eventPrefixes {
		show = show || strings.HasPrefix(msg, p)
	}
	if !show || strings.HasPrefix(msg, "Loaded 0 ") {
		return "", false
	}
	if f.prefix != "" {
		msg = nodeID.ReplaceAllString(msg, f.prefix+"$1")
	}
	return "* " + terminal.Printable(msg), true
}

func (f *LogFeed) showLocked(e string) {
	if f.out != nil {
		f.out.Print(terminal.Event, e)
		return
	}
	if len(f.pending) == maxPending {
		f.pending = f.pending[1:]
	}
	f.pending = append(f.pending, e)
}

// Attach shows events on out from now on, starting with those logged
// before.
func (f *LogFeed) Attach(out terminal.Output) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.pending {
		out.Print(terminal.Event, e)
	}
	f.pending = nil
	f.out = out
}
