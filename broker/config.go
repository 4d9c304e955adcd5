package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/broker/acl"
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
	MaxClients      int   // Redis maxclients
	MaxMessageBytes int64 // largest PUBLISH payload
	MaxRequestBytes int64 // largest bulk argument / request (proto-max-bulk-len)
	// MaxPendingRequestBytes: what the requests still arriving on all
	// connections together may declare (see requestBudget).
	MaxPendingRequestBytes int64
	PubsubHardBytes        int64         // client-output-buffer-limit pubsub <hard>
	PubsubSoftBytes        int64         // ... <soft>
	PubsubSoftDuration     time.Duration // ... <soft seconds>
	NormalHardBytes        int64         // client-output-buffer-limit normal <hard> (0: none)
	NormalSoftBytes        int64         // ... <soft> (0: none)
	NormalSoftDuration     time.Duration // ... <soft seconds>
	// MaxClientBuffers bounds the unsent replies of all clients together
	// (Redis's maxmemory-clients): past it the client with the most is
	// disconnected.
	MaxClientBuffers int64
}

// Slowlog configures SLOWLOG as Redis's slowlog-* parameters do.
type Slowlog struct {
	// SlowerThan: commands taking at least this many microseconds are
	// logged; negative: none; 0 from the option: every command. (A zero
	// in a Config built by hand means the default.)
	SlowerThan int64
	MaxLen     int // entries kept
	set        [2]bool
}

// Config is everything a node needs. Zero values are replaced by the
// defaults of Options (see setDefaults).
type Config struct {
	ID      uint64
	Host    string
	Port    int // 0: any free port (the command line defaults to 6379)
	DataDir string
	Peers   []Peer // the static membership; empty: a one-member cluster of this node (or Seeds)
	// Seeds are members of an existing cluster to join through (--seed):
	// a node with an empty data directory joins their cluster.
	Seeds []Peer
	// Advertise is the address other members reach this node at (default:
	// its --peers entry, else host:port).
	Advertise string
	// LeaveOnShutdown: on SIGTERM/SIGINT, leave the cluster (the removal
	// committed) before exiting, rather than just handing leadership over.
	LeaveOnShutdown bool
	// PrintChannels: the node prints every delivered message of these
	// channels to PrintTo (default stdout) as "[seq=N] sender: payload",
	// so a node's terminal shows the conversation (the guide's CS-1).
	PrintChannels []string
	PrintTo       io.Writer

	// NoSync acknowledges publishes before they are fsynced ("fast" mode):
	// a crash of every node at once can then lose acknowledged messages.
	NoSync            bool
	HeartbeatInterval time.Duration
	LeaderTimeout     time.Duration
	PublishTimeout    time.Duration // how long PUBLISH waits for its commit
	RetainBytes       int64
	RetainAge         time.Duration
	SegmentBytes      int // WAL segment size
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT) for
	// `ordo node`: a backstop that makes the garbage collector work
	// harder rather than let garbage grow RSS past it. 0: the GOMEMLIMIT
	// environment variable, if set, else none.
	MemoryLimit int64
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
	TLS           TLSConfig // tls_* options (tls.go)
	Slowlog       Slowlog

	// Access control (see package acl). RequirePass is the default user's
	// password; Users are user definitions in ACL file syntax ("alice on
	// >secret +@pubsub &orders:*", the leading "user" optional); ACLFile
	// is Redis's aclfile (ACL LOAD, ACL SAVE), exclusive with Users.
	// ProtectedModeOff disables protected mode, which refuses clients
	// from beyond loopback while the default user has no password.
	RequirePass      string
	Users            []string
	ACLFile          string
	ProtectedModeOff bool

	// LogLevel and LogFormat are the log_level and log_format options:
	// `ordo node` builds Logger from them. The node itself only uses
	// Logger (nil: discard), so a library user may leave them empty.
	LogLevel  string
	LogFormat string
	Logger    *slog.Logger

	// MetricsAddr is where /metrics, /healthz and /readyz are served
	// (host:port, a separate HTTP listener); empty: not served.
	MetricsAddr string
	// PprofAddr is where `ordo node` serves net/http/pprof (host:port, a
	// separate HTTP listener, for performance work); empty: not served.
	PprofAddr string
	// ConfigFile is the configuration file the options were read from,
	// for the startup banner ("" for none).
	ConfigFile string
}

