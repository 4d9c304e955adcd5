package chat

import (
	"context"
	"fmt"
	"net"
	"sort"
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
		for _, l := range s.statusLines(st) {
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

// member is one member_<id> line of STATUS.
type member struct {
	id                     int
	addr, role, state, lag string
}

func members(st map[string]string) []member {
	var ms []member
	for k, v := range st {
		id, err := strconv.Atoi(strings.TrimPrefix(k, "member_"))
		if !strings.HasPrefix(k, "member_") || err != nil {
			continue
		}
		m := member{id: id}
		for _, f := range strings.Fields(v) {
			key, val, _ := strings.Cut(f, "=")
			switch key {
			case "addr":
				m.addr = val
			case "role":
				m.role = val
			case "state":
				m.state = val
			case "lag":
				m.lag = val
			}
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}

// name is a node id as the person knows it: peer_3 or node_3.
func (s *Session) name(id string) string {
	if id == "" || id == "0" {
		return "none"
	}
	return s.cfg.Prefix + id
}

// statusLines is /status: STATUS in the guide's words.
func (s *Session) statusLines(st map[string]string) []string {
	ls := []string{
		fmt.Sprintf("Node: %s at %s", s.name(st["node_id"]), s.fo.Addr()),
		"Role: " + strings.ToUpper(st["role"]),
	}
	leader := "Leader: " + s.name(st["leader_id"])
	if a := st["leader_addr"]; a != "" && st["leader_id"] != "0" {
		leader += " (" + a + ")"
	}
	ls = append(ls, leader,
		"Term: "+st["term"],
		fmt.Sprintf("Last seq: %s (committed: %s; shown here: %d)", st["last_seq"], st["commit_seq"], s.LastSeq()),
		"Cluster: "+st["cluster_id"],
	)
	ms := members(st)
	ls = append(ls, fmt.Sprintf("Members (%d):", len(ms)))
	for _, m := range ms {
		self := ""
		if strconv.Itoa(m.id) == st["node_id"] {
			self = "  (this node)"
		}
		lag := ""
		if m.lag != "" && m.lag != "-1" {
			lag = "  lag " + m.lag
		}
		ls = append(ls, fmt.Sprintf("  %-8s %-21s %-8s %-11s%s%s", s.name(strconv.Itoa(m.id)), m.addr, m.role, m.state, lag, self))
	}
	return ls
}

// statusBar is the one-line summary under the conversation.
func (s *Session) statusBar(st map[string]string) string {
	ms := members(st)
	up := 0
	for _, m := range ms {
		if m.state != "unreachable" {
			up++
		}
	}
	bar := fmt.Sprintf("%s | term %s | leader %s | %d/%d members up | seq %d",
		strings.ToUpper(st["role"]), st["term"], s.name(st["leader_id"]), up, len(ms), s.LastSeq())
	if s.cfg.Leave == nil {
		bar = fmt.Sprintf("%s (%s) %s", s.fo.Addr(), s.name(st["node_id"]), bar)
	}
	return bar
}

// refreshStatus keeps the status bar current until ctx ends.
func (s *Session) refreshStatus(ctx context.Context, out terminal.Output) {
	t := time.NewTicker(s.cfg.StatusEvery)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, max(s.cfg.StatusEvery, time.Second))
		st, err := s.fo.Status(sctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			out.SetStatus(fmt.Sprintf("%s: no answer (%s) | seq %d", s.fo.Addr(), short(err), s.LastSeq()))
		default:
			out.SetStatus(s.statusBar(st))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
