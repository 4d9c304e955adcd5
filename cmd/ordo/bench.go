package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/ordo-broker/ordo/bench"
	"github.com/ordo-broker/ordo/bench/report"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure PUBLISH throughput, ack latency and end-to-end delivery against ordo or any RESP server",
		Description: "Shows progress once a second on standard error, then a table of the results (the median run\n" +
			"with --runs). --csv and --json append every run to a file, so that runs of several invocations\n" +
			"can be compared; --plot draws latency and throughput over time into a PNG.",
		Flags: append([]cli.Flag{
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
			&cli.Float64Flag{Name: "rate", Usage: "open loop: publish this many messages per second in all on a fixed schedule and measure latency from each message's intended send time (0: as fast as replies allow; --pipeline is then ignored)"},
			&cli.IntFlag{Name: "runs", Value: 1, Usage: "repeat and report the median run"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "sampling interval of the progress line, the JSON samples and the plot"},
			&cli.StringFlag{Name: "csv", Usage: "append one row per run to this CSV `FILE` (header written if new)"},
			&cli.StringFlag{Name: "json", Usage: "append one JSON object per run, with its parameters and per-interval samples, to this `FILE` (- for standard output, the table then goes to standard error)"},
			&cli.StringFlag{Name: "plot", Usage: "draw latency and throughput over time of the (median) run into this PNG `FILE`"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines"},
		}, clientFlags()...),
		Action: runBench,
	}
}

func runBench(c *cli.Context) error {
	cc, err := readClientFlags(c)
	if err != nil {
		return cli.Exit("bench: "+err.Error(), 2)
	}
	o := bench.Options{
		Dialer:      cc.dialer(),
		Clients:     c.Int("clients"),
		Pipeline:    c.Int("pipeline"),
		Subscribers: c.Int("subscribers"),
		Size:        c.Int("size"),
		Channel:     c.String("channel"),
		Duration:    c.Duration("duration"),
		Messages:    c.Int64("messages"),
		Interval:    c.Duration("interval"),
		Rate:        c.Float64("rate"),
	}
	if a := c.String("addrs"); a != "" {
		o.Addrs = strings.Split(a, ",")
	} else {
		o.Addrs = []string{net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))}
	}
	o = o.WithDefaults()
	csvPath, jsonPath, plotPath := c.String("csv"), c.String("json"), c.String("plot")
	for _, f := range []struct{ flag, path string }{{"csv", csvPath}, {"json", jsonPath}, {"plot", plotPath}} {
		// `--json --runs 3` (the old boolean --json) would otherwise write
		// a file named "--runs".
		if strings.HasPrefix(f.path, "-") && !(f.flag == "json" && f.path == "-") {
			return cli.Exit(fmt.Sprintf("bench: --%s takes a file name, not %q (--json - prints to standard output)", f.flag, f.path), 2)
		}
	}
	// The table goes to standard output unless the JSON does, and progress
	// to standard error, so that either can be piped or redirected alone.
	var out io.Writer = os.Stdout
	if jsonPath == "-" {
		out = os.Stderr
	}
	tty := isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
	runs := max(c.Int("runs"), 1)

	var done []report.Run
	for i := 1; i <= runs && c.Context.Err() == nil; i++ {
		progress := report.NewProgress(os.Stderr, tty, o, i, runs)
		ro := o
		if !c.Bool("quiet") {
			ro.OnSample = progress.Sample
		}
		started := time.Now()
		res, err := bench.Run(c.Context, ro)
		progress.Done()
		if err != nil {
			return cli.Exit("bench: "+cc.explain(err), 1)
		}
		run := report.Run{Started: started, Index: i, Params: o, Result: res}
		done = append(done, run)
		// Each run is kept as soon as it ends: an interrupted series
		// still leaves the runs it finished.
		if err := save(run, csvPath, jsonPath); err != nil {
			return cli.Exit("bench: "+err.Error(), 1)
		}
		if runs > 1 {
			fmt.Fprintln(out, report.Line(run))
		}
	}
	if len(done) > 1 {
		fmt.Fprintln(out)
	}
	m := report.Median(done)
	report.Table(out, m, len(done))
	if plotPath != "" {
		if err := report.SavePNG(plotPath, m); err != nil {
			return cli.Exit("bench: "+err.Error(), 1)
		}
	}
	var wrote []string
	for _, p := range []string{csvPath, jsonPath, plotPath} {
		if p != "" && p != "-" {
			wrote = append(wrote, p)
		}
	}
	if len(wrote) > 0 {
		fmt.Fprintf(out, "\nwrote %s\n", strings.Join(wrote, ", "))
	}
	return nil
}

func save(r report.Run, csvPath, jsonPath string) error {
	if csvPath != "" {
		if err := report.AppendCSV(csvPath, r); err != nil {
			return err
		}
	}
	switch jsonPath {
	case "":
	case "-":
		return report.WriteJSON(os.Stdout, r)
	default:
		return report.AppendJSON(jsonPath, r)
	}
	return nil
}
