package broker

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/ordo-broker/ordo/consensus"
)

// CLUSTER: ordo's membership commands, all in this one place so that
// access control (admin rights) applies to them together. Joining is not
// a command: a node joins by starting with --seed.
//
//	CLUSTER MEMBERS          the members with role, state and lag
//	CLUSTER LEAVE            this node leaves (a leader hands over first), then exits
//	CLUSTER REMOVE <id>      remove a member (e.g. a dead one) by id
//	CLUSTER STEPDOWN [<id>]  the leader hands leadership to <id> (default: the most up-to-date voter)
//	CLUSTER ACCEPT-LOSS <indexes>  a leader halted on lost entries gives them up and goes on
//
// and Redis Cluster's topology commands for cluster-aware clients
// (cmd_cluster_slots.go).
var clusterHelp = []string{
	"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"MEMBERS",
	"    Return the members of the cluster: id, address, role (leader, follower),",
	"    state (voter, learner, unreachable) and lag (entries behind the leader;",
	"    known at the leader, -1 elsewhere).",
	"LEAVE",
	"    Leave the cluster gracefully: a leader hands its leadership over first;",
	"    replies once the removal is committed, then the node exits.",
	"REMOVE <id>",
	"    Remove member <id> (for instance a dead one) from the cluster.",
	"STEPDOWN [<id>]",
	"    Hand leadership over to member <id> (default: the most up-to-date voter).",
	"ACCEPT-LOSS <log-indexes>",
	"    On a leader halted on entries no member holds intact (STATUS shows",
	"    lost_log_indexes), give up exactly those (as STATUS writes them, e.g.",
	"    33,40-45): they stay gone under their numbers and sequencing resumes.",
	"INFO",
	"    Return information about the cluster.",
	"KEYSLOT <key>",
	"    Return the hash slot for <key>.",
	"MYID",
	"    Return the node id.",
	"NODES",
	"    Return cluster configuration seen by node. Output format:",
	"    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
	"SLOTS",
	"    Return information about slots range mappings. Each range is made of:",
	"    start, end, master and replicas IP addresses, ports and ids",
	"SHARDS",
	"    Return information about slot range mappings and the nodes associated with them.",
	"    (ordo is one shard: the leader is the master of all slots, the other",
	"    members are its replicas.)",
	"HELP",
	"    Print this help.",
}

func memberRole(m replica.Member) string {
	if m.Leader {
		return "leader"
	}
	return "follower"
}

func memberState(m replica.Member) string {
	switch {
	case m.Known && !m.Active:
		return "unreachable"
	case m.Voter:
		return "voter"
	}
	return "learner"
}

// memberLag is how far behind the leader a member is (-1: unknown here,
// only the leader knows).
func memberLag(m replica.Member) int64 {
	if !m.Known {
		return -1
	}
	return int64(m.Lag)
}

func cmdClusterMembers(c *client, _ [][]byte) {
	ms := c.srv.replica.Members()
	c.w.Array(len(ms))
	for _, m := range ms {
		c.w.Map(6)
		c.w.BulkString("id")
		c.w.Int(int64(m.ID))
		c.w.BulkString("addr")
		c.w.BulkString(m.Addr)
		c.w.BulkString("role")
		c.w.BulkString(memberRole(m))
		c.w.BulkString("state")
		c.w.BulkString(memberState(m))
		c.w.BulkString("lag")
		c.w.Int(memberLag(m))
		c.w.BulkString("self")
		c.w.Int(map[bool]int64{false: 0, true: 1}[m.Self])
	}
}

func cmdClusterLeave(c *client, _ [][]byte) {
	s := c.srv
	if err := s.replica.Leave(s.leaveTimeout()); err != nil {
		c.w.Error("ERR cannot leave: " + err.Error())
		return
	}
	s.log.Logf(logging.Info, "membership", "Left the cluster (CLUSTER LEAVE); exiting")
	c.w.OK()
	c.flush()
	c.quitting = true
	c.finish()
	go func() {
		select {
		case <-c.quit: // the +OK is out
		case <-time.After(time.Second):
		}
		s.Close()
	}()
}

