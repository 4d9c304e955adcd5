package broker

import (
	"fmt"
	"net"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/metrics"
)

// listenMetrics binds metrics_addr (nil without it) and prepares the
// metrics, so the replica can report to them from its first entry.
func (s *Server) listenMetrics() (net.Listener, error) {
	if s.cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics_addr %s: %w (is another process using the port?)", s.cfg.MetricsAddr, err)
	}
	s.metrics = metrics.New(s.frontEndStats)
	return ln, nil
}

// startMetrics serves the metrics on ln, once the replica is open.
func (s *Server) startMetrics(ln net.Listener) {
	if s.metrics == nil {
		return
	}
	s.metrics.Attach(s.replica)
	s.metrics.Start(ln)
	s.log.Logf(logging.Info, "node", "Serving metrics on http://%s/metrics (health: /healthz, /readyz)", ln.Addr())
}

func (s *Server) closeMetrics() {
	if s.metrics != nil {
		s.metrics.Close()
	}
}

// MetricsAddr is where /metrics is served (nil without metrics_addr).
func (s *Server) MetricsAddr() net.Addr {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.Addr()
}

// frontEndStats is the front end's part of a scrape.
func (s *Server) frontEndStats() metrics.FrontEnd {
	cs := s.allClients()
	fe := metrics.FrontEnd{
		Clients:                   len(cs),
		ConnectionsReceived:       s.stats.connections.Load(),
		Commands:                  s.stats.commands.Load(),
		RejectedConnections:       s.stats.rejected.Load(),
		InputBytes:                s.stats.netInputBytes.Load(),
		OutputBytes:               s.stats.netOutputBytes.Load(),
		SlowSubscriberDisconnects: s.stats.outputLimitDisconnects.Load(),
	}
	for _, c := range cs {
		if c.subCount.Load() > 0 {
			fe.PubsubClients++
		}
	}
	fe.Channels, fe.Patterns, fe.ShardChannels = s.reg.sizes()
	return fe
}
