// Package broker is ordo's Redis-protocol front end and the wiring of a
// node: it accepts connections, reads their requests (reqreader.go),
// executes Redis commands with
// Redis 7's exact replies, fans committed messages out to subscribers
// through bounded per-client output buffers (a slow subscriber is cut off,
// never stalls others), and is the one place where Redis reply bytes are
// produced. The node's other jobs live in sub-packages: replica (drives
// the consensus core, persists, applies), store (log and channel index),
// peer (authenticated cluster links) and logging.
package broker

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-broker/ordo/broker/acl"
	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/broker/metrics"
	"github.com/ordo-broker/ordo/broker/peer"
	"github.com/ordo-broker/ordo/broker/replica"
)

// Server is one ordo node: it serves Redis clients and (through its
// replica) takes part in the cluster.
type Server struct {
	cfg     Config
	log     logging.Node
	replica *replica.Replica
	peers   *peer.Transport
	reg     *registry
	started time.Time
	runID   string

	// Settings a reload changes (Reload): the users, protected mode and
	// limits are read without a lock; cfgMu guards cfg's copies of them.
	users        *acl.Users
	protectedOff atomic.Bool
	limits       atomic.Pointer[Limits]
	reqBudget    *requestBudget // max_pending_request_bytes, shared by all connections
	cfgMu        sync.RWMutex
	aclSrc       string
	acllog       aclLog

	ln       net.Listener
	tls      *tlsState // nil without tls_port
	tlsLn    net.Listener
	mu       sync.Mutex
	clients  map[int64]*client
	conns    map[*clientConn]struct{} // accepted, before their first request
	nextID   atomic.Int64
	closed   atomic.Bool
	serveErr chan error
	stopped  chan struct{} // closed when Close has finished

	// clientBuffers is the unsent output of all clients (bounded by
	// max_client_buffers; outputlimits.go).
	clientBuffers atomic.Int64
	// historySlots bounds the history replies produced at once
	// (stream_reply.go).
	historySlots chan struct{}

	monitors monitors
	slowlog  slowlog

	// Graceful shutdown (shutdown.go).
	draining atomic.Bool  // refusing new publishes and connections
	inflight atomic.Int64 // admitted publishes not answered yet
	shutOnce sync.Once
	shutErr  error

	stats struct {
		connections            atomic.Int64
		commands               atomic.Int64
		rejected               atomic.Int64
		outputLimitDisconnects atomic.Int64
		netOutputBytes         atomic.Int64
		netInputBytes          atomic.Int64
	}

	// metrics serves /metrics, /healthz and /readyz (nil without
	// metrics_addr); see metrics.go.
	metrics *metrics.Metrics
}

// New opens the node's log (recovering it after a crash) and prepares the
// server; call Serve or ListenAndServe to accept clients.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		reg:          newRegistry(),
		started:      time.Now(),
		clients:      map[int64]*client{},
		conns:        map[*clientConn]struct{}{},
		serveErr:     make(chan error, 1),
		historySlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1)),
		stopped:      make(chan struct{}),
		runID:        newRunID(),
		log:          logging.NewNode(cfg.Logger, cfg.ID),
	}
	s.users = acl.NewUsers(aclTable)
	set, err := buildUsers(&cfg)
	if err != nil {
		return nil, err
	}
	s.users.Replace(set)
	s.aclSrc = aclSource(&cfg)
	s.protectedOff.Store(cfg.ProtectedModeOff)
	lim := cfg.Limits
	s.limits.Store(&lim)
	s.reqBudget = newRequestBudget(cfg.Limits.MaxPendingRequestBytes)
	s.log.Logf(logging.Info, "node", "Starting node %d (ordo %s, commit %s, data in %s)", cfg.ID, Version, Commit(), cfg.DataDir)
	if cfg.TLS.enabled() {
		// Before the log is opened: a bad certificate fails at once.
		if s.tls, err = newTLSState(cfg.TLS); err != nil {
			return nil, err
		}
	}
	// Before the data directory is touched: a busy port fails cleanly.
	metricsLn, err := s.listenMetrics()
	if err != nil {
		return nil, err
	}
	var app replica.Applier = s.reg
	if len(cfg.PrintChannels) > 0 {
		app = newPrinter(cfg.PrintChannels, cfg.PrintTo, s.reg)
	}
	rc := cfg.replicaConfig(s.log)
	if cfg.peerPort() != 0 {
		// Known before the listener: a node that forms a cluster records
		// its own address in the first configuration, so members that
		// join later can reach it after a restart. (Port 0 is resolved
		// in Serve; callers that listen first set Port to the real one.)
		rc.Addr = cfg.advertised("")
	}
	if s.metrics != nil {
		rc.Observer = s.metrics
	}
	rep, err := replica.Open(rc, app)
	if err != nil {
		if metricsLn != nil {
			metricsLn.Close()
		}
		return nil, err
	}
	s.replica = rep
	s.startMetrics(metricsLn)
	// Every node has a transport: a lone node may be joined later.
	pc := cfg.peerConfig(s.log)
	if cfg.TLS.Cluster {
		pc.TLS = s.tls.peerConfig
	}
	s.peers = peer.New(pc, rep)
	return s, nil
}

