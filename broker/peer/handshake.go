package peer

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"
)

// The handshake, on a connection to the peer's client port. The dialer
// (from) opens with a Redis command, so a node's ordinary command parser
// can recognise it:
//
//	dialer → ORDO.PEER 3 <from-id> <to-id> <nonceD> <clusterD> <addrD>
//	responder → +CHALLENGE <nonceR> <macR> <clusterR>
//	dialer → <macD>
//	responder → +OK
//
// Nonces are 16 random bytes, hex; macR = HMAC-SHA256(secret, "ordo-peer-3
// responder" from to nonceD nonceR clusterD clusterR addrD) and macD the
// same with "dialer". addrD is where the dialer can be reached ("-" if
// unknown): a node that is joining is reached at it by the leader before
// the configuration tells anyone its address. Each side proves it knows the cluster secret over the
// other's fresh nonce, so the secret never crosses the wire and a
// recorded handshake cannot be replayed. A cluster is the id a cluster
// draws when it forms ("-" for a node still joining one): two nodes of
// different clusters refuse each other, both saying why. Then the dialer
// streams length-prefixed frames; the responder writes only answers to
// control messages (a refused JOIN).
//
// The handshake authenticates; it does not encrypt. With tls_cluster it
// runs inside TLS (tls.go).
const (
	handshakeCommand = "ORDO.PEER"
	protoVersion     = "3"
	nonceLen         = 16
)

var (
	errRefused      = errors.New("peer handshake refused")
	errOtherCluster = errors.New("peer belongs to another cluster")
)

// noCluster stands for the cluster of a node that has not joined one yet.
const noCluster = "-"

func clusterOrNone(c string) string {
	if c == "" {
		return noCluster
	}
	return c
}

// otherCluster reports whether two nodes' clusters are known and differ.
func otherCluster(a, b string) bool { return a != noCluster && b != noCluster && a != b }

// IsHandshake reports whether a connection's first command is a peer
// handshake (any version: old versions get a clear refusal).
func IsHandshake(name []byte) bool { return strings.EqualFold(string(name), handshakeCommand) }