// Defaults, chosen to match Redis where Redis has the knob. Options shows
// them (help, README), setDefaults applies them.
const (
	DefaultPort            = 6379
	DefaultMaxClients      = 10000
	DefaultMaxMessageBytes = 1 << 20
	DefaultMaxRequestBytes = 64 << 20
	// DefaultMaxPendingRequestBytes: four requests of the largest size in
	// flight at once; with the reader's buffers and Go's heap headroom a
	// node under a flood of large requests stays near 1 GB.
	DefaultMaxPendingRequestBytes = 256 << 20
	DefaultPubsubHardBytes        = 32 << 20
	DefaultPubsubSoftBytes        = 8 << 20
	DefaultPubsubSoftSeconds      = 60
	DefaultMaxClientBuffers       = 1 << 30
	// DefaultSegmentBytes: tidwall/wal keeps the segment being written in
	// memory and grows it by copying, so smaller segments append faster
	// (measured: 4 MiB segments take ~40% less time per batch than 20 MiB).
	DefaultSegmentBytes = 4 << 20
)

// setDefaults fills every zero-valued option that has a default, from the
// same table the command line shows, so the two cannot disagree.
func (c *Config) setDefaults() {
	for _, o := range options {
		if o.zero != nil && o.zero(c) && o.Default != "" {
			if err := o.set(c, o.Default); err != nil {
				panic("broker: default of " + o.Key + ": " + err.Error()) // a bug in the table, caught by any test
			}
		}
	}
	if c.DataDir == "" {
		c.DataDir = fmt.Sprintf("data/node%d", c.ID)
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
	if err := c.TLS.validate(c); err != nil {
		return err
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
	for _, p := range c.Seeds {
		if p.ID == c.ID {
			return fmt.Errorf("--seed names this node (%d): name a running member of the cluster to join", c.ID)
		}
	}
	if len(c.Seeds) > 0 && c.Advertise == "" && c.advertised("") == "" {
		return fmt.Errorf("host %s is not an address other members can reach: set --advertise HOST:PORT so the cluster knows where to find this node", c.Host)
	}
	if c.Advertise != "" {
		if _, port, err := net.SplitHostPort(c.Advertise); err != nil || !validPort(port) {
			return fmt.Errorf("advertise %q: want host:port", c.Advertise)
		}
	}
	if (len(c.Peers) > 1 || len(c.Seeds) > 0) && len(c.ClusterSecret) == 0 {
		addrs := append([]string{net.JoinHostPort(c.Host, "0"), c.Advertise}, peerAddrs(c.Peers)...)
		for _, a := range append(addrs, peerAddrs(c.Seeds)...) {
			if a == "" {
				continue
			}
			if !isLoopback(a) {
				return fmt.Errorf("a cluster reachable beyond loopback (%s) needs a cluster secret: anyone who can reach the port could otherwise speak as a peer; set --cluster-secret, --cluster-secret-file, ORDO_CLUSTER_SECRET or cluster_secret", a)
			}
		}
	}
	if len(c.Users) > 0 && c.ACLFile != "" {
		return errors.New("users and aclfile are both given: define users in one place, the users list or the ACL file")
	}
	if _, err := c.userDefs(); err != nil {
		return err
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

// advertised is where other members reach this node: --advertise, its
// --peers entry, or host:port ("" if host is a wildcard). listenAddr is
// the address actually listened on (the port may have been 0).
func (c *Config) advertised(listenAddr string) string {
	if c.Advertise != "" {
		return c.Advertise
	}
	for _, p := range c.Peers {
		if p.ID == c.ID {
			return p.Addr
		}
	}
	if ip := net.ParseIP(c.Host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	port := strconv.Itoa(c.peerPort())
	if _, p, err := net.SplitHostPort(listenAddr); err == nil {
		port = p
	}
	return net.JoinHostPort(c.Host, port)
}

// peerPort is the port peers reach this node on: the TLS port with
// tls_cluster (or when it is the only one), else the plaintext one.
func (c *Config) peerPort() int {
	if c.TLS.Cluster || c.TLS.Only {
		return c.TLS.Port
	}
	return c.Port
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
		MemberAddrs:       map[uint64]string{},
		Seeds:             map[uint64]string{},
	}
	for _, p := range c.Peers {
		rc.Members = append(rc.Members, p.ID)
		rc.MemberAddrs[p.ID] = p.Addr
	}
	for _, p := range c.Seeds {
		rc.Seeds[p.ID] = p.Addr
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
	// (The links then follow the membership: the replica sets them.)
	return pc
}

// Kind is the syntax of an option's value, shared by its flag, variable
// and YAML key.
type Kind string

const (
	KindString   Kind = "string"
	KindInt      Kind = "integer"
	KindBool     Kind = "bool"
	KindDuration Kind = "duration" // Go syntax: 100ms, 5s, 1h30m
	KindSize     Kind = "size"     // bytes: 1048576, 512kb, 32mb
	KindPeers    Kind = "peers"    // id:host:port,...; in YAML also a list of {id, host, port}
	KindPath     Kind = "path"
	KindSecret   Kind = "secret"
	KindLines    Kind = "lines" // one entry per line; in YAML also a list of strings
)

// Option is one setting of a node, defined once. The command line (flags
// and ORDO_* variables), the YAML loader, setDefaults, CONFIG GET and the
// README's table are all derived from Options, so none of them can forget
// an option or disagree about its name, default or syntax.
type Option struct {
	// Key is the YAML key, dotted when nested ("retention.age"). The flag
	// is Key with '.' and '_' turned into '-' (--retention-age), the
	// environment variable ORDO_ and Key upper-cased with '.' turned into
	// '_' (ORDO_RETENTION_AGE).
	Key     string
	NoYAML  bool   // settable by flag and variable only (the config file's own path)
	Alias   string // short flag, if any
	Kind    Kind
	Default string // as shown and as parsed; "" when there is none
	// Computed: Default describes a value computed from other options
	// (data/node<id>) rather than one to parse.
	Computed bool
	Usage    string
	// ConfigGet names the CONFIG GET parameters that report the option
	// (Redis's names where Redis has the setting, ordo- ones otherwise).
	ConfigGet []string

	set  func(*Config, string) error // parses and validates; nil: read by the loader itself
	get  func(*Config) string        // the CONFIG GET value; nil: configParams composes it
	zero func(*Config) bool          // unset, so setDefaults may fill it; nil: zero is a real value
}

// Flag is the option's command-line flag name, without dashes.
func (o Option) Flag() string { return strings.NewReplacer(".", "-", "_", "-").Replace(o.Key) }

// Env is the option's environment variable.
func (o Option) Env() string {
	return "ORDO_" + strings.ToUpper(strings.ReplaceAll(o.Key, ".", "_"))
}

// Set parses v into c, with the option's validation. Options the loader
// reads itself (NoYAML ones like config) cannot be set.
func (o Option) Set(c *Config, v string) error {
	if o.set == nil {
		return fmt.Errorf("%s is read by the loader, not stored in Config", o.Key)
	}
	return o.set(c, v)
}

// Options returns the table of every node option, in help order.
func Options() []Option { return slices.Clone(options) }

// option builds an Option whose value is one field of Config of a
// comparable type T, parsed by parse.
func option[T comparable](key string, kind Kind, def, usage string, f func(*Config) *T, parse func(string) (T, error)) Option {
	return Option{
		Key: key, Kind: kind, Default: def, Usage: usage,
		set: func(c *Config, v string) error {
			x, err := parse(v)
			if err != nil {
				return err
			}
			*f(c) = x
			return nil
		},
		zero: func(c *Config) bool { var z T; return *f(c) == z },
	}
}

// report adds CONFIG GET names and how to show the value.
func (o Option) report(get func(*Config) string, names ...string) Option {
	o.ConfigGet, o.get = names, get
	return o
}

// noFill marks an option whose zero value is meaningful, so setDefaults
// must leave it alone (the default is then applied by the command line).
func (o Option) noFill() Option { o.zero = nil; return o }

func (o Option) computed() Option { o.Computed = true; return o }

func ms(d time.Duration) string   { return strconv.FormatInt(d.Milliseconds(), 10) }
func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
func itoa[T ~int | ~int64](v T) string {
	return strconv.FormatInt(int64(v), 10)
}

var options = []Option{
	{Key: "config", Alias: "c", NoYAML: true, Kind: KindPath,
		Usage: "YAML configuration file (flags and ORDO_* variables override it)"},
	option("id", KindInt, "1", "this node's id (unique in the cluster; the highest live id leads)",
		func(c *Config) *uint64 { return &c.ID }, uintIn(1, math.MaxUint64)).
		report(func(c *Config) string { return strconv.FormatUint(c.ID, 10) }, "ordo-node-id"),
	option("host", KindString, "127.0.0.1", "address to listen on",
		func(c *Config) *string { return &c.Host }, nonEmpty).
		report(func(c *Config) string { return c.Host }, "bind"),
	option("port", KindInt, itoa(DefaultPort), "port for clients and peers (0: any free port)",
		func(c *Config) *int { return &c.Port }, intIn(0, 65535)).noFill().
		report(func(c *Config) string {
			if c.TLS.Only {
				return "0" // as Redis reports a TLS-only server
			}
			return itoa(c.Port)
		}, "port"),
	// The default depends on id, so setDefaults computes it.
	option("data_dir", KindPath, "data/node<id>", "where the log lives",
		func(c *Config) *string { return &c.DataDir }, nonEmpty).noFill().computed().
		report(func(c *Config) string { return c.DataDir }, "dir"),
	{Key: "peers", Kind: KindPeers, Usage: "cluster members including this node, e.g. 1:127.0.0.1:5001,2:127.0.0.1:5002 (none: a one-node cluster)",
		set: func(c *Config, v string) (err error) { c.Peers, err = parsePeers(v); return err }},
	{Key: "seed", Kind: KindPeers, Usage: "members of a running cluster to join through when the data directory is empty, e.g. 1:127.0.0.1:6001 (several: comma-separated); ignored once this node belongs to a cluster, except as one more address to contact",
		set: func(c *Config, v string) (err error) { c.Seeds, err = parsePeers(v); return err }},
	option("advertise", KindString, "", "address other members reach this node at (default: its --peers entry, else host:port); needed with --seed when host is 0.0.0.0",
		func(c *Config) *string { return &c.Advertise }, nonEmpty),
	option("leave_on_shutdown", KindBool, "false", "on SIGTERM or SIGINT, leave the cluster (hand leadership over, wait for the removal to commit) before exiting; without it a stopped node stays a member and catches up when it comes back",
		func(c *Config) *bool { return &c.LeaveOnShutdown }, parseBool).noFill(),
	{Key: "cluster_secret", Kind: KindSecret, Usage: "shared secret authenticating peer links; required unless every member is on loopback (prefer cluster_secret_file: flags and variables are visible to other local users)",
		set: func(c *Config, v string) error {
			if v == "" {
				return errors.New("empty cluster secret")
			}
			c.ClusterSecret = []byte(v)
			return nil
		},
		// Never the secret itself: CONFIG GET is open to every client.
		get:       func(c *Config) string { return yesNo(len(c.ClusterSecret) > 0) },
		ConfigGet: []string{"ordo-cluster-secret"}},
	{Key: "cluster_secret_file", Kind: KindPath, Usage: "file holding the cluster secret (a trailing newline is ignored); give it or cluster_secret, not both",
		set: func(c *Config, path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("cluster secret file: %w", err)
			}
			b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
			if len(b) == 0 {
				return fmt.Errorf("cluster secret file %s is empty", path)
			}
			c.ClusterSecret = b
			return nil
		}},
	option("log_level", KindString, "info", "debug, info, warn or error",
		func(c *Config) *string { return &c.LogLevel }, func(s string) (string, error) {
			_, err := logging.ParseLevel(s)
			return strings.ToLower(s), err
		}),
	option("log_format", KindString, "text", "text (human-readable lines) or json",
		func(c *Config) *string { return &c.LogFormat }, oneOf("text", "json")),
	option("metrics_addr", KindString, "", "serve Prometheus /metrics, /healthz and /readyz over HTTP on this host:port, e.g. :9121 (empty: off)",
		func(c *Config) *string { return &c.MetricsAddr }, parseListenAddr).
		report(func(c *Config) string { return c.MetricsAddr }, "ordo-metrics-addr"),
	option("pprof_addr", KindString, "", "serve Go's /debug/pprof/ profiles over HTTP on this host:port, for performance work (empty: off; never expose it beyond loopback)",
		func(c *Config) *string { return &c.PprofAddr }, parseListenAddr),
	option("heartbeat_interval", KindDuration, (100*time.Millisecond).String(), "leader heartbeat period, e.g. 100ms",
		func(c *Config) *time.Duration { return &c.HeartbeatInterval }, positiveDuration).
		report(func(c *Config) string { return ms(c.HeartbeatInterval) }, "ordo-heartbeat-interval"),
	option("leader_timeout", KindDuration, (500*time.Millisecond).String(), "silence after which followers elect a new leader",
		func(c *Config) *time.Duration { return &c.LeaderTimeout }, positiveDuration).
		report(func(c *Config) string { return ms(c.LeaderTimeout) }, "ordo-leader-timeout"),
	option("publish_timeout", KindDuration, (5*time.Second).String(), "how long PUBLISH waits for its commit before failing",
		func(c *Config) *time.Duration { return &c.PublishTimeout }, positiveDuration).
		report(func(c *Config) string { return ms(c.PublishTimeout) }, "ordo-publish-timeout"),
	option("fsync", KindString, "always", "always (acknowledge after fsync) or never (fast: a crash of every node at once can lose acknowledged messages)",
		func(c *Config) *bool { return &c.NoSync }, parseFsync).noFill().
		report(func(c *Config) string { return map[bool]string{false: "always", true: "no"}[c.NoSync] }, "appendfsync"),
	option("max_message_size", KindSize, formatSize(DefaultMaxMessageBytes), "largest PUBLISH payload (bytes, e.g. 512kb, 1mb)",
		func(c *Config) *int64 { return &c.Limits.MaxMessageBytes }, positiveSize).
		report(func(c *Config) string { return itoa(c.Limits.MaxMessageBytes) }, "ordo-max-message-size"),
	option("max_request_size", KindSize, formatSize(DefaultMaxRequestBytes), "largest request argument (bytes)",
		func(c *Config) *int64 { return &c.Limits.MaxRequestBytes }, positiveSize).
		report(func(c *Config) string { return itoa(c.Limits.MaxRequestBytes) }, "proto-max-bulk-len", "client-query-buffer-limit"),
	option("max_pending_request_bytes", KindSize, formatSize(DefaultMaxPendingRequestBytes), "what requests still arriving may declare on all connections together; a larger one waits (reads paused), then is refused",
		func(c *Config) *int64 { return &c.Limits.MaxPendingRequestBytes }, positiveSize).
		report(func(c *Config) string { return itoa(c.Limits.MaxPendingRequestBytes) }, "ordo-max-pending-request-bytes"),
	option("max_clients", KindInt, itoa(DefaultMaxClients), "maximum simultaneous clients",
		func(c *Config) *int { return &c.Limits.MaxClients }, intIn(1, math.MaxInt32)).
		report(func(c *Config) string { return itoa(c.Limits.MaxClients) }, "maxclients"),
	// The three pub/sub limits are one Redis parameter, composed by
	// configParams.
	option("pubsub_output_buffer.hard", KindSize, formatSize(DefaultPubsubHardBytes), "disconnect a subscriber at once when its unsent replies exceed this (bytes, e.g. 32mb)",
		func(c *Config) *int64 { return &c.Limits.PubsubHardBytes }, positiveSize).
		report(nil, "client-output-buffer-limit"),
	option("pubsub_output_buffer.soft", KindSize, formatSize(DefaultPubsubSoftBytes), "disconnect a subscriber whose unsent replies stay above this for soft_seconds",
		func(c *Config) *int64 { return &c.Limits.PubsubSoftBytes }, positiveSize).
		report(nil, "client-output-buffer-limit"),
	option("pubsub_output_buffer.soft_seconds", KindInt, itoa(DefaultPubsubSoftSeconds), "seconds a subscriber may stay above the soft limit",
		func(c *Config) *time.Duration { return &c.Limits.PubsubSoftDuration }, func(s string) (time.Duration, error) {
			n, err := intIn(1, math.MaxInt32)(s)
			return time.Duration(n) * time.Second, err
		}).
		report(nil, "client-output-buffer-limit"),
	// Redis's normal class: 0 0 0 (no limit) by default. History replies
	// are streamed (stream_reply.go), so they never approach a limit.
	option("normal_output_buffer.hard", KindSize, "0", "disconnect a (non-subscribed) client at once when its unsent replies exceed this (bytes; 0: no limit)",
		func(c *Config) *int64 { return &c.Limits.NormalHardBytes }, parseSize).
		report(nil, "client-output-buffer-limit"),
	option("normal_output_buffer.soft", KindSize, "0", "disconnect a (non-subscribed) client whose unsent replies stay above this for soft_seconds (0: no limit)",
		func(c *Config) *int64 { return &c.Limits.NormalSoftBytes }, parseSize).
		report(nil, "client-output-buffer-limit"),
	option("normal_output_buffer.soft_seconds", KindInt, "0", "seconds a (non-subscribed) client may stay above the soft limit",
		func(c *Config) *time.Duration { return &c.Limits.NormalSoftDuration }, func(s string) (time.Duration, error) {
			n, err := intIn(0, math.MaxInt32)(s)
			return time.Duration(n) * time.Second, err
		}).
		report(nil, "client-output-buffer-limit"),
	option("max_client_buffers", KindSize, formatSize(DefaultMaxClientBuffers), "bound on the unsent replies of all clients together; past it the client with the most is disconnected (Redis's maxmemory-clients)",
		func(c *Config) *int64 { return &c.Limits.MaxClientBuffers }, positiveSize).
		report(func(c *Config) string { return itoa(c.Limits.MaxClientBuffers) }, "maxmemory-clients"),
	option("retention.bytes", KindSize, "0", "drop the oldest log segments beyond this size, e.g. 10gb (0: keep everything)",
		func(c *Config) *int64 { return &c.RetainBytes }, parseSize).
		report(func(c *Config) string { return itoa(c.RetainBytes) }, "ordo-retention-bytes"),
	option("retention.age", KindDuration, "0", "drop log segments older than this, e.g. 168h (0: keep everything)",
		func(c *Config) *time.Duration { return &c.RetainAge }, func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return 0, fmt.Errorf("invalid duration %q (want e.g. 24h, 90m; 0 keeps everything)", s)
			}
			return d, nil
		}).
		report(func(c *Config) string { return secs(c.RetainAge) }, "ordo-retention-age"),
	option("memory_limit", KindSize, "0", "soft limit on the node's memory (Go's GOMEMLIMIT): past it the garbage collector runs more often; a backstop, not a cap (0: the GOMEMLIMIT environment variable, else none)",
		func(c *Config) *int64 { return &c.MemoryLimit }, parseSize).
		report(func(c *Config) string { return itoa(c.MemoryLimit) }, "ordo-memory-limit"),
	option("segment_size", KindSize, formatSize(DefaultSegmentBytes), "log segment file size in bytes (retention drops whole segments)",
		func(c *Config) *int { return &c.SegmentBytes }, func(s string) (int, error) {
			n, err := positiveSize(s)
			if err == nil && n > math.MaxInt32 {
				err = fmt.Errorf("segment size %q is too large (at most 2gb)", s)
			}
			return int(n), err
		}).
		report(func(c *Config) string { return itoa(c.SegmentBytes) }, "ordo-segment-size"),
	{Key: "print_channels", Kind: KindString, Usage: "print every delivered message of these channels (comma-separated, e.g. chat) to stdout as [seq=N] sender: payload",
		set: func(c *Config, v string) error {
			c.PrintChannels = nil
			for _, ch := range strings.Split(v, ",") {
				if ch = strings.TrimSpace(ch); ch != "" {
					c.PrintChannels = append(c.PrintChannels, ch)
				}
			}
			return nil
		},
		get:       func(c *Config) string { return strings.Join(c.PrintChannels, ",") },
		ConfigGet: []string{"ordo-print-channels"}},
	{Key: "slowlog_log_slower_than", Kind: KindInt, Default: "10000", Usage: "SLOWLOG records commands that take at least this many microseconds (-1: none, 0: every command)",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < -1 {
				return fmt.Errorf("invalid value %q (want microseconds, or -1 to disable)", v)
			}
			c.Slowlog.SlowerThan, c.Slowlog.set[0] = n, true
			return nil
		},
		get:       func(c *Config) string { return itoa(c.Slowlog.SlowerThan) },
		zero:      func(c *Config) bool { return c.Slowlog.SlowerThan == 0 && !c.Slowlog.set[0] },
		ConfigGet: []string{"slowlog-log-slower-than"}},
	{Key: "slowlog_max_len", Kind: KindInt, Default: "128", Usage: "how many entries SLOWLOG keeps",
		set: func(c *Config, v string) error {
			n, err := intIn(0, math.MaxInt32)(v)
			c.Slowlog.MaxLen, c.Slowlog.set[1] = n, true
			return err
		},
		get:       func(c *Config) string { return itoa(c.Slowlog.MaxLen) },
		zero:      func(c *Config) bool { return c.Slowlog.MaxLen == 0 && !c.Slowlog.set[1] },
		ConfigGet: []string{"slowlog-max-len"}},
	{Key: "requirepass", Kind: KindSecret, Usage: "password of the default user (AUTH <password>); empty: none",
		set: func(c *Config, v string) error { c.RequirePass = v; return nil },
		// As Redis: CONFIG GET shows it, to users allowed @admin only.
		get: func(c *Config) string { return c.RequirePass }, ConfigGet: []string{"requirepass"}},
	{Key: "users", Kind: KindLines, Usage: "ACL users, one per line (a YAML list), in ACL file syntax, e.g. alice on >secret +@pubsub &orders:*; passwords are kept as SHA-256 hashes",
		set: func(c *Config, v string) error {
			c.Users = nil
			for _, l := range strings.Split(v, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					c.Users = append(c.Users, l)
				}
			}
			_, err := c.userDefs()
			return err
		}},
	{Key: "aclfile", Kind: KindPath, Usage: "ACL file (Redis's format: one user <name> <rules> per line) read at start and by ACL LOAD, written by ACL SAVE",
		set: func(c *Config, v string) error { c.ACLFile = v; return nil },
		get: func(c *Config) string { return c.ACLFile }, ConfigGet: []string{"aclfile"}},
	option("protected_mode", KindBool, "true", "while the default user has no password, refuse clients that are not on loopback (peers are not clients)",
		func(c *Config) *bool { return &c.ProtectedModeOff }, func(s string) (bool, error) { b, err := parseBool(s); return !b, err }).noFill().
		report(func(c *Config) string { return yesNo(!c.ProtectedModeOff) }, "protected-mode"),
	option("rejoin_empty", KindBool, "false", "this node's disk was replaced or wiped: take no part in elections until the leader has refilled its log",
		func(c *Config) *bool { return &c.RejoinEmpty }, parseBool).noFill().
		report(func(c *Config) string { return yesNo(c.RejoinEmpty) }, "ordo-rejoin-empty"),
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// parseBool accepts what strconv.ParseBool does (true, false, 1, 0, ...)
// and yes/no, on/off.
func parseBool(s string) (bool, error) {
	if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
		return b, nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "on":
		return true, nil
	case "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q (want true or false)", s)
}

