package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/ordo-broker/ordo/clients/testkit"
)

// runOrdo runs a short ordo command to completion (bounded in time) and
// returns its stdout, stderr and exit code.
func runOrdo(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runOrdoEnv(t, nil, args...)
}

// runOrdoEnv is runOrdo with variables added to the environment.
func runOrdoEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(30*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.OrdoBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("ordo %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), code
}

// jsonLines parses `ordo log --json` output into its objects by type.
func jsonLines(t *testing.T, out string) map[string][]map[string]any {
	t.Helper()
	byType := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		typ, _ := m["type"].(string)
		byType[typ] = append(byType[typ], m)
	}
	return byType
}

// A cluster grown by a join: `ordo log` refuses the data directory while
// its node runs, then prints the stopped node's messages, membership
// entries, committed configuration and hard state, as text and as JSON.
func TestLogCommandPrintsStoppedNode(t *testing.T) {
	c := testkit.NewJoinedCluster(t, 2)
	c.Start(1)
	c.Start(2)
	waitVoters(t, c, 1, 1, 2)
	pub := testkit.Dial(t, c.Addr(2))
	if v := pub.Do("CLIENT", "SETNAME", "client_101"); v.Err() != nil {
		t.Fatal(v.Err())
	}
	msgs := []string{"Hello from node 1!", "second message", "third, with spaces"}
	for _, m := range msgs {
		if v := pub.Do("PUBLISH", "chat", m); v.Kind != resp.Integer {
			t.Fatalf("PUBLISH %q: %+v", m, v)
		}
	}
	if v := pub.Do("PUBLISH", "other", "elsewhere"); v.Kind != resp.Integer {
		t.Fatalf("PUBLISH: %+v", v)
	}
	c.WaitSameHistory("chat")

	_, stderr, code := runOrdo(t, "log", "--data-dir", c.Dir(1))
	if code != 1 || !strings.Contains(stderr, "in use by a running ordo node: stop the node first") {
		t.Fatalf("ordo log on a running node's directory: exit %d, stderr %q; want exit 1 and a refusal", code, stderr)
	}
	c.Proc(1).Signal(syscall.SIGTERM) // a clean stop (node 2 keeps running; it does not matter)
	if code := c.Proc(1).ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("node 1 exited with %d", code)
	}

	out, stderr, code := runOrdo(t, "log", "--data-dir", c.Dir(1))
	if code != 0 {
		t.Fatalf("ordo log: exit %d\n%s\n%s", code, stderr, out)
	}
	for _, want := range []string{
		"[seq=1] ", " chat client_101: Hello from node 1!",
		"[seq=3] ", ` chat client_101: third, with spaces`,
		"[seq=4] ", " other client_101: elsewhere",
		"membership add-learner node 2 at " + c.Addr(2),
		"membership promote node 2",
		"configuration   voters 1 2; learners none (committed; set by the membership entry at index",
		"node 2 at " + c.Addr(2),
		"messages        4, seq 1..4",
		"checksums       all records verified",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("ordo log output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[seq=5]") {
		t.Fatalf("a membership entry took a sequence number:\n%s", out)
	}

	out, _, code = runOrdo(t, "log", "--data-dir", c.Dir(1), "--json", "--from", "2")
	if code != 0 {
		t.Fatalf("ordo log --json: exit %d\n%s", code, out)
	}
	byType := jsonLines(t, out)
	st := byType["state"]
	if len(st) != 1 || st[0]["cluster_id"] == "" || st[0]["term"].(float64) < 1 {
		t.Fatalf("state: %v", st)
	}
	conf, _ := st[0]["configuration"].(map[string]any)
	if fmt.Sprint(conf["voters"]) != "[1 2]" || conf["addrs"].(map[string]any)["2"] != c.Addr(2) {
		t.Fatalf("configuration: %v", conf)
	}
	ms := byType["message"]
	if len(ms) != 3 {
		t.Fatalf("--from 2: %d messages, want 3: %v", len(ms), ms)
	}
	for k, m := range ms {
		wantPayload := append(msgs, "elsewhere")[k+1]
		if m["seq"].(float64) != float64(k+2) || m["payload"] != wantPayload || m["sender"] != "client_101" || m["time_ms"].(float64) <= 0 {
			t.Fatalf("message %d: %v", k, m)
		}
	}
	if n := len(byType["membership"]); n != 2 {
		t.Fatalf("%d membership entries, want 2 (add-learner, promote): %v", n, byType["membership"])
	}
	sum := byType["summary"]
	if len(sum) != 1 || sum[0]["clean"] != true || sum[0]["messages"].(float64) != 4 || sum[0]["last_seq"].(float64) != 4 {
		t.Fatalf("summary: %v", sum)
	}
}

