package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/redis/go-redis/v9"
)

// startTLSServer runs a one-node ordo serving plaintext and TLS (the
// generated node certificate, certs' CA) on random loopback ports.
func startTLSServer(t *testing.T, certs *testkit.Certs, mod func(*Config)) *Server {
	t.Helper()
	plain, secure := listenLoopback(t), listenLoopback(t)
	cfg := Config{ID: 1, DataDir: t.TempDir(), TLS: TLSConfig{
		Port:     secure.Addr().(*net.TCPAddr).Port,
		CertFile: certs.NodeCert, KeyFile: certs.NodeKey, CACertFile: certs.CA,
	}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	go s.ServeListeners(plain, secure)
	t.Cleanup(func() { s.Close() })
	waitLeader(t, s)
	testkit.Eventually(t, 5*time.Second, func() bool { return s.TLSAddr() != nil }, "no TLS listener")
	return s
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dialTLS connects a raw RESP client over TLS.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*resp.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: testkit.Scale(5 * time.Second)}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return resp.NewConn(c, testkit.Scale(5*time.Second)), nil
}

// tlsPing is PING over a new TLS connection: "PONG" or the error.
func tlsPing(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	c, err := dialTLS(t, addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	v, err := c.Do("PING")
	if err != nil {
		return "", err
	}
	return v.String(), v.Err()
}

// go-redis over TLS with a client certificate: a subscriber receives a
// message published over another TLS connection, and the plaintext port
// serves the same node.
func TestTLSGoRedisPubSub(t *testing.T) {
	certs := testkit.NewCerts(t)
	s := startTLSServer(t, certs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(10*time.Second))
	defer cancel()
	opts := func() *redis.Options {
		return &redis.Options{Addr: s.TLSAddr().String(), TLSConfig: certs.ClientTLS(t, true), MaxRetries: -1}
	}
	sub := redis.NewClient(opts()).Subscribe(ctx, "news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("SUBSCRIBE over TLS: %v", err)
	}
	pub := redis.NewClient(opts())
	defer pub.Close()
	if n, err := pub.Publish(ctx, "news", "over tls").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH over TLS: %d, %v", n, err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "over tls" {
		t.Fatalf("message over TLS: %+v, %v", msg, err)
	}
	plain := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer plain.Close()
	if n, err := plain.Publish(ctx, "news", "plain").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH on the plaintext port: %d, %v", n, err)
	}
	if msg, err := sub.ReceiveMessage(ctx); err != nil || msg.Payload != "plain" {
		t.Fatalf("plaintext message to a TLS subscriber: %+v, %v", msg, err)
	}
	// CLIENT LIST shows the TLS clients on the TLS port (laddr).
	list, err := pub.ClientList(ctx).Result()
	if err != nil || !strings.Contains(list, "laddr="+s.TLSAddr().String()) {
		t.Fatalf("CLIENT LIST: %q, %v", list, err)
	}
}

// Debian's redis-cli is built with TLS: it connects with the generated
// certificates and publishes.
func TestTLSRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not installed: run `make deps` (Debian package redis-tools)")
	}
	if out, _ := exec.Command(cli, "--help").CombinedOutput(); !strings.Contains(string(out), "--tls") {
		t.Fatalf("this redis-cli was built without TLS (no --tls in its --help)")
	}
	certs := testkit.NewCerts(t)
	s := startTLSServer(t, certs, nil)
	_, port, _ := net.SplitHostPort(s.TLSAddr().String())
	run := func(args ...string) (string, error) {
		all := append([]string{"-h", "127.0.0.1", "-p", port, "--tls", "--cacert", certs.CA, "--cert", certs.ClientCert, "--key", certs.ClientKey}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(10*time.Second))
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, all...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run("PING"); err != nil || out != "PONG" {
		t.Fatalf("redis-cli --tls PING: %q, %v", out, err)
	}
	c := dial(t, s.Addr().String())
	c.do("SUBSCRIBE", "cli")
	if out, err := run("PUBLISH", "cli", "hello"); err != nil || out != "1" {
		t.Fatalf("redis-cli --tls PUBLISH: %q, %v", out, err)
	}
	if got := c.read(); !strings.Contains(got, "hello") {
		t.Fatalf("the subscriber got %q", got)
	}
}

