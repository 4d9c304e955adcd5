package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
)

// TLSConfig is the tls_* options: a second listener serving clients over
// TLS (Redis's tls-port and friends), and TLS on the peer links
// (tls_cluster).
type TLSConfig struct {
	Port int // tls_port: the TLS listener's port (0: none)
	// Only: serve clients over TLS only (no plaintext listener). Redis
	// says this with port 0, which in ordo means "any free port".
	Only        bool
	CertFile    string // the node's certificate (PEM; a chain, leaf first)
	KeyFile     string
	CACertFile  string // CAs that sign client and peer certificates
	AuthClients string // yes (a client certificate is required), optional, no
	// Cluster runs peer links over TLS: a node dials members' TLS ports,
	// verifies their certificates against the CA, presents its own, and
	// refuses peer links that come in without TLS.
	Cluster bool
}

// infoPort is INFO's tcp_port: as Redis shows it, the plaintext port,
// or the TLS port when it is the only one.
func (c *Config) infoPort() int {
	if c.TLS.Only {
		return c.TLS.Port
	}
	return c.Port
}

// enabled reports whether the node serves TLS.
func (t *TLSConfig) enabled() bool { return t.Port != 0 }

func (t *TLSConfig) validate(c *Config) error {
	if t.Port < 0 || t.Port > 65535 {
		return fmt.Errorf("tls_port %d out of range", t.Port)
	}
	if !t.enabled() {
		switch {
		case t.Only:
			return errors.New("tls_only needs tls_port")
		case t.Cluster:
			return errors.New("tls_cluster needs tls_port: peers reach members on their TLS port")
		}
		return nil
	}
	if !t.Only && t.Port == c.Port {
		return fmt.Errorf("port and tls_port are both %d (set tls_only to serve TLS alone)", t.Port)
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return errors.New("tls_port needs tls_cert_file and tls_key_file")
	}
	if t.CACertFile == "" && (t.Cluster || t.AuthClients != "no") {
		// Redis refuses to start in this case too.
		return errors.New("tls_ca_cert_file is needed to verify client certificates (tls_auth_clients yes, the default, or optional) and peers (tls_cluster); give a CA or set tls_auth_clients no")
	}
	if t.Only && !t.Cluster && (len(c.Peers) > 1 || len(c.Seeds) > 0) {
		return errors.New("tls_only in a cluster needs tls_cluster: the TLS port is then the only one peers can reach")
	}
	return nil
}

var tlsOptions = []Option{
	option("tls_port", KindInt, "0", "port serving clients over TLS (0: none); with tls_cluster also the port peers reach",
		func(c *Config) *int { return &c.TLS.Port }, intIn(0, 65535)).noFill().
		report(func(c *Config) string { return itoa(c.TLS.Port) }, "tls-port"),
	option("tls_only", KindBool, "false", "serve clients over TLS only: no plaintext listener (port is ignored)",
		func(c *Config) *bool { return &c.TLS.Only }, parseBool).noFill().
		report(func(c *Config) string { return yesNo(c.TLS.Only) }, "ordo-tls-only"),
	option("tls_cert_file", KindPath, "", "the node's certificate (PEM); reread on SIGHUP",
		func(c *Config) *string { return &c.TLS.CertFile }, nonEmpty).
		report(func(c *Config) string { return c.TLS.CertFile }, "tls-cert-file"),
	option("tls_key_file", KindPath, "", "the private key of tls_cert_file (PEM); reread on SIGHUP",
		func(c *Config) *string { return &c.TLS.KeyFile }, nonEmpty).
		report(func(c *Config) string { return c.TLS.KeyFile }, "tls-key-file"),
	option("tls_ca_cert_file", KindPath, "", "CA certificates (PEM) that client and peer certificates must be signed by; reread on SIGHUP",
		func(c *Config) *string { return &c.TLS.CACertFile }, nonEmpty).
		report(func(c *Config) string { return c.TLS.CACertFile }, "tls-ca-cert-file"),
	option("tls_auth_clients", KindString, "yes", "client certificates on the TLS port: yes (required), optional (verified if given) or no",
		func(c *Config) *string { return &c.TLS.AuthClients }, oneOf("yes", "optional", "no")).
		report(func(c *Config) string { return c.TLS.AuthClients }, "tls-auth-clients"),
	option("tls_cluster", KindBool, "false", "run peer links over TLS: members' addresses (peers, seed, advertise) name their tls_port, and plaintext peer links are refused",
		func(c *Config) *bool { return &c.TLS.Cluster }, parseBool).noFill().
		report(func(c *Config) string { return yesNo(c.TLS.Cluster) }, "tls-cluster"),
}

