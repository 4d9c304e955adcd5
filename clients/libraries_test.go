package clients

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func startNode(t *testing.T) (addr string, port int) {
	t.Helper()
	srv, err := broker.New(broker.Config{ID: 1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := New(ln.Addr().String())
	defer c.Close()
	testkit.EventuallyNoError(t, 10*time.Second, func() error {
		st, err := c.Status(context.Background())
		if err == nil && st["role"] != "leader" {
			err = fmt.Errorf("role %q", st["role"])
		}
		return err
	}, "one-node broker did not become leader")
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// Other languages' Redis clients, as Debian ships them (.ci/deps.sh
// installs them); a missing interpreter or library fails the test.
func TestOtherClientLibraries(t *testing.T) {
	_, port := startNode(t)
	for _, tc := range []struct {
		name, bin, script string
		env               []string
	}{
		// Debian's interpreter: python3-redis is installed for it, not for
		// any other python3 earlier on PATH.
		{"redis-py", "/usr/bin/python3", "compat/pubsub_resume.py", nil},
		{"ruby-redis", "ruby", "compat/pubsub_resume.rb", nil},
		{"node-redis", "node", "compat/pubsub_resume.js", []string{"NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exec.LookPath(tc.bin); err != nil {
				t.Fatalf("%s not installed (run make deps): %v", tc.bin, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(60*time.Second))
			defer cancel()
			cmd := exec.CommandContext(ctx, tc.bin, tc.script, strconv.Itoa(port))
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "OK\n" {
				t.Fatalf("%s failed: %v\n%s", tc.name, err, out)
			}
		})
	}
}

func TestGoRedisPubSubAndFollow(t *testing.T) {
	addr, _ := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Scale(30*time.Second))
	defer cancel()
	c := New(addr)
	defer c.Close()
	sub := c.Redis().Subscribe(ctx, "go")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if n, err := c.Publish(ctx, "go", "m"+strconv.Itoa(i)); err != nil || n != 1 {
			t.Fatalf("publish: %d %v", n, err)
		}
	}
	for i := 0; i < 3; i++ {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Payload != "m"+strconv.Itoa(i) {
			t.Fatalf("message %d: %+v %v", i, m, err)
		}
	}
	// Resume after seq 1: the history, then a live message, in order.
	var got []Message
	fctx, fcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Follow(fctx, "go", 1, func(m Message) error {
			got = append(got, m)
			if len(got) == 3 {
				fcancel()
			}
			return nil
		})
	}()
	if _, err := c.Publish(ctx, "go", "live"); err != nil {
		t.Fatal(err)
	}
	<-errc
	if len(got) != 3 || got[0].Payload != "m1" || got[1].Payload != "m2" || got[2].Payload != "live" || got[0].Seq != 2 || got[2].Seq != 4 {
		t.Fatalf("follow: %+v", got)
	}
	// RESP3 pub/sub with go-redis.
	r3 := redis.NewClient(&redis.Options{Addr: addr, Protocol: 3})
	defer r3.Close()
	s3 := r3.Subscribe(ctx, "go3")
	defer s3.Close()
	if _, err := s3.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r3.Publish(ctx, "go3", "hi").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := s3.ReceiveMessage(ctx); err != nil || m.Payload != "hi" {
		t.Fatalf("RESP3: %+v %v", m, err)
	}
}
