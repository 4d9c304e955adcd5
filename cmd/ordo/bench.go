package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/ordo-broker/ordo/bench"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure PUBLISH throughput, ack latency and end-to-end delivery against ordo or any RESP server",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "server host"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 6379, Usage: "server port"},
			&cli.StringFlag{Name: "addrs", Usage: "several servers (host:port,...): clients are spread over them"},
			&cli.IntFlag{Name: "clients", Aliases: []string{"c"}, Value: 50, Usage: "publisher connections"},
			&cli.IntFlag{Name: "pipeline", Aliases: []string{"P"}, Value: 1, Usage: "PUBLISHes in flight per connection"},
			&cli.IntFlag{Name: "subscribers", Value: 1, Usage: "subscriber connections"},
			&cli.IntFlag{Name: "size", Aliases: []string{"d"}, Value: 100, Usage: "payload bytes (min 16)"},
			&cli.StringFlag{Name: "channel", Value: "bench", Usage: "channel to publish to"},
			&cli.DurationFlag{Name: "duration", Value: 10e9, Usage: "publishing time per run"},
			&cli.Int64Flag{Name: "messages", Aliases: []string{"n"}, Usage: "stop a run after this many publishes (0 = run for --duration)"},
			&cli.IntFlag{Name: "runs", Value: 1, Usage: "repeat and report the median run"},
			&cli.BoolFlag{Name: "json", Usage: "print results as JSON"},
		},
		Action: func(c *cli.Context) error {
			o := bench.Options{
				Clients:     c.Int("clients"),
				Pipeline:    c.Int("pipeline"),
				Subscribers: c.Int("subscribers"),
				Size:        c.Int("size"),
				Channel:     c.String("channel"),
				Duration:    c.Duration("duration"),
				Messages:    c.Int64("messages"),
			}
			if a := c.String("addrs"); a != "" {
				o.Addrs = strings.Split(a, ",")
			} else {
				o.Addrs = []string{net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))}
			}
			var results []bench.Result
			for i := 0; i < c.Int("runs"); i++ {
				r, err := bench.Run(c.Context, o)
				if err != nil {
					return cli.Exit("bench: "+err.Error(), 1)
				}
				results = append(results, r)
				if !c.Bool("json") && c.Int("runs") > 1 {
					fmt.Printf("run %d: %.0f msg/s\n", i+1, r.PublishRate)
				}
			}
			m := bench.Median(results)
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(m)
			}
			m.Format(os.Stdout)
			return nil
		},
	}
}
