package broker

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/peer"
	"github.com/ordo-broker/ordo/broker/replica"
)

// Peer is one member of the cluster's static membership.
type Peer struct {
	ID   uint64
	Addr string // host:port; serves clients and peers
}

// Limits bound what one client can make the node hold.
type Limits struct {
	MaxClients         int           // Redis maxclients
	MaxMessageBytes    int64         // largest PUBLISH payload
	MaxRequestBytes    int64         // largest bulk argument / request (proto-max-bulk-len)
	PubsubHardBytes    int64         // client-output-buffer-limit pubsub <hard>
	PubsubSoftBytes    int64         // ... <soft>
	PubsubSoftDuration time.Duration // ... <soft seconds>
}

// Config is everything a node needs. Zero values are replaced by defaults
// in (*Config).setDefaults.
type Config struct {
	ID      uint64
	Host    string
	Port    int
	DataDir string
	Peers   []Peer // empty: a one-member cluster of this node

	// NoSync acknowledges publishes before they are fsynced ("fast" mode):
	// a crash of every node at once can then lose acknowledged messages.
	NoSync            bool
	HeartbeatInterval time.Duration
	LeaderTimeout     time.Duration
	PublishTimeout    time.Duration // how long PUBLISH waits for its commit
	RetainBytes       int64
	RetainAge         time.Duration
	SegmentBytes      int // WAL segment size (0: the wal package's default)
	// RejoinEmpty marks a node whose disk was replaced or wiped: with no
	// state on disk it takes no part in elections until the leader has
	// refilled its log (it may have acknowledged entries and votes it no
	// longer remembers). Ignored when the data directory holds state.
	RejoinEmpty bool
	// ClusterSecret authenticates peer links (challenge-response; it never
	// crosses the wire). Required for a cluster unless every member is on
	// loopback.
	ClusterSecret []byte
	Limits        Limits

	Logger *slog.Logger
}

// Defaults, chosen to match Redis where Redis has the knob.
const (
	DefaultPort              = 6379
	DefaultMaxClients        = 10000
	DefaultMaxMessageBytes   = 1 << 20
	DefaultMaxRequestBytes   = 64 << 20
	DefaultPubsubHardBytes   = 32 << 20
	DefaultPubsubSoftBytes   = 8 << 20
	DefaultPubsubSoftSeconds = 60
	// DefaultSegmentBytes: tidwall/wal keeps the segment being written in
	// memory and grows it by copying, so smaller segments append faster
	// (measured: 4 MiB segments take ~40% less time per batch than 20 MiB).
	DefaultSegmentBytes = 4 << 20
)

func (c *Config) setDefaults() {
	if c.ID == 0 {
		c.ID = 1
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.DataDir == "" {
		c.DataDir = fmt.Sprintf("data/node%d", c.ID)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 100 * time.Millisecond
	}
	if c.LeaderTimeout == 0 {
		c.LeaderTimeout = 500 * time.Millisecond
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	l := &c.Limits
	if l.MaxClients == 0 {
		l.MaxClients = DefaultMaxClients
	}
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxRequestBytes == 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if l.PubsubHardBytes == 0 {
		l.PubsubHardBytes = DefaultPubsubHardBytes
	}
	if l.PubsubSoftBytes == 0 {
		l.PubsubSoftBytes = DefaultPubsubSoftBytes
	}
	if l.PubsubSoftDuration == 0 {
		l.PubsubSoftDuration = DefaultPubsubSoftSeconds * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports configuration a node cannot run with.
func (c *Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	if c.HeartbeatInterval >= c.LeaderTimeout && c.LeaderTimeout > 0 {
		return fmt.Errorf("heartbeat_interval (%s) must be shorter than leader_timeout (%s)", c.HeartbeatInterval, c.LeaderTimeout)
	}
	if len(c.Peers) > 0 {
		found := false
		seen := map[uint64]bool{}
		for _, p := range c.Peers {
			if seen[p.ID] {
				return fmt.Errorf("peer id %d listed twice", p.ID)
			}
			seen[p.ID] = true
			if p.ID == c.ID {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("peers must include this node's id %d", c.ID)
		}
	}
	if len(c.Peers) > 1 && len(c.ClusterSecret) == 0 {
		for _, a := range append([]string{net.JoinHostPort(c.Host, "0")}, peerAddrs(c.Peers)...) {
			if !isLoopback(a) {
				return fmt.Errorf("a cluster reachable beyond loopback (%s) needs a cluster secret: anyone who can reach the port could otherwise speak as a peer; set --cluster-secret, --cluster-secret-file, ORDO_CLUSTER_SECRET or cluster_secret", a)
			}
		}
	}
	if c.Limits.MaxMessageBytes > c.Limits.MaxRequestBytes && c.Limits.MaxRequestBytes > 0 {
		return fmt.Errorf("max_message_size (%d) exceeds max_request_size (%d)", c.Limits.MaxMessageBytes, c.Limits.MaxRequestBytes)
	}
	return nil
}

func peerAddrs(ps []Peer) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Addr
	}
	return out
}

// isLoopback reports whether host:port names a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) replicaConfig(l logging.Node) replica.Config {
	rc := replica.Config{
		ID:                c.ID,
		DataDir:           c.DataDir,
		NoSync:            c.NoSync,
		HeartbeatInterval: c.HeartbeatInterval,
		LeaderTimeout:     c.LeaderTimeout,
		PublishTimeout:    c.PublishTimeout,
		RetainBytes:       c.RetainBytes,
		RetainAge:         c.RetainAge,
		SegmentBytes:      c.SegmentBytes,
		RejoinEmpty:       c.RejoinEmpty,
		Log:               l,
	}
	for _, p := range c.Peers {
		rc.Members = append(rc.Members, p.ID)
	}
	return rc
}

func (c *Config) peerConfig(l logging.Node) peer.Config {
	pc := peer.Config{
		ID:                c.ID,
		Peers:             map[uint64]string{},
		Secret:            c.ClusterSecret,
		HeartbeatInterval: c.HeartbeatInterval,
		LeaderTimeout:     c.LeaderTimeout,
		Log:               l,
	}
	for _, p := range c.Peers {
		if p.ID != c.ID {
			pc.Peers[p.ID] = p.Addr
		}
	}
	return pc
}