// tls_auth_clients: a client without a certificate is refused with yes
// (the default) and served with optional and no; a certificate from
// another CA is refused whenever certificates are checked.
func TestTLSAuthClients(t *testing.T) {
	certs := testkit.NewCerts(t)
	rogue := certs.ClientTLS(t, false)
	pair, err := tls.LoadX509KeyPair(certs.RogueCert, certs.RogueKey)
	if err != nil {
		t.Fatal(err)
	}
	// Sent whatever CAs the node asks for (a Go client would otherwise
	// send none, the node naming the CAs it trusts).
	rogue.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	for _, tc := range []struct {
		mode              string
		noCert, rogueCert bool // served?
	}{
		{"yes", false, false},
		{"optional", true, false},
		{"no", true, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := startTLSServer(t, certs, func(c *Config) { c.TLS.AuthClients = tc.mode })
			addr := s.TLSAddr().String()
			if got, err := tlsPing(t, addr, certs.ClientTLS(t, true)); got != "PONG" {
				t.Fatalf("with the client certificate: %q, %v", got, err)
			}
			got, err := tlsPing(t, addr, certs.ClientTLS(t, false))
			if served := got == "PONG"; served != tc.noCert {
				t.Fatalf("without a certificate: %q, %v (want served: %v)", got, err, tc.noCert)
			}
			got, err = tlsPing(t, addr, rogue)
			if served := got == "PONG"; served != tc.rogueCert {
				t.Fatalf("with another CA's certificate: %q, %v (want served: %v)", got, err, tc.rogueCert)
			}
			if !tc.noCert && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("the refusal does not say why: %v", err)
			}
		})
	}
}