// parseListenAddr accepts host:port to listen on (host may be empty: every
// interface).
func parseListenAddr(s string) (string, error) {
	if _, port, err := net.SplitHostPort(s); err != nil || !validPort(port) {
		return "", fmt.Errorf("invalid address %q (want host:port, e.g. :9121 or 127.0.0.1:9121)", s)
	}
	return s, nil
}

// parseFsync maps the durability mode to NoSync.
func parseFsync(s string) (noSync bool, err error) {
	switch strings.ToLower(s) {
	case "always", "yes", "true":
		return false, nil
	case "never", "no", "false":
		return true, nil
	}
	return false, fmt.Errorf("fsync must be always (acknowledge after fsync, the default) or never (fast mode: a crash of every node can lose acknowledged messages), got %q", s)
}

func nonEmpty(s string) (string, error) {
	if s == "" {
		return "", errors.New("must not be empty")
	}
	return s, nil
}

func oneOf(vals ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		if slices.Contains(vals, strings.ToLower(s)) {
			return strings.ToLower(s), nil
		}
		return "", fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
	}
}

func intIn(lo, hi int) func(string) (int, error) {
	return func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("invalid value %q (want an integer from %d to %d)", s, lo, hi)
		}
		return n, nil
	}
}

func uintIn(lo, hi uint64) func(string) (uint64, error) {
	return func(s string) (uint64, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("invalid value %q (want an integer from %d to %d)", s, lo, hi)
		}
		return n, nil
	}
}

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid duration %q (want a positive duration, e.g. 100ms, 5s)", s)
	}
	return d, nil
}

