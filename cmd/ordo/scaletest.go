package main

import (
	"os"
	"time"

	"github.com/ordo-broker/ordo/bench/scale"
	"github.com/urfave/cli/v2"
)

func scaleTestCommand() *cli.Command {
	return &cli.Command{
		Name:  "scale-test",
		Usage: "run N local nodes as one cluster through joins, leader kills, restarts, a leave and a join, checking every history (demo 7)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "peers", Value: 5, Usage: "cluster size (at least 3)"},
			&cli.IntFlag{Name: "messages", Value: 20, Usage: "messages each peer publishes in the main publishing phase"},
			&cli.IntFlag{Name: "kills", Value: 3, Usage: "leaders killed (kill -9) in a row"},
			&cli.IntFlag{Name: "base-port", Usage: "peer i serves on base-port+i-1 (0: free ports)"},
			&cli.StringFlag{Name: "data-dir", Usage: "where node<i>/ and node<i>.log go (default: a temporary directory, removed after a successful run)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the temporary data directory"},
			&cli.DurationFlag{Name: "heartbeat-interval", Value: 100 * time.Millisecond, Usage: "passed to every node"},
			&cli.DurationFlag{Name: "leader-timeout", Value: time.Second, Usage: "passed to every node (longer than the node default: 15 nodes on 2 cores need the slack)"},
			&cli.StringFlag{Name: "binary", Usage: "the ordo binary to run the nodes with (default: this one)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "bound on the whole run"},
		},
		Action: func(c *cli.Context) error {
			o := scale.Options{
				Peers:             c.Int("peers"),
				Messages:          c.Int("messages"),
				Kills:             c.Int("kills"),
				BasePort:          c.Int("base-port"),
				DataDir:           c.String("data-dir"),
				Keep:              c.Bool("keep"),
				HeartbeatInterval: c.Duration("heartbeat-interval"),
				LeaderTimeout:     c.Duration("leader-timeout"),
				Binary:            c.String("binary"),
				Timeout:           c.Duration("timeout"),
			}
			if _, err := scale.Run(c.Context, o, os.Stdout); err != nil {
				return cli.Exit("scale-test: "+err.Error(), 1)
			}
			return nil
		},
	}
}