// A plaintext client on the TLS port is disconnected: it gets no reply,
// is never a client, and leaves no goroutine behind; the node serves on.
func TestTLSPortPlaintextClientDisconnected(t *testing.T) {
	certs := testkit.NewCerts(t)
	s := startTLSServer(t, certs, nil)
	for range 5 {
		c, err := net.DialTimeout("tcp", s.TLSAddr().String(), testkit.Scale(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("*1\r\n$4\r\nPING\r\n"))
		c.SetReadDeadline(time.Now().Add(testkit.Scale(10 * time.Second)))
		b, err := io.ReadAll(c)
		c.Close()
		// (A reset is a clean close too: the node closes with the
		// client's bytes unread.)
		if errors.Is(err, os.ErrDeadlineExceeded) || len(b) > 0 {
			t.Fatalf("plaintext on the TLS port: read %q, %v (want a clean close)", b, err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return connGoroutines() == 0 },
		"connection goroutines left behind:\n%s", goroutines())
	if got, err := tlsPing(t, s.TLSAddr().String(), certs.ClientTLS(t, true)); got != "PONG" {
		t.Fatalf("after the plaintext clients: %q, %v", got, err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(s.allClients()) == 0 },
		"clients still registered after the pings: %d", len(s.allClients()))
	if got := s.stats.connections.Load(); got != 1 {
		t.Fatalf("%d connections counted, want the one TLS client", got)
	}
}

func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// connGoroutines counts goroutines serving a connection.
func connGoroutines() int {
	n := 0
	for _, g := range strings.Split(goroutines(), "\n\n") {
		if strings.Contains(g, "broker.(*Server).serveConn(") || strings.Contains(g, "broker.(*tlsConn)") {
			n++
		}
	}
	return n
}

// ReloadTLS (SIGHUP) swaps the certificates: new connections get the new
// ones; a failed reload keeps the old.
func TestTLSReload(t *testing.T) {
	a, b := testkit.NewCerts(t), testkit.NewCerts(t)
	dir := t.TempDir()
	files := map[string]string{"ca": dir + "/ca.pem", "cert": dir + "/node.pem", "key": dir + "/node.key"}
	install := func(c *testkit.Certs) {
		for k, src := range map[string]string{"ca": c.CA, "cert": c.NodeCert, "key": c.NodeKey} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(files[k], data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(a)
	s := startTLSServer(t, &testkit.Certs{CA: files["ca"], NodeCert: files["cert"], NodeKey: files["key"]}, nil)
	addr := s.TLSAddr().String()
	if got, err := tlsPing(t, addr, a.ClientTLS(t, true)); got != "PONG" {
		t.Fatalf("before the reload: %q, %v", got, err)
	}
	install(b)
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got, err := tlsPing(t, addr, b.ClientTLS(t, true)); got != "PONG" {
		t.Fatalf("with the new certificates: %q, %v", got, err)
	}
	if got, err := tlsPing(t, addr, a.ClientTLS(t, true)); err == nil {
		t.Fatalf("the old CA still works after the reload: %q", got)
	}
	os.WriteFile(files["key"], []byte("not a key"), 0o600)
	if err := s.ReloadTLS(); err == nil {
		t.Fatal("a reload of a broken key succeeded")
	}
	if got, err := tlsPing(t, addr, b.ClientTLS(t, true)); got != "PONG" {
		t.Fatalf("after a failed reload: %q, %v", got, err)
	}
}

// The options as Redis shows them, checked against a redis-server with
// the same TLS settings: CONFIG GET of tls-port, tls-auth-clients,
// tls-cluster and port, and INFO's tcp_port, on a TLS-only server.
func TestTLSOnlyConfigLikeRedis(t *testing.T) {
	certs := testkit.NewCerts(t)
	secure := listenLoopback(t)
	port := secure.Addr().(*net.TCPAddr).Port
	s, err := New(Config{ID: 1, DataDir: t.TempDir(), TLS: TLSConfig{Port: port, Only: true,
		CertFile: certs.NodeCert, KeyFile: certs.NodeKey, CACertFile: certs.CA}})
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeListeners(nil, secure)
	t.Cleanup(func() { s.Close() })
	waitLeader(t, s)
	redisAddr := redisTLSServer(t, certs)
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	transcript := func(addr, port string) string {
		var c *resp.Conn
		testkit.Eventually(t, 10*time.Second, func() bool {
			c, err = dialTLS(t, addr, certs.ClientTLS(t, true))
			return err == nil
		}, "no TLS connection to %s: %v", addr, err)
		var b strings.Builder
		for _, p := range []string{"tls-port", "tls-auth-clients", "tls-cluster", "port"} {
			c.Send("CONFIG", "GET", p)
			raw, err := c.ReceiveRaw(nil)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(strings.ReplaceAll(string(raw), port, "<port>"))
		}
		v, err := c.Do("INFO", "server")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "tcp_port is the TLS port: %v", strings.Contains(v.String(), "tcp_port:"+port+"\r\n"))
		return b.String()
	}
	want := transcript(redisAddr, redisPort)
	if got := transcript(secure.Addr().String(), strconv.Itoa(port)); got != want {
		t.Fatalf("ordo:\n%q\nredis-server:\n%q", got, want)
	}
}

// redisTLSServer starts redis-server serving TLS only, with the node
// certificate and tls-auth-clients yes.
func redisTLSServer(t *testing.T, certs *testkit.Certs) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed: run `make deps` (Debian package redis-server)")
	}
	ln := listenLoopback(t)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certs.NodeCert, "--tls-key-file", certs.NodeKey, "--tls-ca-cert-file", certs.CA,
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// Options that cannot work together are refused before anything starts.
func TestTLSConfigValidation(t *testing.T) {
	certs := testkit.NewCerts(t)
	full := TLSConfig{Port: 7000, CertFile: certs.NodeCert, KeyFile: certs.NodeKey, CACertFile: certs.CA}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"only without port", func(c *Config) { c.TLS = TLSConfig{Only: true} }, "tls_only needs tls_port"},
		{"cluster without port", func(c *Config) { c.TLS = TLSConfig{Cluster: true} }, "tls_cluster needs tls_port"},
		{"no certificate", func(c *Config) { c.TLS = TLSConfig{Port: 7000} }, "tls_cert_file"},
		{"same port", func(c *Config) { c.Port = 7000 }, "both 7000"},
		{"no CA to check clients", func(c *Config) { c.TLS.CACertFile = "" }, "tls_ca_cert_file is needed"},
		{"no CA for the cluster", func(c *Config) { c.TLS.CACertFile, c.TLS.AuthClients, c.TLS.Cluster = "", "no", true }, "tls_ca_cert_file is needed"},
		{"bad key", func(c *Config) { c.TLS.KeyFile = certs.CA }, "tls_cert_file/tls_key_file"},
		{"only in a plaintext cluster", func(c *Config) {
			c.TLS.Only = true
			c.Peers = []Peer{{ID: 1, Addr: "127.0.0.1:7000"}, {ID: 2, Addr: "127.0.0.1:7001"}}
		}, "needs tls_cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ID: 1, Port: 6999, DataDir: t.TempDir() + "/data", TLS: full}
			tc.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error with %q", err, tc.want)
			}
			if _, serr := os.Stat(cfg.DataDir); serr == nil {
				t.Fatalf("the data directory was created despite %v", err)
			}
		})
	}
	// tls_auth_clients no needs no CA.
	cfg := Config{ID: 1, DataDir: t.TempDir(), TLS: full}
	cfg.TLS.CACertFile, cfg.TLS.AuthClients = "", "no"
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("tls_auth_clients no without a CA: %v", err)
	}
	s.Close()
}

