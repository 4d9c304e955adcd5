package broker

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ordo-broker/ordo/consensus"
	"github.com/tidwall/redcon"
)

// Nodes talk to each other on the same port clients use. A node dials each
// peer and opens with
//
//	ORDO.PEER <cluster-token> <from-id>
//
// then streams `ORDO.MSG <binary consensus message>` frames one way; the
// answers travel on the receiver's own connection back. The token is a hash
// of the membership, so a client (or a node of another cluster) cannot
// inject consensus traffic by accident: without the handshake the ORDO.*
// commands do not exist for it.

const (
	peerQueueLen   = 8192
	peerMaxBatch   = 4 << 20
	dialBackoffMax = time.Second
)

// clusterToken identifies a membership: every node of one cluster computes
// the same token from its peer ids (addresses may differ per node, e.g.
// behind NAT or a proxy).
func clusterToken(peers []Peer) string {
	ps := append([]Peer(nil), peers...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	var b strings.Builder
	b.WriteString("ordo-cluster;")
	for _, p := range ps {
		fmt.Fprintf(&b, "%d;", p.ID)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// tcpTransport sends consensus messages to peers over long-lived
// connections, one writer goroutine per peer. Sending never blocks the
// driver loop: when a peer's queue is full, messages are dropped (the core
// tolerates loss and retransmits).
type tcpTransport struct {
	s      *Server
	token  string
	peers  map[consensus.NodeID]*peerLink
	closed chan struct{}
	wg     sync.WaitGroup
}

type peerLink struct {
	id    consensus.NodeID
	addr  string
	queue chan []byte
}

func newTransport(s *Server) *tcpTransport {
	t := &tcpTransport{
		s:      s,
		token:  clusterToken(s.cfg.Peers),
		peers:  map[consensus.NodeID]*peerLink{},
		closed: make(chan struct{}),
	}
	for _, p := range s.cfg.Peers {
		if p.ID == s.cfg.ID {
			continue
		}
		l := &peerLink{id: consensus.NodeID(p.ID), addr: p.Addr, queue: make(chan []byte, peerQueueLen)}
		t.peers[l.id] = l
		t.wg.Add(1)
		go t.run(l)
	}
	return t
}

// Send implements transport.
func (t *tcpTransport) Send(msgs []consensus.Message) {
	for i := range msgs {
		l := t.peers[msgs[i].To]
		if l == nil {
			continue
		}
		frame := appendFrame(nil, msgs[i].Marshal())
		select {
		case l.queue <- frame:
		default: // full: drop, the core retransmits
		}
	}
}

func appendFrame(b, msg []byte) []byte {
	return redcon.AppendBulk(append(b, "*2\r\n$8\r\nORDO.MSG\r\n"...), msg)
}

// Close stops every link.
func (t *tcpTransport) Close() error {
	close(t.closed)
	t.wg.Wait()
	return nil
}

// run keeps one connection to a peer open and drains its queue into it,
// many frames per write.
func (t *tcpTransport) run(l *peerLink) {
	defer t.wg.Done()
	backoff := 50 * time.Millisecond
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
			if failures == 1 || failures%50 == 0 {
				t.s.logf(levelWarn, "node", "Failed to connect to node_%d at %s: %v", l.id, l.addr, err)
			}
			select {
			case <-t.closed:
				return
			case <-time.After(backoff):
			}
			if backoff *= 2; backoff > dialBackoffMax {
				backoff = dialBackoffMax
			}
			continue
		}
		if failures > 0 {
			t.s.logf(levelInfo, "node", "Connected to node_%d at %s", l.id, l.addr)
		}
		failures, backoff = 0, 50*time.Millisecond
		t.pump(l, conn)
		conn.Close()
	}
}

func (t *tcpTransport) dial(l *peerLink) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", l.addr, time.Second)
	if err != nil {
		return nil, err
	}
	hello := redcon.AppendArray(nil, 3)
	hello = redcon.AppendBulkString(hello, "ORDO.PEER")
	hello = redcon.AppendBulkString(hello, t.token)
	hello = redcon.AppendBulkString(hello, strconv.FormatUint(t.s.cfg.ID, 10))
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(hello); err != nil {
		conn.Close()
		return nil, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, err
	}
	if line != "+OK\r\n" {
		conn.Close()
		return nil, fmt.Errorf("peer refused handshake: %s", strings.TrimSpace(line))
	}
	conn.SetDeadline(time.Time{})
	// The peer never writes on this connection again; a read returning
	// means it closed.
	return conn, nil
}

func (t *tcpTransport) pump(l *peerLink, conn net.Conn) {
	dead := make(chan struct{})
	go func() {
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
		case f := <-l.queue:
			buf = append(buf[:0], f...)
		drain:
			for len(buf) < peerMaxBatch {
				select {
				case f := <-l.queue:
					buf = append(buf, f...)
				default:
					break drain
				}
			}
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}
}

// peerCommand handles ORDO.PEER and ORDO.MSG; it reports false when the
// command is not an internode one (or the client has not shaken hands, in
// which case these commands do not exist).
func (s *Server) peerCommand(c *client, args [][]byte) bool {
	if len(args[0]) < 5 || !strings.EqualFold(string(args[0][:5]), "ordo.") {
		return false
	}
	name := strings.ToLower(string(args[0]))
	switch {
	case name == "ordo.msg" && c.peer != 0 && len(args) == 2:
		m, err := consensus.UnmarshalMessage(args[1])
		if err != nil || m.From != c.peer {
			s.logf(levelWarn, "node", "Dropping malformed message from node_%d: %v", c.peer, err)
			return true
		}
		select {
		case s.node.inbox <- m:
		case <-c.quit:
		case <-s.node.stopc:
		}
		return true
	case name == "ordo.peer" && len(args) == 3 && len(s.cfg.Peers) > 1:
		id, err := strconv.ParseUint(string(args[2]), 10, 64)
		if err != nil || string(args[1]) != clusterToken(s.cfg.Peers) || !s.isPeer(id) || id == s.cfg.ID {
			c.w.Error("ERR peer handshake refused: not a member of this cluster (check --peers on both nodes)")
			return true
		}
		c.peer = consensus.NodeID(id)
		c.name.Store(fmt.Sprintf("node_%d", id))
		c.w.OK()
		return true
	}
	return false
}

func (s *Server) isPeer(id uint64) bool {
	for _, p := range s.cfg.Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}