// Serve accepts clients on ln until Close.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListeners(ln, nil) }

// ServeListeners accepts clients on plain and, over TLS, on secure (the
// tls_port listener) until Close. Either may be nil (tls_only: plain).
func (s *Server) ServeListeners(plain, secure net.Listener) error {
	if plain == nil && secure == nil {
		return errors.New("no listener to serve on")
	}
	if secure != nil && s.tls == nil {
		return errors.New("a TLS listener needs tls_port, tls_cert_file and tls_key_file")
	}
	peerLn := plain
	s.mu.Lock()
	if plain != nil {
		s.ln = plain
	}
	if secure != nil {
		s.tlsLn = &tlsListener{Listener: secure, cfg: s.tls.listenerConfig(), log: s.log}
		if s.cfg.TLS.Cluster || plain == nil {
			peerLn = secure
		}
	}
	s.mu.Unlock()
	s.replica.SetAddr(s.cfg.advertised(peerLn.Addr().String()))
	s.peers.SetAddr(s.cfg.advertised(peerLn.Addr().String()))
	s.logBanner(plain, secure)
	s.replica.Start(s.peers)
	if s.replica.SoleVoter() {
		// A lone node elects itself within a tick; accept clients once it
		// has, so the first PUBLISH and history reads see a working node.
		// (Only then: peers share this port, so a member of a cluster
		// must not wait for a leader before it lets them in.)
		s.replica.WaitReady(2 * time.Second)
	}
	served := make(chan error, 2)
	if plain != nil {
		s.log.Logf(logging.Info, "node", "Listening on %s", plain.Addr())
		go func() { served <- s.acceptLoop(s.ln) }()
	}
	if secure != nil {
		s.log.Logf(logging.Info, "node", "Listening for TLS on %s", secure.Addr())
		go func() { served <- s.acceptLoop(s.tlsLn) }()
	}
	err := <-served
	if s.closed.Load() {
		// Closed (Close, Shutdown, the SHUTDOWN command): return once the
		// log is closed, so the caller may exit.
		<-s.stopped
		return nil
	}
	return err
}

// Addr is the address clients connect to without TLS.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// TLSAddr is the address clients connect to with TLS (nil: none).
func (s *Server) TLSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Close stops accepting, disconnects every client and closes the log.
// During a graceful Shutdown it waits for that instead.
func (s *Server) Close() error {
	if s.draining.Load() {
		s.shutOnce.Do(func() {}) // returns once the running Shutdown has
		return s.shutErr
	}
	return s.stop(0)
}

// stop closes the listener, lets clients write what is queued for them
// for up to grace, closes them, then stops the replica and the log. A
// second stop waits for the first to finish.
func (s *Server) stop(grace time.Duration) error {
	if !s.closed.CompareAndSwap(false, true) {
		<-s.stopped
		return nil
	}
	defer close(s.stopped)
	// Clients first, then the listeners and the connections that have
	// not sent a request yet.
	s.finishClients(grace)
	s.mu.Lock()
	ln, tlsLn := s.ln, s.tlsLn
	for cc := range s.conns {
		cc.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if tlsLn != nil {
		tlsLn.Close()
	}
	s.closeMetrics()
	return s.shutdown()
}

// ErrLastVoter is returned by Leave on the cluster's only voter: there
// is no one to hand the cluster to (stop it instead; its log stays).
var ErrLastVoter = replica.ErrLastVoter

// Leave removes this node from the cluster gracefully, as CLUSTER LEAVE
// does, for a program that runs the node in-process (ordo peer's /quit):
// a leader first hands its leadership over, then the removal is
// committed. The node keeps serving clients until Close.
func (s *Server) Leave() error {
	if err := s.replica.Leave(s.leaveTimeout()); err != nil {
		return err
	}
	s.log.Logf(logging.Info, "membership", "Left the cluster")
	return nil
}

// leaveTimeout bounds a graceful leave: a hand-over and a commit.
func (s *Server) leaveTimeout() time.Duration { return 4*s.cfg.LeaderTimeout + 5*time.Second }

// shutdown stops the replica (which closes the peer links) and the log.
func (s *Server) shutdown() error {
	// Close the links even if the replica never started.
	defer s.peers.Close()
	return s.replica.Stop()
}

// acceptLoop accepts connections on ln until it is closed, serving each
// on a goroutine of its own.
func (s *Server) acceptLoop(ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors, say: back off as net/http does
			// rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Logf(logging.Warn, "node", "Accept: %v; retrying in %v", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		cc := newClientConn(nc)
		if s.accept(cc) {
			go s.serveConn(cc)
		}
	}
}

