package chat

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/clients/terminal"
)

// command runs /status, /help, /quit and (for a client) /connect.
func (s *Session) command(ctx context.Context, args []string, out terminal.Output) {
	out.Print(terminal.Notice, "> "+strings.Join(args, " "))
	switch args[0] {
	case "/help":
		for _, l := range s.help() {
			out.Print(terminal.Notice, l)
		}
	case "/status":
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := s.fo.Status(sctx)
		cancel()
		if err != nil {
			out.Print(terminal.Problem, fmt.Sprintf("STATUS from %s failed: %s", s.fo.Addr(), short(err)))
			return
		}
		for _, l := range s.statusLines(st, s.memberView(ctx, st)) {
			out.Print(terminal.Notice, l)
		}
	case "/quit":
		s.quit(out)
	case "/connect":
		if s.cfg.Leave != nil {
			out.Print(terminal.Problem, "A peer's terminal belongs to its own node: /connect is for ordo chat.")
			return
		}
		if len(args) != 2 {
			out.Print(terminal.Problem, "Usage: /connect HOST:PORT")
			return
		}
		if _, _, err := net.SplitHostPort(args[1]); err != nil {
			out.Print(terminal.Problem, fmt.Sprintf("Not an address (want HOST:PORT): %v", err))
			return
		}
		out.Print(terminal.Event, fmt.Sprintf("Moving to %s; resuming after seq=%d", args[1], s.LastSeq()))
		s.fo.Connect(args[1])
	default:
		out.Print(terminal.Problem, fmt.Sprintf("Unknown command %s: /help lists the commands (start a message with // to send a line beginning with /).", args[0]))
	}
}

func (s *Session) help() []string {
	h := []string{
		"Commands:",
		"  /status          this node's role, leader, term, members and last sequence number",
		"  /help            this list",
	}
	if s.cfg.Leave != nil {
		h = append(h,
			"  /quit            leave the cluster (a leader hands over first), then exit",
			"  Ctrl+C           stop without leaving: a restart with the same data dir rejoins as a member",
		)
	} else {
		h = append(h,
			"  /connect H:P     move to the node at H:P, resuming where the conversation is",
			"  /quit, Ctrl+C    exit",
		)
	}
	return append(h,
		"  PgUp/PgDn, Up/Down scroll the conversation; Ctrl+End goes back to the newest line",
		"Anything else is published on "+strconv.Quote(s.cfg.Channel)+" (a line starting with / : type //).",
	)
}

func (s *Session) quit(out terminal.Output) {
	if s.cfg.Leave == nil {
		out.Print(terminal.Notice, "Bye.")
		out.Quit()
		return
	}
	out.Print(terminal.Event, "Leaving the cluster (a leader hands its leadership over first)...")
	msg, err := s.cfg.Leave()
	if err != nil {
		out.Print(terminal.Problem, "Could not leave: "+err.Error()+". Still a member; /quit again, or Ctrl+C to stop without leaving.")
		return
	}
	s.left.Store(true)
	out.Print(terminal.Event, msg)
	out.Quit()
}