func newNonce() string {
	b := make([]byte, nonceLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func mac(secret []byte, role string, from, to uint64, nonceD, nonceR, clusterD, clusterR, addrD string) string {
	h := hmac.New(sha256.New, secret)
	fmt.Fprintf(h, "ordo-peer-%s %s %d %d %s %s %s %s %s", protoVersion, role, from, to, nonceD, nonceR, clusterD, clusterR, addrD)
	return hex.EncodeToString(h.Sum(nil))
}

// dialHandshake authenticates an outgoing link; the connection's deadline
// bounds it.
func dialHandshake(conn net.Conn, secret []byte, from, to uint64, cluster, addr string) error {
	nonceD, clusterD, addrD := newNonce(), clusterOrNone(cluster), clusterOrNone(addr)
	hello := redcon.AppendArray(nil, 7)
	for _, a := range []string{handshakeCommand, protoVersion, strconv.FormatUint(from, 10), strconv.FormatUint(to, 10), nonceD, clusterD, addrD} {
		hello = redcon.AppendBulkString(hello, a)
	}
	if _, err := conn.Write(hello); err != nil {
		return err
	}
	rd := bufio.NewReaderSize(conn, 256)
	line, err := readLine(rd)
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if strings.Contains(line, "another cluster") {
		return fmt.Errorf("%w: %s", errOtherCluster, strings.TrimPrefix(line, "-ERR peer handshake refused: "))
	}
	if len(f) != 4 || f[0] != "+CHALLENGE" || len(f[1]) != 2*nonceLen {
		return fmt.Errorf("%w: %s", errRefused, line)
	}
	clusterR := f[3]
	if !hmac.Equal([]byte(f[2]), []byte(mac(secret, "responder", from, to, nonceD, f[1], clusterD, clusterR, addrD))) {
		return fmt.Errorf("%w: node_%d does not know the cluster secret (check --cluster-secret on both nodes)", errRefused, to)
	}
	if otherCluster(clusterD, clusterR) {
		return fmt.Errorf("%w: node_%d belongs to cluster %s, this node (node_%d) to cluster %s; a node joins one cluster only (start it with an empty --data-dir to join another)", errOtherCluster, to, clusterR, from, clusterD)
	}
	if _, err := io.WriteString(conn, mac(secret, "dialer", from, to, nonceD, f[1], clusterD, clusterR, addrD)+"\r\n"); err != nil {
		return err
	}
	if line, err = readLine(rd); err != nil {
		return err
	}
	if line != "+OK" {
		return fmt.Errorf("%w: %s", errRefused, line)
	}
	return nil
}

// acceptHandshake authenticates an incoming link whose first command (args)
// was ORDO.PEER, reading the rest from rd, and returns the peer's id and
// address ("" if it gave none). cluster is this node's cluster ("" while
// joining). The connection's deadline bounds it.
func acceptHandshake(conn net.Conn, rd *bufio.Reader, args [][]byte, secret []byte, self uint64, cluster string) (uint64, string, error) {
	refuse := func(why string) (uint64, string, error) { return 0, "", refuseHandshake(conn, why) }
	if len(args) != 7 || string(args[1]) != protoVersion {
		return refuse("unsupported handshake (every node must run the same ordo version)")
	}
	from, err1 := strconv.ParseUint(string(args[2]), 10, 64)
	to, err2 := strconv.ParseUint(string(args[3]), 10, 64)
	nonceD, clusterD, clusterR, addrD := string(args[4]), string(args[5]), clusterOrNone(cluster), string(args[6])
	if err1 != nil || err2 != nil || from == 0 || len(nonceD) != 2*nonceLen || len(clusterD) > 64 || len(addrD) > 255 ||
		strings.ContainsAny(clusterD+addrD, " \r\n") {
		return refuse("malformed handshake")
	}
	if to != self || from == self {
		return refuse(fmt.Sprintf("this is not node_%d, or node_%d is this node (check --peers, --seed and --id)", to, from))
	}
	if otherCluster(clusterD, clusterR) {
		return refuse(fmt.Sprintf("node_%d belongs to another cluster (%s); this node (node_%d) belongs to cluster %s", from, clusterD, self, clusterR))
	}
	nonceR := newNonce()
	if _, err := io.WriteString(conn, "+CHALLENGE "+nonceR+" "+mac(secret, "responder", from, to, nonceD, nonceR, clusterD, clusterR, addrD)+" "+clusterR+"\r\n"); err != nil {
		return 0, "", err
	}
	// The dialer sends nothing more before it has read the challenge, so
	// nothing of it is buffered in the command reader that read args; rd
	// then goes on to read the frames.
	line, err := readLine(rd)
	if err != nil {
		return 0, "", err
	}
	if !hmac.Equal([]byte(line), []byte(mac(secret, "dialer", from, to, nonceD, nonceR, clusterD, clusterR, addrD))) {
		return refuse("wrong cluster secret")
	}
	if _, err := io.WriteString(conn, "+OK\r\n"); err != nil {
		return 0, "", err
	}
	if addrD == noCluster {
		addrD = ""
	}
	return from, addrD, nil
}

// refuseHandshake tells the dialer why it is refused.
func refuseHandshake(conn net.Conn, why string) error {
	io.WriteString(conn, "-ERR peer handshake refused: "+why+"\r\n")
	return fmt.Errorf("%w: %s", errRefused, why)
}

// readLine reads one short CRLF-terminated line.
func readLine(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// refusalLog rate-limits the log lines of refused handshakes: someone
// probing the port must not flood the log.
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many refusals were not logged
// since the last line.
func (r *refusalLog) allow(now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return true, n
}