// accept enforces maxclients with Redis's error, and tracks the
// connection until its first request.
func (s *Server) accept(cc *clientConn) bool {
	s.mu.Lock()
	n := len(s.clients)
	closed := s.closed.Load()
	if !closed {
		s.conns[cc] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		s.refuseDraining(cc)
		return false
	}
	if n >= s.limits.Load().MaxClients {
		s.untrack(cc)
		s.stats.rejected.Add(1)
		// A read deadline too: on the TLS port this write first
		// completes the handshake.
		cc.SetDeadline(time.Now().Add(time.Second))
		cc.Write([]byte("-ERR max number of clients reached\r\n"))
		cc.Close()
		return false
	}
	return true
}

func (s *Server) untrack(cc *clientConn) {
	s.mu.Lock()
	delete(s.conns, cc)
	s.mu.Unlock()
}

// serveConn serves a connection for its whole life: its first request
// tells a cluster peer (handed to the peer transport) from a client, whose
// requests this goroutine then reads and executes while another writes
// the replies (client.writeLoop).
func (s *Server) serveConn(cc *clientConn) {
	rd := newReqReader(cc, &s.stats.netInputBytes, requestLimits{
		limits: &s.limits,
		budget: s.reqBudget,
		free:   freeRequestBytes,
		cancel: cc.closed,
		auth:   s.authRequired, // not authenticated yet
	})
	defer rd.close()
	args, err := rd.next()
	s.untrack(cc)
	if err != nil {
		if msg := protocolError(err); msg != "" {
			cc.SetWriteDeadline(time.Now().Add(time.Second))
			cc.Write([]byte("-ERR " + msg + "\r\n"))
		}
		cc.Close()
		return
	}
	if peer.IsHandshake(args[0]) {
		// A peer link is not a client: the transport authenticates it and
		// reads its frames from the raw connection. (The dialing peer
		// sends nothing more before it is answered, so the reader holds
		// nothing beyond this request.)
		s.peers.Accept(cc.Conn, args)
		return
	}
	if s.draining.Load() || s.closed.Load() {
		s.refuseDraining(cc)
		return
	}
	if s.refuseUnprotected(cc) {
		return
	}
	c := &client{
		id:      s.nextID.Add(1),
		srv:     s,
		conn:    cc,
		addr:    cc.RemoteAddr().String(),
		laddr:   cc.LocalAddr().String(),
		created: time.Now(),
		quit:    make(chan struct{}),
	}
	c.out.wake = make(chan struct{}, 1)
	c.out.drained = make(chan struct{}, 1)
	c.user.Store(s.users.Default())
	c.authed = s.defaultAuthenticated()
	c.lastActive.Store(time.Now().UnixNano())
	rd.lim.auth = func() bool { return !c.authed && s.authRequired() }
	s.mu.Lock()
	s.clients[c.id] = c
	s.mu.Unlock()
	s.stats.connections.Add(1)
	go c.writeLoop()
	defer s.dropClient(c)

	for {
		if !s.execute(c, args) {
			return
		}
		if args, err = rd.next(); err != nil {
			if msg := protocolError(err); msg != "" {
				c.write([]byte("-ERR "+msg+"\r\n"), false)
				c.finish()
				return
			}
			c.close()
			return
		}
	}
}

// dropClient forgets a client: its subscriptions are gone before this
// returns, so later commands of other clients never see them.
func (s *Server) dropClient(c *client) {
	s.reg.dropClient(c)
	if c.monitoring.Load() {
		s.monitors.remove(c)
	}
	s.mu.Lock()
	delete(s.clients, c.id)
	s.mu.Unlock()
	select {
	case <-c.quit:
	default:
		// Let the writer flush what is queued, then close.
		c.finish()
		go func() {
			select {
			case <-c.quit:
			case <-time.After(writeTimeout):
				c.close()
			}
		}()
	}
}

// protocolError turns a read error into the text Redis sends before
// closing a connection, or "" for a plain disconnect.
func protocolError(err error) string {
	var le *limitError
	if errors.As(err, &le) {
		return le.msg
	}
	return ""
}

func (s *Server) allClients() []*client {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		cs = append(cs, c)
	}
	return cs
}

func newRunID() string {
	var b [20]byte
	t := uint64(time.Now().UnixNano())
	for i := range b {
		t ^= t << 13
		t ^= t >> 7
		t ^= t << 17
		b[i] = byte(t)
	}
	return fmt.Sprintf("%x", b)
}
