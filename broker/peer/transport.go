// Package peer is the cluster transport: authenticated, long-lived links
// between members that carry consensus messages and the few membership
// requests that are not consensus messages (JOIN, JOIN_ACK, removal).
//
// Members share the client port (the TLS one with tls_cluster, tls.go).
// A node dials each peer, authenticates with the cluster secret
// (handshake.go), and streams length-prefixed
// consensus messages one way; answers travel on the receiver's own link
// back. Once authenticated a link is not a client connection: it is not
// counted or listed as a client, and its frames are parsed once, here.
//
// It promises: Send never blocks (a full queue drops, the core
// retransmits); a message reaches the handler only from a node that
// proved it knows the cluster secret and belongs to the same cluster (or
// is joining one), and only with From set to that node; a cut link is
// redialled with a back-off bounded by the heartbeat interval, so a
// healed link is back within a few heartbeats. Which nodes take part in
// consensus is the core's business: it ignores non-members' messages.
//
// The set of links follows the membership: SetPeers adds links to new
// members and closes those to removed ones.
package peer

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/consensus"
)

const (
	queueLen     = 8192    // frames queued per peer before Send drops
	maxBatch     = 4 << 20 // bytes written per system call, at most
	maxFrame     = 1 << 30 // the largest frame a peer may send
	handshakeTTL = 2 * time.Second
)

// Config is the transport's view of the cluster.
type Config struct {
	ID     uint64
	Peers  map[uint64]string // the other members' ids and addresses, initially (see SetPeers)
	Secret []byte            // the cluster secret; empty on a loopback-only cluster
	// HeartbeatInterval bounds the redial back-off; LeaderTimeout the dial
	// timeout, so a reachable peer is found again within a leader timeout.
	HeartbeatInterval time.Duration
	LeaderTimeout     time.Duration
	Log               logging.Node
	// TLS, if set, runs the links over TLS (tls_cluster): it returns the
	// configuration to dial with (the node's certificate, the CA),
	// asked per dial so that reloaded certificates are used. Accept then
	// refuses a link that did not come over TLS with a certificate that
	// CA signed (tls.go).
	TLS func() *tls.Config
}

// Handler receives messages from authenticated peers. Receive may block
// (back-pressure on the link) until cancel is closed; Control must not
// block. A control message that came in on a link the sender dialled can
// be answered on it with reply (nil otherwise): a node that is not a
// member yet is reachable no other way. ClusterID is this node's
// cluster ("" while it is joining one).
type Handler interface {
	Receive(m consensus.Message, cancel <-chan struct{})
	Control(from uint64, c Control, reply func(Control))
	ClusterID() string
	// Dialled tells where a node that dialled this one says it can be
	// reached (the replica links back to a leader it has not yet learned
	// from the configuration: a joining node's case).
	Dialled(from uint64, addr string)
}

// Control is a membership request between nodes that is not a consensus
// message. It travels as JSON in its own frame type: rare and small.
type Control struct {
	Type    string `json:"type"`              // ControlJoin, ControlJoinAck, ControlRemove
	ID      uint64 `json:"id"`                // the node joining, or to remove
	Addr    string `json:"addr,omitempty"`    // join: where members reach it
	Cluster string `json:"cluster,omitempty"` // join: the joiner's cluster ("" when new); join ack: the cluster joined
	Leader  uint64 `json:"leader,omitempty"`  // join ack: the leader that added it
	Error   string `json:"error,omitempty"`   // join ack: why the join was refused
	// History (probe ack): the responder's log holds entries of the
	// cluster (it has sequenced something).
	History bool `json:"history,omitempty"`
}

// Control types.
const (
	ControlJoin    = "join"
	ControlJoinAck = "join_ack"
	ControlRemove  = "remove"
	// ControlRemoveAck answers a removal request once it is committed:
	// a node removing itself no longer hears the commit otherwise.
	ControlRemoveAck = "remove_ack"
	// ControlProbe asks a member whether the cluster has a history; a node
	// that started with an empty disk sends it before taking part, and
	// ControlProbeAck answers (Cluster, History). See replica/wiped.go.
	ControlProbe    = "probe"
	ControlProbeAck = "probe_ack"
)

// Transport sends to and receives from the cluster's other members.
type Transport struct {
	cfg       Config
	h         Handler
	linksMu   sync.RWMutex
	links     map[consensus.NodeID]*link
	closed    chan struct{}
	wg        sync.WaitGroup
	refusals  refusalLog
	closeOnce sync.Once

	mu      sync.Mutex
	inbound map[net.Conn]bool
	addr    string // where this node is reached (SetAddr)
}

// SetAddr sets the address this node announces when it dials (once its
// listener is known).
func (t *Transport) SetAddr(addr string) {
	t.mu.Lock()
	t.addr = addr
	t.mu.Unlock()
}

// Addr is the address this node announces.
func (t *Transport) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