// tls_cluster with tls_auth_clients no: clients need no certificate, but
// peer links still do, checked when ORDO.PEER arrives; a peer handshake
// on the plaintext port is refused.
func TestTLSClusterPeersNeedCertificates(t *testing.T) {
	certs := testkit.NewCerts(t)
	var plain, secure [2]net.Listener
	var peers []Peer
	for i := range plain {
		plain[i], secure[i] = listenLoopback(t), listenLoopback(t)
		peers = append(peers, Peer{ID: uint64(i + 1), Addr: secure[i].Addr().String()})
	}
	var srvs [2]*Server
	for i := range srvs {
		s, err := New(Config{ID: uint64(i + 1), DataDir: t.TempDir(), Peers: peers, ClusterSecret: []byte("pair-secret"),
			TLS: TLSConfig{Port: secure[i].Addr().(*net.TCPAddr).Port, Cluster: true, AuthClients: "no",
				CertFile: certs.NodeCert, KeyFile: certs.NodeKey, CACertFile: certs.CA}})
		if err != nil {
			t.Fatal(err)
		}
		srvs[i] = s
		go s.ServeListeners(plain[i], secure[i])
		t.Cleanup(func() { s.Close() })
	}
	for _, s := range srvs {
		waitLeader(t, s) // (a leader of two needs both links)
	}
	if got, err := tlsPing(t, secure[0].Addr().String(), certs.ClientTLS(t, false)); got != "PONG" {
		t.Fatalf("a client without a certificate: %q, %v", got, err)
	}
	hello := []string{"ORDO.PEER", "3", "2", "1", strings.Repeat("ab", 16), "-", "-"}
	c, err := dialTLS(t, secure[0].Addr().String(), certs.ClientTLS(t, false))
	if err != nil {
		t.Fatal(err)
	}
	c.Send(hello...)
	if raw, _ := c.ReceiveRaw(nil); !strings.Contains(string(raw), "peer handshake refused: no certificate") {
		t.Fatalf("a peer without a certificate: %q", raw)
	}
	pc := dial(t, plain[0].Addr().String())
	pc.send(hello...)
	if got := pc.read(); !strings.Contains(got, "peer handshake refused: this node takes peer links over TLS only") {
		t.Fatalf("a peer on the plaintext port: %q", got)
	}
	pc.expectClosed()
}
