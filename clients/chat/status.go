package chat

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/clients"
	"github.com/ordo-broker/ordo/clients/terminal"
)

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

// view is the membership as some node sees it.
type view struct {
	members []member
	// leader names the leader whose STATUS this is when the node in use
	// follows ("" if it is the node's own). Only a leader knows which
	// members answer: a follower reports every member as a voter.
	leader string
	// live is whether the view knows which members answer.
	live bool
}

// memberView returns the members as the leader sees them: the node's own
// STATUS when it leads, else the leader's, asked at leader_addr; if the
// leader cannot be asked, the node's own view (without liveness).
func (s *Session) memberView(ctx context.Context, st map[string]string) view {
	if st["role"] == "leader" {
		return view{members: members(st), live: true}
	}
	addr := st["leader_addr"]
	if addr == "" || st["leader_id"] == "0" {
		return view{members: members(st)}
	}
	s.mu.Lock()
	if s.leaderAddr != addr {
		if s.leader != nil {
			s.leader.Close()
		}
		s.leader = clients.NewWithOptions(addr, clients.Options{NoRetry: true, DialTimeout: time.Second,
			Username: s.cfg.Client.Username, Password: s.cfg.Client.Password, TLSConfig: s.cfg.Client.TLSConfig})
		s.leaderAddr = addr
	}
	c := s.leader
	s.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	lst, err := c.Status(lctx)
	if err != nil || lst["role"] != "leader" {
		return view{members: members(st)}
	}
	return view{members: members(lst), leader: s.name(lst["node_id"]), live: true}
}

// closeLeader drops the connection to the leader.
func (s *Session) closeLeader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leader != nil {
		s.leader.Close()
		s.leader, s.leaderAddr = nil, ""
	}
}

// name is a node id as the person knows it: peer_3 or node_3.
func (s *Session) name(id string) string {
	if id == "" || id == "0" {
		return "none"
	}
	return s.cfg.Prefix + id
}

// statusLines is /status: STATUS in the guide's words, the members'
// states as the leader sees them.
func (s *Session) statusLines(st map[string]string, v view) []string {
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
		fmt.Sprintf("Members (%d):", len(v.members)),
	)
	for _, m := range v.members {
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
	switch {
	case v.leader != "":
		ls = append(ls, "  (states as the leader "+v.leader+" sees them)")
	case !v.live:
		ls = append(ls, "  (only the leader knows which members answer, and it could not be asked)")
	}
	return ls
}

// statusBar is the one-line summary under the conversation.
func (s *Session) statusBar(st map[string]string, v view) string {
	up := 0
	for _, m := range v.members {
		if m.state != "unreachable" {
			up++
		}
	}
	ms := fmt.Sprintf("%d/%d members up", up, len(v.members))
	if !v.live {
		ms = fmt.Sprintf("%d members", len(v.members))
	}
	bar := fmt.Sprintf("%s | term %s | leader %s | %s | seq %d",
		strings.ToUpper(st["role"]), st["term"], s.name(st["leader_id"]), ms, s.LastSeq())
	if s.cfg.Leave == nil {
		bar = fmt.Sprintf("%s (%s) %s", s.fo.Addr(), s.name(st["node_id"]), bar)
	}
	return bar
}

// refreshStatus keeps the status bar current until ctx ends.
func (s *Session) refreshStatus(ctx context.Context, out terminal.Output) {
	defer s.closeLeader()
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
			out.SetStatus(s.statusBar(st, s.memberView(ctx, st)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
