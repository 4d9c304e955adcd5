package resp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Dialer opens connections the way a Redis client does before its first
// command: TCP, then TLS if configured, then AUTH if a password is
// given. ordo's own tools (ping, bench) dial with it, so a node with a
// password, users or TLS only is reachable by all of them alike.
type Dialer struct {
	// Timeout bounds connecting, the TLS handshake and AUTH together
	// (0: no limit).
	Timeout time.Duration
	// TLS, if not nil, makes the connection TLS. An empty ServerName is
	// taken from the address dialled.
	TLS *tls.Config
	// User and Password are sent as AUTH [user] password when Password is
	// set ("" user: the default user, AUTH password).
	User, Password string
}

// ErrAuth marks an AUTH the server refused (errors.Is).
var ErrAuth = errors.New("authentication failed")

// Dial connects to addr. Nothing the server sent is left unread, so the
// caller may wrap the connection in its own reader.
func (d Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	if d.TLS != nil {
		cfg := d.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s failed: %w", addr, err)
		}
		nc = tc
	}
	if d.Password != "" {
		if err := d.auth(nc, addr); err != nil {
			nc.Close()
			return nil, err
		}
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

// DialConn is Dial wrapped in a Conn whose reads and writes are bounded
// by timeout.
func (d Dialer) DialConn(ctx context.Context, addr string, timeout time.Duration) (*Conn, error) {
	nc, err := d.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return NewConn(nc, timeout), nil
}

func (d Dialer) auth(nc net.Conn, addr string) error {
	args := []string{"AUTH", d.Password}
	if d.User != "" {
		args = []string{"AUTH", d.User, d.Password}
	}
	if _, err := nc.Write(AppendCommandString(nil, args...)); err != nil {
		if te := TLSError(addr, err); te != err {
			return te
		}
		return fmt.Errorf("cannot send AUTH to %s: %w", addr, err)
	}
	// A small reader, and a check that it holds nothing beyond the reply:
	// the caller reads the connection from here on.
	rd := bufio.NewReaderSize(nc, 512)
	v, err := Read(rd)
	if err != nil {
		if te := TLSError(addr, err); te != err {
			return te
		}
		return fmt.Errorf("no reply to AUTH from %s: %w", addr, err)
	}
	if e := v.Err(); e != nil {
		return fmt.Errorf("%w: %v", ErrAuth, e)
	}
	if rd.Buffered() > 0 {
		return fmt.Errorf("%s sent more than the reply to AUTH", addr)
	}
	return nil
}

// TLSError says "TLS handshake with addr failed" for an error the TLS
// layer reports, and returns other errors as they are. With TLS 1.3 a
// server refuses a client certificate after the client's side of the
// handshake is done, so the refusal arrives as an alert on the first
// read: callers pass read errors through here too.
func TLSError(addr string, err error) error {
	var oe *net.OpError
	var re tls.RecordHeaderError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &oe) && oe.Op == "remote error",
		errors.As(err, &re), errors.As(err, &ce):
	default:
		return err
	}
	return fmt.Errorf("TLS handshake with %s failed: %w", addr, err)
}
