// Package chat is the demo guide's chat, as a terminal App: it shows
// every message of one channel in sequence order ("[seq=3] peer_2: Hello
// from peer 2!"), publishes what the person types, and answers /status,
// /help, /quit (and /connect for a client). It speaks only public Redis
// commands, through the clients library (CLIENT SETNAME, PUBLISH, XREAD
// BLOCK, STATUS), so it works against any node.
//
// Two uses:
//   - ordo chat: a client of a cluster reachable at several addresses;
//     when its node dies it says so, moves to the next address and
//     resumes after the last message it showed, with no gap and no
//     duplicate.
//   - ordo peer: the terminal of a node running in the same process. Its
//     node's election and membership log lines appear in the
//     conversation (LogFeed), node ids read peer_N, and /quit leaves the
//     cluster before the process exits.
package chat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/clients"
	"github.com/ordo-broker/ordo/clients/terminal"
)

// Config describes one chat terminal.
type Config struct {
	// Name is this terminal's sender name (CLIENT SETNAME): "peer_2",
	// "client_101".
	Name string
	// Channel is the conversation's channel ("chat").
	Channel string
	// Addrs are the nodes to use, in order of preference.
	Addrs []string
	// Client holds how to connect: user, password, TLS (its Name is
	// replaced by Name).
	Client clients.Options
	// Prefix names nodes on screen: "peer_" for peers, "node_" (the
	// default) for a client of ordo nodes.
	Prefix string
	// Leave, if set, makes this a peer's terminal: /quit calls it to leave
	// the cluster and exits only if it succeeds; it returns what to tell
	// the person. Without it /quit just exits, and /connect is offered.
	Leave func() (string, error)
	// Log, if set, shows the node's events (a peer's own node).
	Log *LogFeed
	// PublishTimeout bounds how long a line waits for a node to take it
	// (default 10s).
	PublishTimeout time.Duration
	// StatusEvery is how often the status bar is refreshed (default
	// 500ms).
	StatusEvery time.Duration
}

// Session is one chat terminal's state; it implements terminal.App.
type Session struct {
	cfg     Config
	fo      *clients.Failover
	lastSeq atomic.Uint64 // the last seq shown
	left    atomic.Bool
	online  atomic.Bool // Follow reaches a node

	mu         sync.Mutex
	out        terminal.Output // set by Run, for the failover's events
	pendingE   []string        // events before Run
	leader     *clients.Client // asked for the members' states (status.go)
	leaderAddr string
}

// New prepares a session; nothing connects before Run.
func New(cfg Config) *Session {
	if cfg.Channel == "" {
		cfg.Channel = "chat"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "node_"
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.StatusEvery == 0 {
		cfg.StatusEvery = 500 * time.Millisecond
	}
	s := &Session{cfg: cfg}
	opts := cfg.Client
	opts.Name = cfg.Name
	s.fo = clients.NewFailover(cfg.Addrs, opts, s.onEvent)
	return s
}

// Left reports whether /quit left the cluster (a peer then must not hand
// leadership over or rejoin: it is no longer a member).
func (s *Session) Left() bool { return s.left.Load() }

// LastSeq is the last sequence number shown.
func (s *Session) LastSeq() uint64 { return s.lastSeq.Load() }

// Run follows the channel from the start and refreshes the status bar
// until ctx ends.
func (s *Session) Run(ctx context.Context, out terminal.Output) {
	s.mu.Lock()
	s.out = out
	pending := s.pendingE
	s.pendingE = nil
	s.mu.Unlock()
	for _, e := range pending {
		out.Print(terminal.Event, e)
	}
	if s.cfg.Log != nil {
		s.cfg.Log.Attach(out)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.refreshStatus(ctx, out) }()
	out.Print(terminal.Notice, fmt.Sprintf("You are %s on channel %q. Type a message and press Enter; /help lists the commands.", s.cfg.Name, s.cfg.Channel))
	go func() {
		// go-redis does not interrupt a blocked read on cancel: closing
		// the connections does, so Follow and Publish return at once.
		<-ctx.Done()
		s.fo.Close()
	}()
	err := s.fo.Follow(ctx, s.cfg.Channel, s.lastSeq.Load(), func(m clients.Message) error {
		out.Print(terminal.Message, FormatMessage(m))
		s.lastSeq.Store(m.Seq)
		return nil
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, clients.ErrClosed) {
		out.Print(terminal.Problem, "Stopped following the conversation: "+err.Error())
	}
	wg.Wait()
}

// FormatMessage is a message as the guide shows it: "[seq=3] peer_2:
// Hello from peer 2!" (control characters quoted, so a message cannot
// move the cursor or recolour the screen).
func FormatMessage(m clients.Message) string {
	return fmt.Sprintf("[seq=%d] %s: %s", m.Seq, terminal.Printable(m.Sender), terminal.Printable(m.Payload))
}

// onEvent shows the failover client's moves between nodes.
func (s *Session) onEvent(e clients.Event) {
	var text string
	switch e.Kind {
	case clients.Connected:
		s.online.Store(true)
		if e.After == 0 {
			text = fmt.Sprintf("Connected to %s as %s", e.Addr, s.cfg.Name)
		} else {
			text = fmt.Sprintf("Connected to %s; resuming after seq=%d", e.Addr, e.After)
		}
	case clients.Lost:
		s.online.Store(false)
		text = fmt.Sprintf("Lost connection to %s (%v); trying %s", e.Addr, short(e.Err), e.Next)
	default:
		return
	}
	s.mu.Lock()
	out := s.out
	if out == nil {
		s.pendingE = append(s.pendingE, text)
	}
	s.mu.Unlock()
	if out != nil {
		out.Print(terminal.Event, text)
	}
}

// short is an error's text without go-redis's and net's long prefixes.
func short(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// Input publishes a typed line or runs a command.
func (s *Session) Input(ctx context.Context, line string, out terminal.Output) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return
	}
	if strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//") {
		s.command(ctx, strings.Fields(line), out)
		return
	}
	line = strings.TrimPrefix(line, "/") // "//x" publishes "/x"
	if !s.online.Load() {
		out.Print(terminal.Notice, fmt.Sprintf("No node answers right now: trying for up to %s to send %q...", s.cfg.PublishTimeout, line))
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	_, err := s.fo.Publish(pctx, s.cfg.Channel, line)
	switch {
	case err == nil || ctx.Err() != nil:
	case clients.NotDelivered(err):
		out.Print(terminal.Problem, fmt.Sprintf("Not sent (%s): %q was not delivered; type it again once a node answers.", short(err), line))
	default:
		out.Print(terminal.Problem, fmt.Sprintf("Sending failed (%s): %q may or may not have been delivered; if it was, it shows above with its seq.", short(err), line))
	}
}