type link struct {
	id    consensus.NodeID
	addr  string
	queue chan frame // encoded by the link's writer, off the caller's loop
	stop  chan struct{}
}

// frame is one queued message: a consensus message, or a Control if ctl
// is set.
type frame struct {
	m   consensus.Message
	ctl *Control
}

// controlTag starts a control frame; a consensus message starts with its
// wire version, never this byte.
const controlTag = 'C'

// New starts one dialling link per peer.
func New(cfg Config, h Handler) *Transport {
	t := &Transport{
		cfg:     cfg,
		h:       h,
		links:   map[consensus.NodeID]*link{},
		closed:  make(chan struct{}),
		inbound: map[net.Conn]bool{},
	}
	t.SetPeers(cfg.Peers)
	return t
}

// SetPeers makes the links those to peers (id -> address): it dials new
// peers, redials a peer whose address changed, and closes links to peers
// no longer listed.
func (t *Transport) SetPeers(peers map[uint64]string) {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	select {
	case <-t.closed:
		return
	default:
	}
	for id, l := range t.links {
		if addr, ok := peers[uint64(id)]; !ok || addr != l.addr {
			close(l.stop)
			delete(t.links, id)
		}
	}
	for id, addr := range peers {
		if id == t.cfg.ID || addr == "" || t.links[consensus.NodeID(id)] != nil {
			continue
		}
		l := &link{id: consensus.NodeID(id), addr: addr, queue: make(chan frame, queueLen), stop: make(chan struct{})}
		t.links[l.id] = l
		t.wg.Add(1)
		go t.run(l)
	}
}

// Send queues messages for their peers; it never blocks. The messages are
// encoded later, by each link's writer: a catch-up batch of megabytes is
// not copied on the replica's loop. Their entries' data must not change
// (the store never changes an entry once written).
func (t *Transport) Send(msgs []consensus.Message) {
	t.linksMu.RLock()
	defer t.linksMu.RUnlock()
	for i := range msgs {
		if l := t.links[msgs[i].To]; l != nil {
			l.enqueue(frame{m: msgs[i]})
		}
	}
}

// SendControl queues a control message for peer to; false if there is no
// link to it.
func (t *Transport) SendControl(to uint64, c Control) bool {
	t.linksMu.RLock()
	defer t.linksMu.RUnlock()
	l := t.links[consensus.NodeID(to)]
	if l == nil {
		return false
	}
	l.enqueue(frame{ctl: &c})
	return true
}

func (l *link) enqueue(f frame) {
	select {
	case l.queue <- f:
	default: // full: drop, the core retransmits (and joins are retried)
	}
}

// appendFrame appends f as a length-prefixed frame.
func appendFrame(b []byte, f *frame) []byte {
	if f.ctl != nil {
		j, _ := json.Marshal(f.ctl) // (a struct of strings and numbers)
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(j)))
		b = append(b, controlTag)
		return append(b, j...)
	}
	// Encoded in place after a length filled in afterwards: an append
	// batch is copied once, into the link's write buffer.
	at := len(b)
	b = slices.Grow(b, 4+f.m.Size())
	b = f.m.AppendMarshal(append(b, 0, 0, 0, 0))
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// Close stops every link, outgoing and incoming, and waits for them.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.linksMu.Lock()
		close(t.closed)
		t.linksMu.Unlock()
		t.mu.Lock()
		for c := range t.inbound {
			c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return nil
}

// run keeps one connection to a peer open and drains its queue into it,
// many frames per write.
func (t *Transport) run(l *link) {
	defer t.wg.Done()
	maxBackoff := max(t.cfg.HeartbeatInterval, 10*time.Millisecond)
	backoff := 10 * time.Millisecond
	failures := 0
	for {
		select {
		case <-t.closed:
			return
		case <-l.stop:
			return
		default:
		}
		conn, err := t.dial(l)
		if err != nil {
			failures++
			if failures == 1 || failures%100 == 0 || errors.Is(err, errOtherCluster) && failures%10 == 0 {
				t.cfg.Log.Logf(logging.Warn, "node", "Failed to connect to node_%d at %s: %v", l.id, l.addr, err)
			}
			select {
			case <-t.closed:
				return
			case <-l.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if failures > 0 {
			t.cfg.Log.Logf(logging.Info, "node", "Connected to node_%d at %s", l.id, l.addr)
		}
		failures, backoff = 0, 10*time.Millisecond
		t.pump(l, conn)
		conn.Close()
	}
}

func (t *Transport) dial(l *link) (net.Conn, error) {
	timeout := min(max(t.cfg.LeaderTimeout, 100*time.Millisecond), time.Second)
	conn, err := net.DialTimeout("tcp", l.addr, timeout)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTTL))
	if t.cfg.TLS != nil {
		if conn, err = dialTLS(conn, l.addr, t.cfg.TLS()); err != nil {
			return nil, err
		}
	}
	if err := dialHandshake(conn, t.cfg.Secret, t.cfg.ID, uint64(l.id), t.h.ClusterID(), t.Addr()); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return conn, nil
}

