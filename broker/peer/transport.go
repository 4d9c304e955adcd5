// Package peer is the cluster transport: authenticated, long-lived links
// between members that carry consensus messages.
//
// Members share the client port. A node dials each peer, authenticates
// with the cluster secret (handshake.go), and streams length-prefixed
// consensus messages one way; answers travel on the receiver's own link
// back. Once authenticated a link is not a client connection: it is not
// counted or listed as a client, and its frames are parsed once, here.
//
// It promises: Send never blocks (a full queue drops, the core
// retransmits); a message reaches the handler only from an authenticated
// member and only with From set to that member; a cut link is redialled
// with a back-off bounded by the heartbeat interval, so a healed link is
// back within a few heartbeats.
package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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
	Peers  map[uint64]string // every other member's id and address
	Secret []byte            // the cluster secret; empty on a loopback-only cluster
	// HeartbeatInterval bounds the redial back-off; LeaderTimeout the dial
	// timeout, so a reachable peer is found again within a leader timeout.
	HeartbeatInterval time.Duration
	LeaderTimeout     time.Duration
	Log               logging.Node
}

// Handler receives messages from authenticated peers. Receive may block
// (back-pressure on the link) until cancel is closed.
type Handler interface {
	Receive(m consensus.Message, cancel <-chan struct{})
}

// Transport sends to and receives from the cluster's other members.
type Transport struct {
	cfg       Config
	h         Handler
	links     map[consensus.NodeID]*link
	closed    chan struct{}
	wg        sync.WaitGroup
	refusals  refusalLog
	closeOnce sync.Once

	mu      sync.Mutex
	inbound map[net.Conn]bool
}

type link struct {
	id    consensus.NodeID
	addr  string
	queue chan consensus.Message // encoded by the link's writer, off the caller's loop
}

// New starts one dialling link per peer.
func New(cfg Config, h Handler) *Transport {
	t := &Transport{
		cfg:     cfg,
		h:       h,
		links:   map[consensus.NodeID]*link{},
		closed:  make(chan struct{}),
		inbound: map[net.Conn]bool{},
	}
	for id, addr := range cfg.Peers {
		if id == cfg.ID {
			continue
		}
		l := &link{id: consensus.NodeID(id), addr: addr, queue: make(chan consensus.Message, queueLen)}
		t.links[l.id] = l
		t.wg.Add(1)
		go t.run(l)
	}
	return t
}

// Send queues messages for their peers; it never blocks. The messages are
// encoded later, by each link's writer: a catch-up batch of megabytes is
// not copied on the replica's loop. Their entries' data must not change
// (the store never changes an entry once written).
func (t *Transport) Send(msgs []consensus.Message) {
	for i := range msgs {
		l := t.links[msgs[i].To]
		if l == nil {
			continue
		}
		select {
		case l.queue <- msgs[i]:
		default: // full: drop, the core retransmits
		}
	}
}

// appendFrame appends m as a length-prefixed frame.
func appendFrame(b []byte, m *consensus.Message) []byte {
	enc := m.Marshal()
	b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
	return append(b, enc...)
}

// Close stops every link, outgoing and incoming, and waits for them.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
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
		default:
		}
		conn, err := t.dial(l)
		if err != nil {
			failures++
			if failures == 1 || failures%100 == 0 {
				t.cfg.Log.Logf(logging.Warn, "node", "Failed to connect to node_%d at %s: %v", l.id, l.addr, err)
			}
			select {
			case <-t.closed:
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
	if err := dialHandshake(conn, t.cfg.Secret, t.cfg.ID, uint64(l.id)); err != nil {
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
		// The peer never writes after the handshake: a read returning
		// means it closed the link.
		var b [1]byte
		conn.Read(b[:])
		close(dead)
	}()
	var buf []byte
	for {
		select {
		case <-t.closed:
			return
		case <-dead:
			return
		case m := <-l.queue:
			buf = appendFrame(buf[:0], &m)
		drain:
			for len(buf) < maxBatch {
				select {
				case m := <-l.queue:
					buf = appendFrame(buf, &m)
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
	from, err := acceptHandshake(conn, rd, args, t.cfg.Secret, t.cfg.ID, t.isMember)
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
	cancel := make(chan struct{})
	defer close(cancel)
	for {
		m, err := readFrame(rd)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.cfg.Log.Logf(logging.Warn, "node", "Closing link from node_%d: %v", from, err)
			}
			return
		}
		if uint64(m.From) != from {
			t.cfg.Log.Logf(logging.Warn, "node", "Closing link from node_%d: it sent a message as node_%d", from, m.From)
			return
		}
		t.h.Receive(m, cancel)
	}
}

func readFrame(rd *bufio.Reader) (consensus.Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return consensus.Message{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return consensus.Message{}, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		return consensus.Message{}, err
	}
	m, err := consensus.UnmarshalMessage(b)
	if err != nil {
		return m, fmt.Errorf("malformed message: %w", err)
	}
	return m, nil
}

func (t *Transport) isMember(id uint64) bool {
	_, ok := t.cfg.Peers[id]
	return ok && id != t.cfg.ID
}
