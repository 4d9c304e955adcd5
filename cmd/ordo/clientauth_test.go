package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/bench/report"
	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// The users of a node the client tools authenticate to: requirepass for
// the default user, one user per tool with only what that tool sends.
const authUsers = `requirepass: adminpw
users:
  - watcher on >wpw +ping
  - bencher on >bpw +@pubsub &bench*
  - chatter on >cpw +@pubsub +xread +status +ping +client|setname &chat ~chat
`

// waitLeader waits until the single node at addr, reached with d, leads.
func waitLeader(t *testing.T, d resp.Dialer, addr string) {
	t.Helper()
	testkit.Eventually(t, testkit.Scale(10*time.Second), func() bool {
		c, err := d.DialConn(context.Background(), addr, testkit.Scale(2*time.Second))
		if err != nil {
			return false
		}
		defer c.Close()
		v, err := c.Do("STATUS")
		return err == nil && v.Err() == nil && v.StringMap()["role"] == "leader"
	}, "the node at %s did not become leader", addr)
}

// `ordo ping` against a node with a password and users: NOAUTH without
// one (saying how to give it), a clear failure with a wrong one, PONG
// with the right one from ORDO_PASS or --pass, as the default user or an
// ACL user.
func TestPingAuthenticates(t *testing.T) {
	port := testkit.FreePort(t)
	startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--config", writeFile(t, "n.yml", authUsers))...)
	p := strconv.Itoa(port)
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		code     int
		inStderr string
	}{
		{"no password", nil, nil, 1, "answered NOAUTH Authentication required. (give the password with ORDO_PASS"},
		{"wrong password", []string{"ORDO_PASS=nope"}, nil, 1, "ordo ping: authentication failed: WRONGPASS invalid username-password pair"},
		{"wrong user", nil, []string{"--user", "bencher", "--pass", "wpw"}, 1, "ordo ping: authentication failed: WRONGPASS"},
		{"user lacks PING", []string{"ORDO_PASS=bpw"}, []string{"--user", "bencher"}, 1, "NOPERM"},
		{"user without password", nil, []string{"--user", "watcher"}, 2, "--user watcher needs a password: --pass or ORDO_PASS"},
		{"requirepass from the environment", []string{"ORDO_PASS=adminpw"}, nil, 0, ""},
		{"requirepass by flag", nil, []string{"--pass", "adminpw"}, 0, ""},
		{"ACL user", []string{"ORDO_USER=watcher", "ORDO_PASS=wpw"}, nil, 0, ""},
		{"ACL user by flag", []string{"ORDO_PASS=wpw"}, []string{"--user", "watcher"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runOrdoEnv(t, tc.env, append([]string{"ping", "--port", p}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.inStderr) || (code == 0) != (strings.TrimSpace(out) == "PONG") {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want it to contain %q)", code, tc.code, out, stderr, tc.inStderr)
			}
		})
	}
}

