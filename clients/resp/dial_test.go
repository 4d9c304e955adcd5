package resp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeServer answers the first command on each connection with reply
// and hands what it received to got.
func fakeServer(t *testing.T, reply string) (addr string, got <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		v, err := Read(bufio.NewReader(c))
		if err != nil {
			return
		}
		var args []string
		for _, e := range v.Array() {
			args = append(args, e.String())
		}
		ch <- args
		c.Write([]byte(reply))
		time.Sleep(time.Second) // keep it open while the client reads
	}()
	return ln.Addr().String(), ch
}

// AUTH goes first, with the user when there is one; a refusal is
// ErrAuth with the server's words; bytes beyond the reply are refused
// rather than lost.
func TestDialerAuth(t *testing.T) {
	for _, tc := range []struct {
		name, user, reply string
		wantArgs          string
		wantErr           string
		auth              bool
	}{
		{"default user", "", "+OK\r\n", "AUTH pw", "", false},
		{"ACL user", "alice", "+OK\r\n", "AUTH alice pw", "", false},
		{"refused", "alice", "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH alice pw",
			"authentication failed: WRONGPASS invalid username-password pair", true},
		{"extra bytes", "", "+OK\r\n+PONG\r\n", "AUTH pw", "sent more than the reply to AUTH", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := fakeServer(t, tc.reply)
			c, err := Dialer{Timeout: 5 * time.Second, User: tc.user, Password: "pw"}.Dial(context.Background(), addr)
			if args := <-got; strings.Join(args, " ") != tc.wantArgs {
				t.Errorf("server got %q, want %q", args, tc.wantArgs)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Dial: %v", err)
			case tc.wantErr == "":
				c.Close()
			case err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrAuth) != tc.auth:
				t.Fatalf("Dial: %v, want %q (ErrAuth %v)", err, tc.wantErr, tc.auth)
			}
		})
	}
}

// Without a password nothing is sent; a closed port says it could not
// connect.
func TestDialerPlain(t *testing.T) {
	addr, got := fakeServer(t, "+PONG\r\n")
	c, err := Dialer{Timeout: 5 * time.Second}.DialConn(context.Background(), addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Do("PING"); err != nil || v.String() != "PONG" {
		t.Fatalf("PING: %v %v", v, err)
	}
	if args := <-got; strings.Join(args, " ") != "PING" {
		t.Fatalf("first command %q, want PING", args)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := (Dialer{Timeout: 5 * time.Second}).Dial(context.Background(), closed); err == nil || !strings.Contains(err.Error(), "cannot connect to "+closed) {
		t.Fatalf("dial a closed port: %v", err)
	}
}
