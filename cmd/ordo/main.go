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
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
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
			reload := func() (broker.Config, error) { return configFromCLI(c) }
			return runNode(c.Context, cfg, reload)
		},
	}
}

// runNode serves until the context ends (SIGTERM, SIGINT: a graceful
// stop) or the server fails. SIGHUP rereads the configuration (file,
// variables, flags) and applies what can change while running (the log
// level, users and passwords, protected mode, limits: Server.Reload); it
// never stops the node.
func runNode(ctx context.Context, cfg broker.Config, reload func() (broker.Config, error)) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ln, tlsLn, err := listenNode(&cfg) // (before the data directory is touched)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if os.Getenv("GOGC") == "" {
		// The broker allocates per message and holds little long-lived
		// data: trading some memory for less GC work measured ~+15%
		// PUBLISH throughput. GOGC still overrides it.
		debug.SetGCPercent(400)
	}
	if cfg.MemoryLimit > 0 {
		// A backstop for the garbage GOGC=400 lets pile up (e.g. a startup
		// scan of a log without a checkpoint).
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if path := os.Getenv("ORDO_CPUPROFILE"); path != "" {
		// For performance work: a pprof CPU profile of the whole run.
		f, err := os.Create(path)
		if err != nil {
			closeListeners(ln, tlsLn)
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if cfg.PprofAddr != "" {
		// For performance work: profiles of a running node, on demand.
		pln, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			closeListeners(ln, tlsLn)
			return cli.Exit(fmt.Sprintf("pprof_addr %s: %v", cfg.PprofAddr, err), 1)
		}
		defer pln.Close()
		go http.Serve(pln, nil) // (net/http/pprof registers on the default mux)
	}
	srv, err := broker.New(cfg)
	if err != nil {
		closeListeners(ln, tlsLn)
		return cli.Exit(err.Error(), 1)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeListeners(ln, tlsLn) }()
	log := logging.NewNode(cfg.Logger, cfg.ID)
	for {
		select {
		case <-hup:
			if err := srv.ReloadTLS(); err != nil {
				log.Logf(logging.Warn, "node", "SIGHUP: TLS certificates not reloaded (the old ones stay): %v", err)
			}
			newCfg, err := reload()
			if err == nil {
				err = srv.Reload(newCfg)
			}
			if err != nil {
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