// pump writes queued frames until the link fails or the transport closes.
// Messages queued while the link was down are sent first: they are at
// worst stale, and the core ignores stale messages.
func (t *Transport) pump(l *link, conn net.Conn) {
	dead := make(chan struct{})
	go func() {
		// The peer writes only answers to control messages (a refused
		// JOIN); a read error means it closed the link.
		defer close(dead)
		rd := bufio.NewReaderSize(conn, 4096)
		for {
			f, err := readFrame(rd)
			if err != nil {
				return
			}
			if f.ctl != nil {
				t.h.Control(uint64(l.id), *f.ctl, nil)
			}
		}
	}()
	var buf []byte
	for {
		select {
		case <-t.closed:
			return
		case <-l.stop:
			return
		case <-dead:
			return
		case f := <-l.queue:
			buf = appendFrame(buf[:0], &f)
		drain:
			for len(buf) < maxBatch {
				select {
				case f := <-l.queue:
					buf = appendFrame(buf, &f)
				default:
					break drain
				}
			}
			// A peer that stops reading (paused, or a link that silently
			// dropped) is given up on after one leader timeout: the link is
			// redialled rather than left stuck behind a full socket.
			conn.SetWriteDeadline(time.Now().Add(max(t.cfg.LeaderTimeout, time.Second)))
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}
}

// Accept serves an incoming connection whose first command was ORDO.PEER
// (args): it authenticates the dialer and then reads its frames until the
// connection ends. It owns conn and closes it. The reader that read the
// first command must hold nothing beyond it (the dialer waits for the
// challenge before it writes again).
func (t *Transport) Accept(conn net.Conn, args [][]byte) {
	defer conn.Close()
	select {
	case <-t.closed:
		return
	default:
	}
	t.mu.Lock()
	t.inbound[conn] = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, conn)
		t.mu.Unlock()
	}()
	rd := bufio.NewReaderSize(conn, 64<<10)
	conn.SetDeadline(time.Now().Add(handshakeTTL))
	var from uint64
	var addr string
	var err error
	if t.cfg.TLS != nil {
		err = verifyPeerCert(conn, t.cfg.TLS().RootCAs)
	}
	switch {
	case err != nil:
		err = refuseHandshake(conn, err.Error())
	case len(t.cfg.Secret) == 0 && !loopback(conn.RemoteAddr()):
		// Without a secret anyone could speak as a peer: only processes on
		// this machine may (a node that listens beyond loopback without a
		// secret is a lone node; a cluster there must have one).
		err = refuseHandshake(conn, "this node has no cluster secret, so it accepts peer links from loopback only (set --cluster-secret on every member)")
	default:
		from, addr, err = acceptHandshake(conn, rd, args, t.cfg.Secret, t.cfg.ID, t.h.ClusterID())
	}
	if err != nil {
		if ok, suppressed := t.refusals.allow(time.Now()); ok {
			more := ""
			if suppressed > 0 {
				more = fmt.Sprintf(" (%d more refused since the last report)", suppressed)
			}
			t.cfg.Log.Logf(logging.Warn, "node", "Refused peer handshake from %s: %v%s", conn.RemoteAddr(), err, more)
		}
		return
	}
	conn.SetDeadline(time.Time{})
	if addr != "" {
		t.h.Dialled(from, addr)
	}
	cancel := make(chan struct{})
	defer close(cancel)
	var wmu sync.Mutex
	reply := func(c Control) {
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		conn.Write(appendFrame(nil, &frame{ctl: &c}))
	}
	for {
		f, err := readFrame(rd)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.cfg.Log.Logf(logging.Warn, "node", "Closing link from node_%d: %v", from, err)
			}
			return
		}
		if f.ctl != nil {
			t.h.Control(from, *f.ctl, reply)
			continue
		}
		if uint64(f.m.From) != from {
			t.cfg.Log.Logf(logging.Warn, "node", "Closing link from node_%d: it sent a message as node_%d", from, f.m.From)
			return
		}
		t.h.Receive(f.m, cancel)
	}
}

func readFrame(rd *bufio.Reader) (frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return frame{}, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		return frame{}, err
	}
	if n > 0 && b[0] == controlTag {
		var c Control
		if n > 64<<10 || json.Unmarshal(b[1:], &c) != nil {
			return frame{}, errors.New("malformed control message")
		}
		return frame{ctl: &c}, nil
	}
	m, err := consensus.UnmarshalMessageOwned(b) // (b is the frame's own: no second copy)
	if err != nil {
		return frame{}, fmt.Errorf("malformed message: %w", err)
	}
	return frame{m: m}, nil
}

func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
