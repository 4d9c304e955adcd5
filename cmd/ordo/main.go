// Command ordo runs a node of the ordo broker, a peer (node + chat
// terminal), a chat client, or the load generator.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

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
			benchCommand(),
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

func env(name string) []string { return []string{"ORDO_" + name} }

func nodeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML configuration file (flags and ORDO_* variables override it)", EnvVars: env("CONFIG")},
		&cli.Uint64Flag{Name: "id", Usage: "this node's id (unique in the cluster; the highest live id leads)", Value: 1, EnvVars: env("ID")},
		&cli.StringFlag{Name: "host", Usage: "address to listen on", Value: "127.0.0.1", EnvVars: env("HOST")},
		&cli.IntFlag{Name: "port", Usage: "port for clients and peers", Value: broker.DefaultPort, EnvVars: env("PORT")},
		&cli.StringFlag{Name: "data-dir", Usage: "where the log lives (default data/node<id>)", EnvVars: env("DATA_DIR")},
		&cli.StringFlag{Name: "peers", Usage: "cluster members including this node: 1:127.0.0.1:5001,2:127.0.0.1:5002,...", EnvVars: env("PEERS")},
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info", EnvVars: env("LOG_LEVEL")},
		&cli.StringFlag{Name: "log-format", Usage: "text (human-readable lines) or json", Value: "text", EnvVars: env("LOG_FORMAT")},
		&cli.DurationFlag{Name: "heartbeat-interval", Usage: "leader heartbeat period", EnvVars: env("HEARTBEAT_INTERVAL")},
		&cli.DurationFlag{Name: "leader-timeout", Usage: "silence after which followers elect a new leader", EnvVars: env("LEADER_TIMEOUT")},
		&cli.DurationFlag{Name: "publish-timeout", Usage: "how long PUBLISH waits for its commit before failing", EnvVars: env("PUBLISH_TIMEOUT")},
		&cli.StringFlag{Name: "fsync", Usage: "always (acknowledge after fsync) or never (fast, loses acknowledged messages if every node crashes)", EnvVars: env("FSYNC")},
		&cli.StringFlag{Name: "max-message-size", Usage: "largest PUBLISH payload, e.g. 1mb", EnvVars: env("MAX_MESSAGE_SIZE")},
		&cli.StringFlag{Name: "max-request-size", Usage: "largest request argument, e.g. 64mb", EnvVars: env("MAX_REQUEST_SIZE")},
		&cli.IntFlag{Name: "max-clients", Usage: "maximum simultaneous clients", EnvVars: env("MAX_CLIENTS")},
		&cli.StringFlag{Name: "retention-bytes", Usage: "drop the oldest log segments beyond this size (0 = keep everything)", EnvVars: env("RETENTION_BYTES")},
		&cli.DurationFlag{Name: "retention-age", Usage: "drop log segments older than this (0 = keep everything)", EnvVars: env("RETENTION_AGE")},
		&cli.BoolFlag{Name: "rejoin-empty", Usage: "this node's disk was replaced or wiped: take no part in elections until the leader has refilled its log", EnvVars: env("REJOIN_EMPTY")},
		&cli.StringFlag{Name: "segment-size", Usage: "log segment file size, e.g. 4mb (retention drops whole segments)", EnvVars: env("SEGMENT_SIZE")},
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
				return cli.Exit(err.Error(), 2)
			}
			return runNode(c.Context, cfg)
		},
	}
}

// configFromCLI builds the node configuration: flags > environment >
// config file > defaults.
func configFromCLI(c *cli.Context) (broker.Config, error) {
	var cfg broker.Config
	cfg.Port = broker.DefaultPort
	logLevel, logFormat := "info", "text"
	if path := c.String("config"); path != "" {
		fc, err := loadFile(path)
		if err != nil {
			return cfg, err
		}
		if err := fc.apply(&cfg, &logLevel, &logFormat); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	if c.IsSet("id") {
		cfg.ID = c.Uint64("id")
	}
	if c.IsSet("host") {
		cfg.Host = c.String("host")
	}
	if c.IsSet("port") {
		cfg.Port = c.Int("port")
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir")
	}
	if c.IsSet("peers") {
		peers, err := parsePeers(c.String("peers"))
		if err != nil {
			return cfg, err
		}
		cfg.Peers = peers
	}
	if c.IsSet("log-level") {
		logLevel = c.String("log-level")
	}
	if c.IsSet("log-format") {
		logFormat = c.String("log-format")
	}
	for name, dst := range map[string]*durationTarget{
		"heartbeat-interval": {&cfg.HeartbeatInterval},
		"leader-timeout":     {&cfg.LeaderTimeout},
		"publish-timeout":    {&cfg.PublishTimeout},
		"retention-age":      {&cfg.RetainAge},
	} {
		if c.IsSet(name) {
			*dst.d = c.Duration(name)
		}
	}
	if c.IsSet("fsync") {
		v, err := parseFsync(c.String("fsync"))
		if err != nil {
			return cfg, err
		}
		cfg.NoSync = v
	}
	for name, dst := range map[string]*int64{
		"max-message-size": &cfg.Limits.MaxMessageBytes,
		"max-request-size": &cfg.Limits.MaxRequestBytes,
		"retention-bytes":  &cfg.RetainBytes,
	} {
		if c.IsSet(name) {
			v, err := parseByteSize(c.String(name))
			if err != nil {
				return cfg, fmt.Errorf("--%s: %w", name, err)
			}
			*dst = v
		}
	}
	if c.IsSet("segment-size") {
		v, err := parseByteSize(c.String("segment-size"))
		if err != nil {
			return cfg, fmt.Errorf("--segment-size: %w", err)
		}
		cfg.SegmentBytes = int(v)
	}
	cfg.RejoinEmpty = c.Bool("rejoin-empty")
	if c.IsSet("max-clients") {
		cfg.Limits.MaxClients = c.Int("max-clients")
	}
	if cfg.ID == 0 {
		cfg.ID = 1
	}
	level, err := logging.ParseLevel(logLevel)
	if err != nil {
		return cfg, err
	}
	if logFormat != "text" && logFormat != "json" {
		return cfg, fmt.Errorf("log format must be text or json, got %q", logFormat)
	}
	cfg.Logger = logging.NewLogger(os.Stderr, logFormat, level)
	return cfg, nil
}

type durationTarget struct{ d *time.Duration }

func runNode(ctx context.Context, cfg broker.Config) error {
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
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	srv, err := broker.New(cfg)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		srv.Close()
		if err != nil {
			return cli.Exit(err.Error(), 1)
		}
		return nil
	case <-ctx.Done():
		return srv.Close()
	}
}
