package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/ordo-broker/ordo/clients"
	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/urfave/cli/v2"
)

// The environment variables the client tools read their user and
// password from. A password on the command line shows in `ps` and in
// the shell's history (redis-cli warns about its -a for that reason);
// the environment or a secrets file read into it does not.
const (
	envUser = "ORDO_USER"
	envPass = "ORDO_PASS"
)

// clientFlags are redis-cli's connection options, shared by the tools
// that connect to a node as a client (ping, bench, chat).
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "user", EnvVars: []string{envUser}, Usage: "authenticate as this ACL user (AUTH user pass; needs --pass)"},
		&cli.StringFlag{Name: "pass", EnvVars: []string{envPass}, Usage: "password (requirepass, or --user's); prefer the " + envPass + " environment variable, which `ps` does not show"},
		&cli.BoolFlag{Name: "tls", Usage: "connect over TLS (to the node's tls_port)"},
		&cli.StringFlag{Name: "cacert", Usage: "CA certificate `FILE` to verify the node with (default: the system's CAs); implies --tls"},
		&cli.StringFlag{Name: "cert", Usage: "client certificate `FILE`, for tls_auth_clients; implies --tls"},
		&cli.StringFlag{Name: "key", Usage: "the client certificate's private key `FILE`; implies --tls"},
		&cli.StringFlag{Name: "sni", Usage: "server name to send and verify the node's certificate against (default: the host dialled)"},
	}
}

// clientConfig is what clientFlags asked for.
type clientConfig struct {
	User, Password string
	TLS            *tls.Config // nil: plaintext
}

// readClientFlags checks clientFlags and loads the certificate files.
func readClientFlags(c *cli.Context) (clientConfig, error) {
	cc := clientConfig{User: c.String("user"), Password: c.String("pass")}
	if cc.User != "" && cc.Password == "" {
		return cc, fmt.Errorf("--user %s needs a password: --pass or %s", cc.User, envPass)
	}
	certFile, keyFile := c.String("cert"), c.String("key")
	if (certFile == "") != (keyFile == "") {
		return cc, errors.New("--cert and --key go together")
	}
	if !c.Bool("tls") && c.String("cacert") == "" && certFile == "" && c.String("sni") == "" {
		return cc, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.String("sni")}
	if f := c.String("cacert"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return cc, fmt.Errorf("--cacert: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return cc, fmt.Errorf("--cacert %s: no PEM certificate in it", f)
		}
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cc, fmt.Errorf("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	cc.TLS = cfg
	return cc, nil
}

// explain adds what a user can do about err, where the tools know: a
// node asking for a password, a plaintext client on a TLS port (it sees
// the connection closed, or bytes that are not RESP), a TLS client on a
// plaintext port.
func (cc clientConfig) explain(err error) string {
	var rh tls.RecordHeaderError
	switch msg := err.Error(); {
	case strings.Contains(msg, "NOAUTH "):
		return msg + " (give the password with " + envPass + " or --pass, and --user for an ACL user)"
	case cc.TLS == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, resp.ErrProtocol) || errors.Is(err, syscall.ECONNRESET)):
		return msg + " (a TLS port? add --tls)"
	case cc.TLS != nil && errors.As(err, &rh):
		return msg + " (a plaintext port? the node's TLS port is tls_port)"
	default:
		return msg
	}
}

// dialer is a RESP dialer with these settings.
func (cc clientConfig) dialer() resp.Dialer {
	return resp.Dialer{TLS: cc.TLS, User: cc.User, Password: cc.Password}
}

// options are the Go client's options with these settings.
func (cc clientConfig) options() clients.Options {
	return clients.Options{Username: cc.User, Password: cc.Password, TLSConfig: cc.TLS}
}
