package broker

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/consensus"
)

// cmdStatus is ordo's STATUS: the node's place in the cluster as field /
// value pairs (a flat array in RESP2, a map in RESP3).
func cmdStatus(c *client, _ [][]byte) {
	kv := c.srv.statusFields()
	c.w.Map(len(kv) / 2)
	for _, s := range kv {
		c.w.BulkString(s)
	}
}

func (s *Server) peerAddr(id consensus.NodeID) string {
	if id == 0 {
		return ""
	}
	if a := s.replica.Addr(uint64(id)); a != "" {
		return a
	}
	if uint64(id) == s.cfg.ID {
		if a := s.Addr(); a != nil {
			return a.String()
		}
	}
	return ""
}

func (s *Server) statusFields() []string {
	st, broken := s.replica.Status()
	role := st.Role.String()
	if broken != nil {
		role = "failed"
	}
	kv := []string{
		"node_id", strconv.FormatUint(s.cfg.ID, 10),
		"role", role,
		"term", strconv.FormatUint(st.Term, 10),
		"leader_id", strconv.FormatUint(uint64(st.Leader), 10),
		"leader_addr", s.peerAddr(st.Leader),
		"last_seq", strconv.FormatUint(st.LastSeq, 10),
		"commit_seq", strconv.FormatUint(st.CommitSeq, 10),
		"cluster_id", s.replica.ClusterID(),
	}
	members := s.replica.Members()
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, strconv.FormatUint(m.ID, 10))
	}
	kv = append(kv, "members", strings.Join(ids, ","))
	for _, m := range members {
		kv = append(kv, fmt.Sprintf("member_%d", m.ID),
			fmt.Sprintf("addr=%s role=%s state=%s lag=%d", m.Addr, memberRole(m), memberState(m), memberLag(m)))
	}
	if broken != nil {
		kv = append(kv, "storage_error", broken.Error())
	}
	// Storage faults (see README "Storage faults"): shown only while
	// there are any, so a healthy node's STATUS stays as it was.
	if st.Faulty > 0 {
		kv = append(kv, "damaged_positions", strconv.Itoa(st.Faulty))
	}
	if len(st.Lost) > 0 {
		kv = append(kv, "lost_log_indexes", indexRanges(st.Lost))
	}
	return kv
}