func positiveSize(s string) (int64, error) {
	n, err := parseSize(s)
	if err == nil && n == 0 {
		err = fmt.Errorf("invalid size %q (must be positive)", s)
	}
	return n, err
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}}

// parseSize accepts 1048576, "1mb", "512kb", "32MiB" (units are powers of
// 1024, as in Redis's configuration).
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1048576, 512kb, 32mb)", s)
	}
	return v * mult, nil
}

// formatSize writes n in the largest unit that divides it: 1mb, 512kb.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// parsePeers parses "1:127.0.0.1:5001,2:127.0.0.1:5002".
func parsePeers(s string) ([]Peer, error) {
	var out []Peer
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, ":")
		id, err := strconv.ParseUint(idStr, 10, 64)
		host, port, herr := net.SplitHostPort(addr)
		if !ok || err != nil || id == 0 || herr != nil || host == "" || !validPort(port) {
			return nil, fmt.Errorf("invalid peer %q (want id:host:port, e.g. 2:127.0.0.1:5002)", part)
		}
		out = append(out, Peer{ID: id, Addr: addr})
	}
	return out, nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

// userDefs parses Users.
func (c *Config) userDefs() ([]acl.Def, error) {
	defs := make([]acl.Def, 0, len(c.Users))
	for _, u := range c.Users {
		d, err := acl.ParseDef(u, true)
		if err != nil {
			return nil, fmt.Errorf("users: %q: %v", u, err)
		}
		defs = append(defs, d)
	}
	return defs, nil
}