func cmdClusterRemove(c *client, args [][]byte) {
	id, err := strconv.ParseUint(string(args[2]), 10, 64)
	if err != nil || id == 0 {
		c.w.Error("ERR invalid member id '" + sanitize(string(args[2])) + "'")
		return
	}
	if id == c.srv.cfg.ID {
		c.w.Error("ERR to remove this node use CLUSTER LEAVE (it hands leadership over first)")
		return
	}
	switch err := c.srv.replica.Remove(id, c.srv.leaveTimeout()); {
	case errors.Is(err, replica.ErrNotMember):
		c.w.Error("ERR no member with id " + strconv.FormatUint(id, 10))
	case err != nil:
		c.w.Error("ERR " + err.Error())
	default:
		c.w.OK()
	}
}

func cmdClusterStepdown(c *client, args [][]byte) {
	var to uint64
	if len(args) > 3 {
		c.w.Error("ERR wrong number of arguments for 'cluster|stepdown' command")
		return
	}
	if len(args) == 3 {
		var err error
		if to, err = strconv.ParseUint(string(args[2]), 10, 64); err != nil || to == 0 {
			c.w.Error("ERR invalid member id '" + sanitize(string(args[2])) + "'")
			return
		}
	}
	if !onLeader(c, "STEPDOWN") {
		return
	}
	if err := c.srv.replica.TransferLeadership(to, 2*c.srv.cfg.LeaderTimeout+time.Second); err != nil {
		c.w.Error("ERR " + err.Error())
		return
	}
	c.w.OK()
}

// onLeader answers with an error naming the leader unless this node
// leads (the subcommands only a leader can carry out).
func onLeader(c *client, sub string) bool {
	st, _ := c.srv.replica.Status()
	if uint64(st.Leader) == c.srv.cfg.ID {
		return true
	}
	c.w.Error("ERR this node is not the leader (node " + strconv.FormatUint(uint64(st.Leader), 10) + " is): send CLUSTER " + sub + " there")
	return false
}

func cmdClusterAcceptLoss(c *client, args [][]byte) {
	lost, ok := parseIndexRanges(string(args[2]))
	if !ok {
		c.w.Error("ERR invalid log indexes '" + sanitize(string(args[2])) + "': write them as STATUS lost_log_indexes does, e.g. 33,40-45")
		return
	}
	if !onLeader(c, "ACCEPT-LOSS") {
		return
	}
	switch err := c.srv.replica.AcceptLoss(lost); {
	case errors.Is(err, consensus.ErrNothingLost):
		c.w.Error("ERR no lost entries to accept: this leader is not halted on lost entries")
	case errors.Is(err, consensus.ErrLostMembership):
		c.w.Error("ERR a lost log index held a membership change, which cannot be given up: bring back an intact copy of a member's data directory")
	case errors.Is(err, consensus.ErrLossMismatch):
		now, _ := c.srv.replica.Status()
		c.w.Error("ERR the lost log indexes are " + indexRanges(now.Lost) + ", not " + sanitize(string(args[2])) + ": accept exactly those")
	case err != nil:
		c.w.Error("ERR " + err.Error())
	default:
		c.srv.log.Logf(logging.Error, "storage", "CLUSTER ACCEPT-LOSS %s by client id=%d addr=%s user=%s: the operator gave up these log indexes", indexRanges(lost), c.id, c.addr, c.userName())
		c.w.OK()
	}
}

// parseIndexRanges reads indexRanges' format ("33,40-45"): ascending,
// no overlaps, at most 1<<20 indexes.
func parseIndexRanges(s string) ([]uint64, bool) {
	var out []uint64
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil || a == 0 {
			return nil, false
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a {
				return nil, false
			}
		}
		if (len(out) > 0 && a <= out[len(out)-1]) || b-a >= 1<<20 || len(out)+int(b-a) >= 1<<20 {
			return nil, false
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, true
}
