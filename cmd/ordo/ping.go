package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
	"github.com/urfave/cli/v2"
)

// pingCommand is `ordo ping`: one PING over RESP, exit 0 on PONG. It is
// the container health check — the image is the static binary on an
// empty base, with no shell or redis-cli to run one — and works against
// any RESP server.
func pingCommand() *cli.Command {
	return &cli.Command{
		Name:      "ping",
		Usage:     "send PING to a node; exit 0 if it answers PONG, 1 otherwise (a health check)",
		ArgsUsage: " ",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "node host"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 6379, Usage: "node port"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "bound on connecting, TLS, AUTH and reading the reply together"},
		}, clientFlags()...),
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return cli.Exit(fmt.Sprintf("ordo ping: unexpected argument %q (use --host and --port)", c.Args().First()), 2)
			}
			if c.Duration("timeout") <= 0 {
				return cli.Exit("ordo ping: --timeout must be positive, e.g. 2s", 2)
			}
			cc, err := readClientFlags(c)
			if err != nil {
				return cli.Exit("ordo ping: "+err.Error(), 2)
			}
			addr := net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))
			if err := ping(cc.dialer(), addr, c.Duration("timeout")); err != nil {
				return cli.Exit("ordo ping: "+cc.explain(err), 1)
			}
			fmt.Fprintln(c.App.Writer, "PONG")
			return nil
		},
	}
}

// ping sends PING to addr and checks for PONG, all within timeout.
func ping(d resp.Dialer, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, err := d.Dial(ctx, addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return fmt.Errorf("%v (is the node running and listening there?)", err)
		}
		return err
	}
	defer conn.Close()
	// One deadline for the whole exchange: a node that accepts but never
	// answers (stopped with SIGSTOP, wedged) must fail the check too.
	conn.SetDeadline(deadline)
	rc := resp.NewConn(conn, 0)
	v, err := rc.Do("PING")
	if err != nil {
		if te := resp.TLSError(addr, err); te != err {
			return te
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s closed the connection without a reply: %w", addr, err)
		}
		return fmt.Errorf("no reply from %s within %s: %w", addr, timeout, err)
	}
	if err := v.Err(); err != nil {
		if strings.HasPrefix(err.Error(), "NOAUTH") {
			return fmt.Errorf("%s answered %w", addr, err)
		}
		return fmt.Errorf("%s answered an error instead of PONG: %v", addr, err)
	}
	if v.String() != "PONG" {
		return fmt.Errorf("%s answered %q instead of PONG (not a Redis-protocol server?)", addr, v.String())
	}
	return nil
}