// The tls_* options live here, with the code they configure; in help
// order they follow the others.
func init() { options = append(options, tlsOptions...) }

// tlsMaterial is one loading of the certificate files.
type tlsMaterial struct {
	server *tls.Config // for the TLS listener
	peer   *tls.Config // for dialling peers (tls_cluster)
}

// tlsState holds the node's current certificates: SIGHUP swaps them
// (ReloadTLS) and every later handshake uses the new ones.
type tlsState struct {
	cfg TLSConfig
	cur atomic.Pointer[tlsMaterial]
}

func newTLSState(cfg TLSConfig) (*tlsState, error) {
	ts := &tlsState{cfg: cfg}
	return ts, ts.load()
}

// load reads the files; on an error the current material stays.
func (ts *tlsState) load() error {
	cert, err := tls.LoadX509KeyPair(ts.cfg.CertFile, ts.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
	}
	var pool *x509.CertPool
	if ts.cfg.CACertFile != "" {
		pem, err := os.ReadFile(ts.cfg.CACertFile)
		if err != nil {
			return fmt.Errorf("tls_ca_cert_file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls_ca_cert_file %s holds no PEM certificate", ts.cfg.CACertFile)
		}
	}
	server := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
	}
	switch ts.cfg.AuthClients {
	case "yes":
		server.ClientAuth = tls.RequireAndVerifyClientCert
	case "optional":
		server.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		if ts.cfg.Cluster {
			// Peers must present theirs, checked when they say ORDO.PEER
			// (peer.verifyPeerCert); clients may send none.
			server.ClientAuth = tls.RequestClientCert
		}
	}
	peer := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
	}
	ts.cur.Store(&tlsMaterial{server: server, peer: peer})
	return nil
}

// listenerConfig picks the current certificates for each new client.
func (ts *tlsState) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return ts.cur.Load().server, nil
		},
	}
}

// peerConfig is what peer links dial with (tls_cluster).
func (ts *tlsState) peerConfig() *tls.Config { return ts.cur.Load().peer }

// ReloadTLS rereads the certificate, key and CA files (SIGHUP): new
// connections use them, established ones keep theirs. On an error the
// node keeps the certificates it has.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.load()
}

// tlsHandshakeTimeout bounds a client's TLS handshake: a connection that
// never completes one is closed rather than held.
const tlsHandshakeTimeout = 10 * time.Second

// tlsListener makes each accepted connection a TLS server connection
// whose handshake runs on its first read, in the connection's own
// goroutine (never in the accept loop), bounded by tlsHandshakeTimeout.
type tlsListener struct {
	net.Listener
	cfg *tls.Config
	log logging.Node
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.cfg), log: l.log}, nil
}

type tlsConn struct {
	*tls.Conn
	log  logging.Node
	once sync.Once
	err  error
}

func (c *tlsConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		defer cancel()
		if c.err = c.Conn.HandshakeContext(ctx); c.err != nil {
			// A plaintext client on the TLS port, a client without the
			// certificate the node requires: it is disconnected (the
			// client sees why, as a TLS alert where TLS got that far).
			c.log.Logf(logging.Debug, "node", "TLS handshake with %s failed: %v", c.RemoteAddr(), c.err)
		}
	})
	return c.err
}

func (c *tlsConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *tlsConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
