package broker

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/broker/replica"
)

// Redis Cluster's topology commands (CLUSTER SLOTS, SHARDS, NODES, INFO,
// MYID, KEYSLOT), so that cluster-aware clients (go-redis ClusterClient,
// redis-py RedisCluster, redis-cli -c) discover every member and follow
// leader changes by themselves. ordo is one shard: the leader is the master
// of all 16384 slots and every other member is its replica. No command is
// ever answered with MOVED or ASK (every node serves every channel and
// forwards publishes to the leader), so a client whose slot map is stale
// still works and can never loop between nodes.
//
// While no leader is known here (an election is running, or this node is
// cut off) the node names itself the master. Redis would keep naming the
// last master it knew; for ordo that is usually the node that just died,
// and clients would keep dialling it until the election ends: go-redis
// and redis-py reload the map from one node and go where it says. The
// node answering is reachable by the client, takes publishes (parking or
// failing them with CLUSTERDOWN until a leader exists, which both clients
// retry) and serves subscriptions. CLUSTER INFO says cluster_state:fail
// meanwhile, for people and tools that look.

// clusterNode is one member as Redis Cluster's commands describe it.
type clusterNode struct {
	name   string // 40 hex digits (Redis's node id)
	host   string
	port   int
	master bool
	self   bool
	failed bool   // unreachable, as far as the leader knows
	offset uint64 // replication offset: the sequence number it has reached (about: lag counts log entries)
}

// clusterView is the topology one CLUSTER reply shows.
type clusterView struct {
	ok    bool   // a leader is known (else this node stands in as master)
	epoch uint64 // the consensus term, Redis's epochs
	nodes []clusterNode
}

// clusterNodeName derives Redis's 40-hex-digit node id from ordo's: stable
// for a member of one cluster, different across clusters.
func clusterNodeName(clusterID string, id uint64) string {
	h := sha1.Sum([]byte(clusterID + "/" + strconv.FormatUint(id, 10)))
	return hex.EncodeToString(h[:])
}

// endpoint splits a member address. Like Redis, a node that does not know
// its own address (one node listening on a wildcard, nothing advertised)
// reports an empty host: go-redis and redis-py then use the host they
// dialled, which is what reaches it (a local address might not, e.g.
// behind a port mapping).
func endpoint(addr string, port int) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", port
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		h = ""
	}
	if n, err := strconv.Atoi(p); err == nil && n > 0 {
		port = n
	}
	return h, port
}

func (c *client) clusterView() clusterView {
	s := c.srv
	st, _ := s.replica.Status()
	ms := s.replica.Members()
	cid := s.replica.ClusterID()
	v := clusterView{epoch: st.Term}
	hasSelf := false
	for _, m := range ms {
		v.ok = v.ok || m.Leader
		hasSelf = hasSelf || m.Self
	}
	if !hasSelf { // joining: not in the configuration yet
		ms = append(ms, replica.Member{ID: s.cfg.ID, Self: true, Addr: s.replica.Addr(s.cfg.ID)})
	}
	var master clusterNode
	var replicas []clusterNode
	for _, m := range ms {
		n := clusterNode{
			name:   clusterNodeName(cid, m.ID),
			self:   m.Self,
			master: m.Leader || (!v.ok && m.Self),
			failed: m.Known && !m.Active,
			offset: st.CommitSeq,
		}
		if m.Known {
			n.offset -= min(m.Lag, st.CommitSeq)
		}
		port := 0
		if m.Self { // the port the client reached, should the address lack one
			_, port = endpoint(c.laddr, 0)
		}
		n.host, n.port = endpoint(m.Addr, port)
		if n.master {
			master = n
		} else {
			replicas = append(replicas, n)
		}
	}
	v.nodes = append([]clusterNode{master}, replicas...)
	return v
}

func cmdClusterSlots(c *client, _ [][]byte) {
	v := c.clusterView()
	var live []clusterNode
	for _, n := range v.nodes {
		if n.master || !n.failed { // Redis leaves failed replicas out
			live = append(live, n)
		}
	}
	c.w.Array(1)
	c.w.Array(2 + len(live))
	c.w.Int(0)
	c.w.Int(clusterSlots - 1)
	for _, n := range live {
		c.w.Array(4)
		c.w.BulkString(n.host)
		c.w.Int(int64(n.port))
		c.w.BulkString(n.name)
		c.w.Map(0) // further endpoints: none
	}
}

