package main

import (
	"fmt"
	"net"
	"strconv"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "node host"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 6379, Usage: "node port"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "bound on connecting and reading the reply together"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return cli.Exit(fmt.Sprintf("ordo ping: unexpected argument %q (use --host and --port)", c.Args().First()), 2)
			}
			if c.Duration("timeout") <= 0 {
				return cli.Exit("ordo ping: --timeout must be positive, e.g. 2s", 2)
			}
			addr := net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))
			if err := ping(addr, c.Duration("timeout")); err != nil {
				return cli.Exit("ordo ping: "+err.Error(), 1)
			}
			fmt.Fprintln(c.App.Writer, "PONG")
			return nil
		},
	}
}

// ping sends PING to addr and checks for PONG, all within timeout.
func ping(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %v (is the node running and listening there?)", addr, err)
	}
	defer conn.Close()
	// One deadline for the whole exchange: a node that accepts but never
	// answers (stopped with SIGSTOP, wedged) must fail the check too.
	conn.SetDeadline(deadline)
	rc := resp.NewConn(conn, 0)
	v, err := rc.Do("PING")
	if err != nil {
		return fmt.Errorf("no reply from %s within %s: %v", addr, timeout, err)
	}
	if err := v.Err(); err != nil {
		return fmt.Errorf("%s answered an error instead of PONG: %v", addr, err)
	}
	if v.String() != "PONG" {
		return fmt.Errorf("%s answered %q instead of PONG (not a Redis-protocol server?)", addr, v.String())
	}
	return nil
}