// indexRanges writes sorted log indexes compactly: "33,40-45".
func indexRanges(is []uint64) string {
	var b strings.Builder
	for i := 0; i < len(is); {
		j := i
		for j+1 < len(is) && is[j+1] == is[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(is[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(is[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

// infoSections renders INFO in Redis's format; extension fields are
// prefixed ordo_ or live in ordo's own "cluster" section.
func (s *Server) infoSection(name string) string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	uptime := int64(time.Since(s.started).Seconds())
	switch name {
	case "server":
		b.WriteString("# Server\r\n")
		line("redis_version", redisVersion)
		line("ordo_version", Version)
		line("redis_mode", "standalone")
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.IntSize)
		line("go_version", runtime.Version())
		line("process_id", os.Getpid())
		line("run_id", s.runID)
		line("tcp_port", s.cfg.infoPort())
		line("uptime_in_seconds", uptime)
		line("uptime_in_days", uptime/86400)
		line("executable", executable())
	case "clients":
		cs := s.allClients()
		pubsub := 0
		for _, c := range cs {
			if c.subCount.Load() > 0 {
				pubsub++
			}
		}
		b.WriteString("# Clients\r\n")
		line("connected_clients", len(cs))
		line("maxclients", s.limits.Load().MaxClients)
		line("blocked_clients", 0)
		line("pubsub_clients", pubsub)
	case "memory":
		memorySection(&b)
	case "cpu":
		cpuSection(&b)
	case "stats":
		ch, pat, sh := s.reg.sizes()
		b.WriteString("# Stats\r\n")
		line("total_connections_received", s.stats.connections.Load())
		line("total_commands_processed", s.stats.commands.Load())
		line("total_net_input_bytes", s.stats.netInputBytes.Load())
		line("total_net_output_bytes", s.stats.netOutputBytes.Load())
		line("rejected_connections", s.stats.rejected.Load())
		line("client_output_buffer_limit_disconnections", s.stats.outputLimitDisconnects.Load())
		line("pubsub_channels", ch)
		line("pubsub_patterns", pat)
		line("pubsubshard_channels", sh)
		rs := s.replica.Stats()
		line("ordo_messages_delivered", rs.MessagesApplied.Load())
		line("ordo_publishes_acknowledged", rs.PublishesAcked.Load())
		line("ordo_publish_errors", rs.PublishErrors.Load())
		line("ordo_pending_request_bytes", s.reqBudget.inUse())
		line("ordo_request_budget_waits", s.reqBudget.waited.Load())
		line("ordo_request_budget_refusals", s.reqBudget.refused.Load())
	case "persistence":
		st, broken := s.replica.Status()
		log := s.replica.Store()
		rs := s.replica.Stats()
		b.WriteString("# Persistence\r\n")
		line("loading", 0)
		line("aof_enabled", 1)
		fsync := "always"
		if s.cfg.NoSync {
			fsync = "no"
		}
		line("ordo_fsync", fsync)
		line("ordo_data_dir", s.cfg.DataDir)
		line("ordo_log_first_seq", log.SeqOf(log.FirstIndex()))
		line("ordo_log_last_seq", st.LastSeq)
		line("ordo_log_bytes", log.Size())
		writes := rs.LogWrites.Load()
		line("ordo_log_writes", writes)
		line("ordo_log_entries_written", rs.LogEntriesWritten.Load())
		if writes > 0 {
			line("ordo_log_avg_batch", fmt.Sprintf("%.1f", float64(rs.LogEntriesWritten.Load())/float64(writes)))
			line("ordo_log_avg_write_us", rs.LogWriteNanos.Load()/writes/1000)
		}
		status := "ok"
		if broken != nil {
			status = "err"
		}
		line("aof_last_write_status", status)
	case "replication":
		st, _ := s.replica.Status()
		b.WriteString("# Replication\r\n")
		if st.Role == consensus.Leader {
			line("role", "master")
			line("connected_slaves", max(len(st.Members)-1, 0))
		} else {
			line("role", "slave")
			addr := s.peerAddr(st.Leader)
			host, port := addr, ""
			if i := strings.LastIndexByte(addr, ':'); i >= 0 {
				host, port = addr[:i], addr[i+1:]
			}
			line("master_host", host)
			line("master_port", port)
			up := "down"
			if st.Leader != 0 {
				up = "up"
			}
			line("master_link_status", up)
		}
		line("master_repl_offset", st.CommitSeq)
	case "cluster":
		b.WriteString("# Cluster\r\n")
		// 1: ordo answers Redis Cluster's topology commands, and redis-py's
		// RedisCluster refuses a node that says 0.
		line("cluster_enabled", 1)
		kv := s.statusFields()
		for i := 0; i+1 < len(kv); i += 2 {
			line("ordo_"+kv[i], kv[i+1])
		}
	case "keyspace":
		b.WriteString("# Keyspace\r\n")
	default:
		return ""
	}
	return b.String()
}

var infoDefault = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"}

func cmdInfo(c *client, args [][]byte) {
	want := infoDefault
	if len(args) > 1 {
		want = nil
		for _, a := range args[1:] {
			switch n := strings.ToLower(string(a)); n {
			case "all", "everything", "default":
				want = append(want, infoDefault...)
			default:
				want = append(want, n)
			}
		}
	}
	var parts []string
	seen := map[string]bool{}
	for _, n := range want {
		if seen[n] {
			continue
		}
		seen[n] = true
		if s := c.srv.infoSection(n); s != "" {
			parts = append(parts, s)
		}
	}
	c.w.Verbatim(strings.Join(parts, "\r\n"))
}

func executable() string {
	p, _ := os.Executable()
	return p
}

// configParams are what CONFIG GET reports: every option of the Options
// table that names a parameter (Redis names where Redis has the setting,
// ordo- names for extensions), plus Redis's fixed answers that clients
// and tools probe for.
func (s *Server) configParams() map[string]string {
	s.cfgMu.RLock()
	cfg := s.cfg
	s.cfgMu.RUnlock()
	l := cfg.Limits
	params := map[string]string{
		// Composed here because Redis reports the output buffer limits
		// (normal_output_buffer.*, pubsub_output_buffer.*) as one parameter.
		"client-output-buffer-limit": outputLimitsParam(l),
		"appendonly":                 "yes",
		"save":                       "",
		"databases":                  "16",
		"timeout":                    "0",
		"cluster-enabled":            "yes",
	}
	for _, o := range options {
		if o.get == nil {
			continue
		}
		for _, name := range o.ConfigGet {
			params[name] = o.get(&cfg)
		}
	}
	return params
}

func cmdConfigGet(c *client, args [][]byte) {
	params := c.srv.configParams()
	matched := map[string]bool{}
	var keys []string
	for _, a := range args[2:] {
		pat := strings.ToLower(string(a))
		for k := range params {
			if !matched[k] && globMatch(pat, k) {
				matched[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	c.w.Map(len(keys))
	for _, k := range keys {
		c.w.BulkString(k)
		c.w.BulkString(params[k])
	}
}

func cmdConfigSet(c *client, args [][]byte) {
	name := strings.ToLower(string(args[2]))
	if len(args) == 4 && (c.configSetAccess(name, args[3]) || c.configSetLimits(name, args[3])) {
		return
	}
	if _, ok := c.srv.configParams()[name]; ok {
		c.w.Error(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config", name))
		return
	}
	c.w.Error(fmt.Sprintf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", args[2]))
}

func cmdConfigResetstat(c *client, _ [][]byte) {
	st := &c.srv.stats
	st.commands.Store(0)
	st.connections.Store(0)
	st.rejected.Store(0)
	st.outputLimitDisconnects.Store(0)
	st.netOutputBytes.Store(0)
	st.netInputBytes.Store(0)
	c.w.OK()
}

var configHelp = []string{
	"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GET <pattern>",
	"    Return parameters matching the glob-like <pattern> and their values.",
	"SET <directive> <value>",
	"    Set the configuration <directive> to <value>.",
	"RESETSTAT",
	"    Reset statistics reported by the INFO command.",
	"HELP",
	"    Print this help.",
}