func cmdClusterShards(c *client, _ [][]byte) {
	v := c.clusterView()
	c.w.Array(1)
	c.w.Map(2)
	c.w.BulkString("slots")
	c.w.Array(2)
	c.w.Int(0)
	c.w.Int(clusterSlots - 1)
	c.w.BulkString("nodes")
	c.w.Array(len(v.nodes))
	for _, n := range v.nodes {
		role, health := "replica", "online"
		if n.master {
			role = "master"
		}
		if n.failed {
			health = "failed"
		}
		c.w.Map(7)
		c.w.BulkString("id")
		c.w.BulkString(n.name)
		c.w.BulkString("port")
		c.w.Int(int64(n.port))
		c.w.BulkString("ip")
		c.w.BulkString(n.host)
		c.w.BulkString("endpoint")
		c.w.BulkString(n.host)
		c.w.BulkString("role")
		c.w.BulkString(role)
		c.w.BulkString("replication-offset")
		c.w.Int(int64(n.offset))
		c.w.BulkString("health")
		c.w.BulkString(health)
	}
}

// cmdClusterNodes writes Redis's line per node: id ip:port@cport flags
// master ping-sent pong-recv config-epoch link-state slots. The cluster
// bus port is the client port: ordo's peer links share it.
func cmdClusterNodes(c *client, _ [][]byte) {
	v := c.clusterView()
	now := time.Now().UnixMilli()
	var b strings.Builder
	for _, n := range v.nodes {
		var flags []string
		if n.self {
			flags = append(flags, "myself")
		}
		masterID, slots := "-", " 0-16383"
		if n.master {
			flags = append(flags, "master")
		} else {
			flags = append(flags, "slave")
			masterID, slots = v.nodes[0].name, ""
		}
		ping, pong, link := int64(0), now, "connected"
		if n.failed {
			flags = append(flags, "fail")
			ping, pong, link = now, 0, "disconnected"
		}
		fmt.Fprintf(&b, "%s %s:%d@%d %s %s %d %d %d %s%s\n", n.name, n.host, n.port, n.port,
			strings.Join(flags, ","), masterID, ping, pong, v.epoch, link, slots)
	}
	c.w.Verbatim(b.String())
}

func cmdClusterInfo(c *client, _ [][]byte) {
	v := c.clusterView()
	state, ok, pfail := "ok", clusterSlots, 0
	if !v.ok {
		state, ok, pfail = "fail", 0, clusterSlots
	}
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	line("cluster_state", state)
	line("cluster_slots_assigned", clusterSlots)
	line("cluster_slots_ok", ok)
	line("cluster_slots_pfail", pfail)
	line("cluster_slots_fail", 0)
	line("cluster_known_nodes", len(v.nodes))
	line("cluster_size", 1)
	line("cluster_current_epoch", v.epoch)
	line("cluster_my_epoch", v.epoch)
	line("cluster_stats_messages_sent", 0)
	line("cluster_stats_messages_received", 0)
	line("total_cluster_links_buffer_limit_exceeded", 0)
	c.w.Verbatim(b.String())
}

func cmdClusterMyID(c *client, _ [][]byte) {
	c.w.BulkString(clusterNodeName(c.srv.replica.ClusterID(), c.srv.cfg.ID))
}

func cmdClusterKeyslot(c *client, args [][]byte) { c.w.Int(int64(keySlot(args[2]))) }

// cmdClusterOK answers READONLY, READWRITE and ASKING, which cluster
// clients send to replicas or after an ASK: every ordo node serves every
// command, so there is no mode to switch.
func cmdClusterOK(c *client, _ [][]byte) { c.w.OK() }

// staleSub is a CLUSTER subcommand with Redis's "stale" flag (it answers
// whatever the node's state).
func staleSub(name string, arity int, fn func(*client, [][]byte)) *command {
	return &command{name: name, arity: arity, fn: fn, cmdFlags: []string{"stale"}}
}