// A flipped bit is reported at its record (exit 3) and every other
// message is still printed; a torn tail is reported as what a node cuts,
// and nothing is changed on disk.
func TestLogCommandReportsDamage(t *testing.T) {
	dir, _, seg, b, at := hundredThenKilled(t)
	b[at+8] ^= 0x01 // "payload-150" on disk: only the checksum can tell
	// And half a frame at the end: a write cut short.
	b = append(b, 0x40, 0x01, 0x02)
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := runOrdo(t, "log", "--data-dir", dir)
	if code != 3 || !strings.Contains(stderr, "1 damaged record(s)") {
		t.Fatalf("exit %d, stderr %q; want 3 and the damage named", code, stderr)
	}
	for _, want := range []string{"[seq=49] ", "f client_", ": payload-049", "[index=50] DAMAGED: wal: corrupt record at index 50: checksum",
		"[seq=51] ", ": payload-100", "damaged         1 record(s): indexes 50", "torn tail       3 bytes (0 whole records) from index 101"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "payload-150") || strings.Contains(out, "payload-050") {
		t.Fatalf("the damaged record's content was printed:\n%s", out)
	}
	after, err := os.ReadFile(seg)
	if err != nil || !bytes.Equal(after, b) {
		t.Fatalf("ordo log changed the segment (err %v)", err)
	}

	out, _, code = runOrdo(t, "log", "--data-dir", dir, "--json")
	byType := jsonLines(t, out)
	if code != 3 || len(byType["damaged"]) != 1 || byType["damaged"][0]["index"].(float64) != 50 || len(byType["message"]) != 99 {
		t.Fatalf("--json: exit %d, damaged %v, %d messages", code, byType["damaged"], len(byType["message"]))
	}
	if s := byType["summary"][0]; s["clean"] != false || s["torn_tail"] == nil {
		t.Fatalf("summary: %v", s)
	}
}

func TestLogCommandUsageErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"log"}, 2, "--data-dir DIR"},
		{[]string{"log", "--data-dir", empty + "/nosuch"}, 1, "no such file or directory"},
		{[]string{"log", "--data-dir", empty}, 1, "holds no ordo data"},
	} {
		_, stderr, code := runOrdo(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("ordo %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("ordo log created files in a directory that is no data directory")
	}
}

// `ordo ping` is the container health check: exit 0 on PONG, 1 with a
// reason on anything else, bounded by --timeout.
func TestPingCommand(t *testing.T) {
	port := testkit.FreePort(t)
	startOrdo(t, port, nil, nodeArgs(port, t.TempDir())...)
	out, stderr, code := runOrdo(t, "ping", "--port", fmt.Sprint(port))
	if code != 0 || strings.TrimSpace(out) != "PONG" {
		t.Fatalf("ping a running node: exit %d, out %q, stderr %q", code, out, stderr)
	}

	_, stderr, code = runOrdo(t, "ping", "--port", fmt.Sprint(testkit.FreePort(t)))
	if code != 1 || !strings.Contains(stderr, "cannot connect") {
		t.Fatalf("ping nothing: exit %d, stderr %q", code, stderr)
	}

	// A server that accepts and never answers: the timeout ends the
	// check (a wedged node must count as unhealthy).
	silent := testkit.FreePort(t)
	ln := listenSilently(t, silent)
	defer ln()
	start := time.Now()
	_, stderr, code = runOrdo(t, "ping", "--port", fmt.Sprint(silent), "--timeout", "300ms")
	if code != 1 || !strings.Contains(stderr, "no reply") || time.Since(start) > testkit.Scale(5*time.Second) {
		t.Fatalf("ping a silent server: exit %d after %s, stderr %q", code, time.Since(start), stderr)
	}

	// Something that is not a Redis-protocol server.
	wrong := testkit.FreePort(t)
	stop := serveReply(t, wrong, "-ERR unknown command\r\n")
	defer stop()
	_, stderr, code = runOrdo(t, "ping", "--port", fmt.Sprint(wrong))
	if code != 1 || !strings.Contains(stderr, "answered an error instead of PONG") {
		t.Fatalf("ping a server answering an error: exit %d, stderr %q", code, stderr)
	}
}

// listenSilently accepts connections on port and never answers; the
// returned func closes everything and waits for the accept loop.
func listenSilently(t *testing.T, port int) func() { return serveReply(t, port, "") }

// serveReply answers every connection on port with reply, once, after
// its first read ("" : never answers).
func serveReply(t *testing.T, port int, reply string) func() {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if reply != "" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 512)
					if _, err := c.Read(buf); err == nil {
						c.Write([]byte(reply))
					}
				}()
			}
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}
