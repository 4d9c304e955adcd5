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
//	dialer → ORDO.PEER 2 <from-id> <to-id> <nonceD>
//	responder → +CHALLENGE <nonceR> <macR>
//	dialer → <macD>
//	responder → +OK
//
// Nonces are 16 random bytes, hex; macR = HMAC-SHA256(secret, "ordo-peer-2
// responder" from to nonceD nonceR) and macD the same with "dialer". Each
// side proves it knows the cluster secret over the other's fresh nonce, so
// the secret never crosses the wire and a recorded handshake cannot be
// replayed. Then the dialer streams length-prefixed consensus messages;
// the responder never writes again.
//
// The links are authenticated, not encrypted: on an untrusted network put
// them behind TLS or a VPN.
const (
	handshakeCommand = "ORDO.PEER"
	protoVersion     = "2"
	nonceLen         = 16
)

var errRefused = errors.New("peer handshake refused")

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

func mac(secret []byte, role string, from, to uint64, nonceD, nonceR string) string {
	h := hmac.New(sha256.New, secret)
	fmt.Fprintf(h, "ordo-peer-%s %s %d %d %s %s", protoVersion, role, from, to, nonceD, nonceR)
	return hex.EncodeToString(h.Sum(nil))
}

// dialHandshake authenticates an outgoing link; the connection's deadline
// bounds it.
func dialHandshake(conn net.Conn, secret []byte, from, to uint64) error {
	nonceD := newNonce()
	hello := redcon.AppendArray(nil, 5)
	for _, a := range []string{handshakeCommand, protoVersion, strconv.FormatUint(from, 10), strconv.FormatUint(to, 10), nonceD} {
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
	if len(f) != 3 || f[0] != "+CHALLENGE" || len(f[1]) != 2*nonceLen {
		return fmt.Errorf("%w: %s", errRefused, line)
	}
	if !hmac.Equal([]byte(f[2]), []byte(mac(secret, "responder", from, to, nonceD, f[1]))) {
		return fmt.Errorf("%w: node_%d does not know the cluster secret (check --cluster-secret on both nodes)", errRefused, to)
	}
	if _, err := io.WriteString(conn, mac(secret, "dialer", from, to, nonceD, f[1])+"\r\n"); err != nil {
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
// was ORDO.PEER, reading the rest from rd, and returns the peer's id. isMember tells which ids may
// connect. The connection's deadline bounds it.
func acceptHandshake(conn net.Conn, rd *bufio.Reader, args [][]byte, secret []byte, self uint64, isMember func(uint64) bool) (uint64, error) {
	refuse := func(why string) (uint64, error) {
		io.WriteString(conn, "-ERR peer handshake refused: "+why+"\r\n")
		return 0, fmt.Errorf("%w: %s", errRefused, why)
	}
	if len(args) != 5 || string(args[1]) != protoVersion {
		return refuse("unsupported handshake (every node must run the same ordo version)")
	}
	from, err1 := strconv.ParseUint(string(args[2]), 10, 64)
	to, err2 := strconv.ParseUint(string(args[3]), 10, 64)
	nonceD := string(args[4])
	if err1 != nil || err2 != nil || len(nonceD) != 2*nonceLen {
		return refuse("malformed handshake")
	}
	if to != self || from == self || !isMember(from) {
		return refuse(fmt.Sprintf("node_%d is not a member of this cluster, or this is not node_%d (check --peers on both nodes)", from, to))
	}
	nonceR := newNonce()
	if _, err := io.WriteString(conn, "+CHALLENGE "+nonceR+" "+mac(secret, "responder", from, to, nonceD, nonceR)+"\r\n"); err != nil {
		return 0, err
	}
	// The dialer sends nothing more before it has read the challenge, so
	// nothing of it is buffered in the command reader that read args; rd
	// then goes on to read the frames.
	line, err := readLine(rd)
	if err != nil {
		return 0, err
	}
	if !hmac.Equal([]byte(line), []byte(mac(secret, "dialer", from, to, nonceD, nonceR))) {
		return refuse("wrong cluster secret")
	}
	if _, err := io.WriteString(conn, "+OK\r\n"); err != nil {
		return 0, err
	}
	return from, nil
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
