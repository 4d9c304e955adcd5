package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/ordo-broker/ordo/clients"
	"github.com/ordo-broker/ordo/clients/chat"
	"github.com/ordo-broker/ordo/clients/terminal"
	"github.com/urfave/cli/v2"
)

// `ordo peer`: the guide's peer-to-peer mode, a full node (every `ordo
// node` option applies) and its chat terminal in one process.
func peerCommand() *cli.Command {
	flags := nodeFlags()
	for _, f := range flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "data-dir" {
			sf.DefaultText = "data/peer<id>"
		}
	}
	flags = append(flags,
		&cli.StringFlag{Name: "channel", Value: "chat", Usage: "the conversation's channel"},
		&cli.BoolFlag{Name: "headless", Usage: "no screen: print the conversation to stdout and read lines and commands from stdin (for scripts)"},
		&cli.StringFlag{Name: "log-file", Usage: "where the node's full log goes (default: <data-dir>/peer.log; with --headless, stderr; '-' for stderr)"},
	)
	return &cli.Command{
		Name:  "peer",
		Usage: "run a node and its chat terminal (peer-to-peer mode): ordo peer --id 2 --port 6002 --seed 1:127.0.0.1:6001",
		Description: "A peer is a full node (its port also serves Redis clients) with a chat on the same screen.\n" +
			"Typed lines are published as peer_<id>; /status, /help, /quit (leave the cluster, then exit).\n" +
			"Ctrl+C stops the peer without leaving: restarted with the same --data-dir it is a member again.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			cfg, err := configFromCLI(c)
			if err != nil {
				return cli.Exit("ordo peer: "+err.Error(), 2)
			}
			return runPeer(c.Context, cfg, peerOptions{
				channel:  c.String("channel"),
				headless: c.Bool("headless"),
				logFile:  c.String("log-file"),
			})
		},
	}
}

type peerOptions struct {
	channel  string
	headless bool
	logFile  string
}

func runPeer(ctx context.Context, cfg broker.Config, o peerOptions) error {
	if cfg.DataDir == "" {
		cfg.DataDir = fmt.Sprintf("data/peer%d", cfg.ID)
	}
	// The terminal shows the conversation; the node must not print it
	// too (print_channels would write over the screen).
	cfg.PrintChannels = nil
	full, closeLog, err := peerLog(cfg.DataDir, o)
	if err != nil {
		return cli.Exit("ordo peer: "+err.Error(), 1)
	}
	defer closeLog()
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return cli.Exit("ordo peer: "+err.Error(), 2)
	}
	// Text format whatever log_format says: the feed picks the events
	// out of text lines.
	feed := chat.NewLogFeed(full, "peer_")
	cfg.Logger = logging.NewLogger(feed, "text", level)
	clients.SetLibraryLog(full)

	if cfg.TLS.Only {
		// The terminal is a client of the node, in plaintext.
		return cli.Exit("ordo peer: tls_only is not supported (the terminal connects to the node's plaintext port)", 2)
	}
	ln, tlsLn, err := listenNode(&cfg)
	if err != nil {
		return cli.Exit("ordo peer: "+err.Error(), 1)
	}
	srv, err := broker.New(cfg)
	if err != nil {
		closeListeners(ln, tlsLn)
		return cli.Exit("ordo peer: "+err.Error(), 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		err := srv.ServeListeners(ln, tlsLn)
		served <- err
		cancel() // the node stopped by itself: end the terminal too
	}()

	name := fmt.Sprintf("peer_%d", cfg.ID)
	farewell := ""
	sess := chat.New(chat.Config{
		Name:    name,
		Channel: o.channel,
		Addrs:   []string{dialAddr(ln.Addr())},
		Prefix:  "peer_",
		Log:     feed,
		Leave: func() (string, error) {
			switch err := srv.Leave(); {
			case errors.Is(err, broker.ErrLastVoter):
				farewell = fmt.Sprintf("%s is the cluster's only member: there is no one to leave; stopping (its log stays in %s).", name, cfg.DataDir)
			case err != nil:
				return "", err
			default:
				farewell = fmt.Sprintf("Left the cluster; %s stops.", name)
			}
			return farewell, nil
		},
	})
	if o.headless {
		err = terminal.RunHeadless(ctx, sess, os.Stdin, os.Stdout)
	} else {
		err = tuiError("ordo peer", terminal.RunTUI(ctx, sess, terminal.Options{Title: name, Placeholder: "type a message, or /help"}))
	}
	// Ctrl+C (or a signal) stops the node as a crash would, except that
	// a leader hands its leadership over first: it stays a member and a
	// restart with the same data directory carries on. After /quit it is
	// no member any more: just close.
	if sess.Left() {
		srv.Close()
	} else {
		srv.Shutdown()
	}
	select {
	case serr := <-served:
		if serr != nil && err == nil {
			err = cli.Exit("ordo peer: "+serr.Error(), 1)
		}
	case <-time.After(5 * time.Second):
	}
	if err != nil {
		return err
	}
	if farewell != "" && !o.headless {
		// The full screen is gone: say it once more where it stays.
		fmt.Println(farewell)
	}
	return nil
}

// peerLog opens where the node's full log goes.
func peerLog(dataDir string, o peerOptions) (io.Writer, func(), error) {
	path := o.logFile
	if path == "-" || (path == "" && o.headless) {
		return os.Stderr, func() {}, nil
	}
	if path == "" {
		path = filepath.Join(dataDir, "peer.log")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// dialAddr is where a local client reaches a listener: a wildcard
// address (0.0.0.0, ::) is reached through loopback.
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// tuiError says what to do when the full screen cannot start (no
// terminal: a script, a service).
func tuiError(cmd string, err error) error {
	if err == nil {
		return nil
	}
	return cli.Exit(fmt.Sprintf("%s: %v (without a terminal, use --headless)", cmd, err), 1)
}
