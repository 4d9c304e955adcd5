package broker

import (
	"fmt"
	"net"
	"runtime"
	"strings"

	"github.com/ordo-broker/ordo/broker/logging"
)

// logBanner logs, once at start, what an operator checks first: which
// binary, which configuration, where the data is, where the node listens
// and which cluster it belongs to. The lines are plain log lines (text or
// JSON), before the node's first guide line about its cluster.
func (s *Server) logBanner(plain, secure net.Listener) {
	lines := s.banner(plain, secure)
	for _, l := range lines {
		s.log.Logf(logging.Info, "node", "%s", l)
	}
}

func (s *Server) banner(plain, secure net.Listener) []string {
	cfg := &s.cfg
	file := cfg.ConfigFile
	if file == "" {
		file = "none (defaults, ORDO_* variables and flags)"
	}
	var listeners []string
	peerAddr := ""
	if plain != nil {
		listeners = append(listeners, "clients "+plain.Addr().String())
		peerAddr = plain.Addr().String()
	}
	if secure != nil {
		listeners = append(listeners, "TLS clients "+secure.Addr().String())
		if cfg.TLS.Cluster || plain == nil {
			peerAddr = secure.Addr().String()
		}
	}
	listeners = append(listeners, "peers "+cfg.advertised(peerAddr))
	if cfg.MetricsAddr != "" {
		listeners = append(listeners, "metrics http://"+cfg.MetricsAddr+"/metrics")
	}
	return []string{
		fmt.Sprintf("===== ordo %s (commit %s, %s), node %d =====", Version, Commit(), runtime.Version(), cfg.ID),
		"Config file: " + file,
		"Data directory: " + cfg.DataDir,
		"Listening: " + strings.Join(listeners, ", "),
		"Cluster: " + s.clusterLine(),
	}
}

// clusterLine names the cluster and its members as this node knows them
// at start (from its log, or --peers); a node that has not joined yet
// says whom it asks.
func (s *Server) clusterLine() string {
	id := s.replica.ClusterID()
	if id == "" {
		var seeds []string
		for _, p := range s.cfg.Seeds {
			seeds = append(seeds, fmt.Sprintf("node_%d %s", p.ID, p.Addr))
		}
		return "none yet, joining through " + strings.Join(seeds, ", ")
	}
	ms := s.replica.Members()
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		p := fmt.Sprintf("node_%d %s", m.ID, m.Addr)
		if m.Self {
			p += " (this node)"
		}
		if !m.Voter {
			p += " (learner)"
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("%s, members (%d): %s", id, len(ms), strings.Join(parts, ", "))
}