// A short `ordo bench` as an ACL user allowed only pub/sub on bench*:
// every publish is acknowledged and delivered; a wrong password fails
// before the run with the server's reason.
func TestBenchAuthenticates(t *testing.T) {
	port := testkit.FreePort(t)
	startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--config", writeFile(t, "n.yml", authUsers))...)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitLeader(t, resp.Dialer{Password: "adminpw"}, addr)
	args := []string{"bench", "--port", strconv.Itoa(port), "--user", "bencher", "--clients", "2", "--subscribers", "1",
		"--duration", "300ms", "--json", "-", "-q"}

	stdout, stderr, code := runOrdoEnv(t, []string{"ORDO_PASS=bpw"}, args...)
	var r report.Run
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil {
		t.Fatalf("exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if r.Published == 0 || r.Errors != 0 || r.Delivered != r.Expected {
		t.Fatalf("%d published, %d errors (%s), %d/%d delivered", r.Published, r.Errors, r.FirstError, r.Delivered, r.Expected)
	}
	if strings.Contains(stdout, "bpw") {
		t.Fatalf("the password is in the JSON output:\n%s", stdout)
	}

	_, stderr, code = runOrdoEnv(t, []string{"ORDO_PASS=wrong"}, args...)
	if code != 1 || !strings.Contains(stderr, "bench: authentication failed: WRONGPASS") {
		t.Fatalf("wrong password: exit %d, stderr %q", code, stderr)
	}
}

// `ordo chat --user --pass` follows and publishes as an ACL user.
func TestChatAuthenticates(t *testing.T) {
	port := testkit.FreePort(t)
	startOrdo(t, port, nil, nodeArgs(port, t.TempDir(), "--config", writeFile(t, "n.yml", authUsers))...)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitLeader(t, resp.Dialer{Password: "adminpw"}, addr)
	chat := headless(t, "chat", "--port", strconv.Itoa(port), "--client-id", "7", "--headless", "--user", "chatter", "--pass", "cpw")
	chat.waitLine(t, fmt.Sprintf("Connected to %s as client_7", addr))
	chat.say(t, "Hello as chatter")
	chat.waitLine(t, "[seq=1] client_7: Hello as chatter")
	chat.say(t, "/status")
	chat.waitLine(t, "Role: LEADER")
	chat.say(t, "/quit")
	if err := chat.wait(); err != nil {
		t.Fatalf("chat: %v\n%s", err, chat.output())
	}

	// A wrong password is shown as the reason the node is not used.
	bad := headless(t, "chat", "--port", strconv.Itoa(port), "--client-id", "8", "--headless", "--user", "chatter", "--pass", "nope")
	bad.waitLine(t, "WRONGPASS")
}

// A node serving TLS only, with a password and client certificates
// required: ping, bench and chat reach it with --tls, --cacert, --cert
// and --key; a missing certificate, an unknown CA, a wrong server name or
// plaintext fail saying so.
func TestClientToolsOverTLS(t *testing.T) {
	certs := testkit.NewCerts(t)
	port := testkit.FreePort(t)
	p := strconv.Itoa(port)
	addr := "127.0.0.1:" + p
	startOrdo(t, port, nil, nodeArgs(testkit.FreePort(t), t.TempDir(), "--requirepass", "adminpw",
		"--tls-port", p, "--tls-only", "--tls-cert-file", certs.NodeCert, "--tls-key-file", certs.NodeKey, "--tls-ca-cert-file", certs.CA)...)
	waitLeader(t, resp.Dialer{Password: "adminpw", TLS: certs.ClientTLS(t, true)}, addr)
	pass := []string{"ORDO_PASS=adminpw"}
	withCert := []string{"--tls", "--cacert", certs.CA, "--cert", certs.ClientCert, "--key", certs.ClientKey}

	for _, tc := range []struct {
		name     string
		args     []string
		inStderr string
	}{
		{"TLS", withCert, ""},
		{"implied by --cacert", []string{"--cacert", certs.CA, "--cert", certs.ClientCert, "--key", certs.ClientKey}, ""},
		{"SNI", append([]string{"--sni", "localhost"}, withCert...), ""},
		{"plaintext", nil, "(a TLS port? add --tls)"},
		{"no client certificate", []string{"--tls", "--cacert", certs.CA}, "ordo ping: TLS handshake with " + addr + " failed: "},
		{"unknown CA", []string{"--tls", "--cert", certs.ClientCert, "--key", certs.ClientKey}, "ordo ping: TLS handshake with " + addr + " failed: tls: failed to verify certificate"},
		{"wrong server name", append([]string{"--sni", "elsewhere.example"}, withCert...), "ordo ping: TLS handshake with " + addr + " failed: tls: failed to verify certificate"},
		{"cert without key", []string{"--tls", "--cert", certs.ClientCert}, "--cert and --key go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runOrdoEnv(t, pass, append([]string{"ping", "--port", p}, tc.args...)...)
			if (tc.inStderr == "") != (code == 0) || !strings.Contains(stderr, tc.inStderr) || (code == 0) != (strings.TrimSpace(out) == "PONG") {
				t.Fatalf("exit %d, stdout %q, stderr %q (want it to contain %q)", code, out, stderr, tc.inStderr)
			}
		})
	}

	t.Run("bench", func(t *testing.T) {
		stdout, stderr, code := runOrdoEnv(t, pass, append([]string{"bench", "--port", p, "--clients", "2", "--subscribers", "1",
			"--duration", "300ms", "--json", "-", "-q"}, withCert...)...)
		var r report.Run
		if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil || r.Published == 0 || r.Errors != 0 || r.Delivered != r.Expected {
			t.Fatalf("exit %d, %v, %+v\nstderr:\n%s", code, err, r.Result, stderr)
		}
	})

	t.Run("chat", func(t *testing.T) {
		chat := headless(t, append([]string{"chat", "--port", p, "--client-id", "9", "--headless", "--pass", "adminpw"}, withCert...)...)
		chat.waitLine(t, fmt.Sprintf("Connected to %s as client_9", addr))
		chat.say(t, "Hello over TLS")
		chat.waitLine(t, "client_9: Hello over TLS")
		chat.say(t, "/quit")
		if err := chat.wait(); err != nil {
			t.Fatalf("chat: %v\n%s", err, chat.output())
		}
	})
}
