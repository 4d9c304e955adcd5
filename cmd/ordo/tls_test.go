package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// A cluster with tls_cluster: the links run over TLS between the members'
// TLS ports; a publish through a follower reaches subscribers on every
// node; a node whose certificate the CA did not sign cannot join until
// SIGHUP gives it one that is; a node dialling without TLS is refused.
func TestTLSCluster(t *testing.T) {
	certs := testkit.NewCerts(t)
	c := testkit.NewCluster(t, 4, false, "--cluster-secret", "tls-and-hmac")
	c.Static = []int{1, 2, 3} // node 4 joins through node 1
	tlsPorts := map[int]int{}
	for _, i := range c.All() {
		tlsPorts[i] = testkit.FreePort(t)
	}
	tlsAddr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", tlsPorts[i]) }
	c.PeerAddr = tlsAddr
	// Node 4's certificate files are copies, first of the rogue pair.
	dir4 := t.TempDir()
	cert4, key4 := filepath.Join(dir4, "node.crt"), filepath.Join(dir4, "node.key")
	copyFile(t, certs.RogueCert, cert4)
	copyFile(t, certs.RogueKey, key4)
	c.NodeArgs = func(i int) []string {
		cert, key := certs.NodeCert, certs.NodeKey
		if i == 4 {
			cert, key = cert4, key4
		}
		return []string{"--tls-port", strconv.Itoa(tlsPorts[i]), "--tls-cluster",
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", certs.CA}
	}
	for _, i := range c.Static {
		c.Start(i)
	}
	leader, followers := c.Followers(c.Static...)
	for _, i := range c.Static {
		if strings.Contains(c.Proc(i).Logs(), "Refused peer") {
			t.Fatalf("node %d refused a member:\n%s", i, c.Proc(i).Logs())
		}
	}

	// Subscribers on every member, over TLS; a publish through a follower.
	subs := map[int]*resp.Conn{}
	for _, i := range c.Static {
		subs[i] = dialTLSNode(t, tlsAddr(i), certs)
		if v, err := subs[i].Do("SUBSCRIBE", "secure"); err != nil || v.Err() != nil {
			t.Fatalf("SUBSCRIBE on node %d: %v %v", i, v, err)
		}
	}
	pub := dialTLSNode(t, tlsAddr(followers[0]), certs)
	if v, err := pub.Do("PUBLISH", "secure", "through a follower"); err != nil || v.Err() != nil {
		t.Fatalf("PUBLISH through follower %d (leader %d): %v %v", followers[0], leader, v, err)
	}
	for i, s := range subs {
		v, err := s.Receive()
		if err != nil || len(v.Array()) != 3 || v.Array()[2].String() != "through a follower" {
			t.Fatalf("subscriber on node %d: %v, %v", i, v, err)
		}
	}

	// Node 4 presents a certificate of another CA: node 1 refuses it in
	// the TLS handshake, and the cluster stays three.
	p4 := c.Start(4)
	p4.WaitLog("Failed to connect to node_1")
	if logs := p4.Logs(); !strings.Contains(logs, "certificate") {
		t.Fatalf("node 4's log does not say its certificate was refused:\n%s", logs)
	}
	if ms, err := membersOf(c.Addr(leader)); err != nil || len(ms) != 3 {
		t.Fatalf("members after the refused join: %+v, %v", ms, err)
	}
	// With a certificate the CA signed, reread on SIGHUP, it joins.
	copyFile(t, certs.NodeCert, cert4)
	copyFile(t, certs.NodeKey, key4)
	p4.Signal(syscall.SIGHUP)
	waitVoters(t, c, leader, 1, 2, 3, 4)
	s4 := dialTLSNode(t, tlsAddr(4), certs)
	testkit.Eventually(t, 10*time.Second, func() bool {
		v, err := s4.Do("XLEN", "secure")
		n, _ := v.Int()
		return err == nil && n == 1
	}, "node 4 did not catch up on the message")

	// A node dialling node 1's plaintext port without TLS is refused: the
	// links of a tls_cluster node run over TLS only.
	port := testkit.FreePort(t)
	plain := testkit.StartOrdo(t, testkit.ProcConfig{Name: "plain", Port: port, Args: []string{"node", "--id", "9",
		"--port", strconv.Itoa(port), "--data-dir", t.TempDir(), "--cluster-secret", "tls-and-hmac",
		"--seed", "1:" + c.Addr(1)}})
	plain.WaitLog("TLS only (tls_cluster)")
	c.Proc(1).WaitLog("Refused peer handshake")
	if ms, err := membersOf(c.Addr(leader)); err != nil || len(ms) != 4 {
		t.Fatalf("members after the plaintext join: %+v, %v", ms, err)
	}
}

func dialTLSNode(t *testing.T, addr string, certs *testkit.Certs) *resp.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: testkit.Scale(5 * time.Second)}
	nc, err := tls.DialWithDialer(d, "tcp", addr, certs.ClientTLS(t, true))
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return resp.NewConn(nc, testkit.Scale(testkit.DefaultTimeout))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A busy TLS port, or a certificate that does not load, fails at once,
// before the data directory is touched, as a busy port does.
func TestTLSStartFailsFast(t *testing.T) {
	certs := testkit.NewCerts(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"busy TLS port", []string{"--tls-port", busyPort, "--tls-cert-file", certs.NodeCert, "--tls-key-file", certs.NodeKey, "--tls-ca-cert-file", certs.CA}, "cannot serve TLS on"},
		{"missing key", []string{"--tls-port", strconv.Itoa(testkit.FreePort(t)), "--tls-cert-file", certs.NodeCert, "--tls-key-file", certs.NodeKey + ".missing", "--tls-ca-cert-file", certs.CA}, "tls_key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			p := startOrdo(t, 0, nil, nodeArgs(testkit.FreePort(t), dir, tc.args...)...)
			if code := p.ExitCode(10 * time.Second); code == 0 || !strings.Contains(p.Logs(), tc.want) {
				t.Fatalf("exit code %d, want a failure saying %q:\n%s", code, tc.want, p.Logs())
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("data dir touched: %v", err)
			}
		})
	}
}
