package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// With tls_cluster the handshake of handshake.go runs inside TLS: both
// sides present certificates signed by the cluster's CA (the dialer
// checks the member's name against the address it dialled, as any TLS
// client does), and the HMAC over the cluster secret still follows, so
// a certificate alone does not make a peer.

// dialTLS runs the TLS handshake on an outgoing link to addr; conn's
// deadline bounds it.
func dialTLS(conn net.Conn, addr string, cfg *tls.Config) (net.Conn, error) {
	cfg = cfg.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake (tls_cluster: is %s the member's tls_port, and its certificate signed by tls_ca_cert_file?): %w", addr, err)
	}
	return tc, nil
}

// verifyPeerCert checks that an incoming link came over TLS with a client
// certificate that roots sign. The TLS listener may not have verified it
// (tls_auth_clients no or optional leaves clients free not to send one).
func verifyPeerCert(conn net.Conn, roots *x509.CertPool) error {
	tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return errors.New("this node takes peer links over TLS only (tls_cluster): enable tls_cluster on every member and list their tls_port addresses")
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return errors.New("no certificate: with tls_cluster every member presents its tls_cert_file")
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("certificate not accepted: %v", err)
	}
	return nil
}
