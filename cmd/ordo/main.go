// Command ordo runs a node of the ordo broker (`ordo node`), a node with
// its chat terminal (`ordo peer`), a chat client (`ordo chat`), the load
// generator (`ordo bench`), the local scale test (`ordo scale-test`), a
// health check (`ordo ping`) or the offline log reader (`ordo log`).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &cli.App{
		Name:    "ordo",
		Usage:   "a clustered, totally ordered, durable pub/sub broker that speaks the Redis protocol",
		Version: broker.Version,
		Commands: []*cli.Command{
			nodeCommand(),
			peerCommand(),
			chatCommand(),
			benchCommand(),
			scaleTestCommand(),
			{
				Name:  "version",
				Usage: "print the version, the commit it was built from and the Go version",
				Action: func(*cli.Context) error {
					fmt.Printf("ordo %s (commit %s, %s)\n", broker.Version, broker.Commit(), runtime.Version())
					return nil
				},
			},
			pingCommand(),
			logCommand(),
		},
	}
	if err := app.RunContext(ctx, os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			fmt.Fprintln(os.Stderr, "ordo:", err)
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "ordo:", err)
		os.Exit(1)
	}
}

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:  "node",
		Usage: "run a broker node (with no flags: a one-node broker on 127.0.0.1:6379)",
		Flags: nodeFlags(),
		Action: func(c *cli.Context) error {
			cfg, err := configFromCLI(c)
			if err != nil {
				return cli.Exit("ordo node: "+err.Error(), 2)
			}
			reload := func() error { _, err := configFromCLI(c); return err }
			return runNode(c.Context, cfg, reload)
		},
	}
}

// runNode serves until the context ends (SIGTERM, SIGINT: a graceful
// stop) or the server fails. SIGHUP rereads the configuration (file,
// variables, flags) and applies what can change while running, the log
// level; it never stops the node.
func runNode(ctx context.Context, cfg broker.Config, reload func() error) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Listen before broker.New opens (and locks) the data directory: a
	// port in use then fails at once, with nothing on disk touched,
	// rather than after recovering the log.
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return cli.Exit(fmt.Sprintf("cannot serve on %s: %v", addr, err), 1)
	}
	cfg.Port = ln.Addr().(*net.TCPAddr).Port // (--port 0: the one chosen)
	if os.Getenv("GOGC") == "" {
		// The broker allocates per message and holds little long-lived
		// data: trading some memory for less GC work measured ~+15%
		// PUBLISH throughput. GOGC still overrides it.
		debug.SetGCPercent(400)
	}
	if path := os.Getenv("ORDO_CPUPROFILE"); path != "" {
		// For performance work: a pprof CPU profile of the whole run.
		f, err := os.Create(path)
		if err != nil {
			ln.Close()
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	srv, err := broker.New(cfg)
	if err != nil {
		ln.Close()
		return cli.Exit(err.Error(), 1)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log := logging.NewNode(cfg.Logger, cfg.ID)
	for {
		select {
		case <-hup:
			if err := reload(); err != nil {
				log.Logf(logging.Warn, "node", "SIGHUP: configuration not reloaded: %v", err)
			} else {
				log.Logf(logging.Info, "node", "SIGHUP: configuration reloaded; log level %s", logLevel.Level())
			}
		case err := <-errc:
			srv.Close()
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			return nil
		case <-ctx.Done():
			// SIGTERM or SIGINT: the graceful stop (Server.Shutdown:
			// refuse new work, answer the publishes in flight, hand
			// leadership over or, with --leave-on-shutdown, leave, sync
			// the log), then exit 0.
			return srv.Shutdown()
		}
	}
}
