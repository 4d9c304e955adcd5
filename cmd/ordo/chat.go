package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/clients"
	"github.com/ordo-broker/ordo/clients/chat"
	"github.com/ordo-broker/ordo/clients/terminal"
	"github.com/urfave/cli/v2"
)

// `ordo chat`: the guide's client-server chat, a terminal for any node.
func chatCommand() *cli.Command {
	return &cli.Command{
		Name:  "chat",
		Usage: "chat through any node: ordo chat --port 5001 --addr 127.0.0.1:5002 --client-id 101",
		Description: "Shows every message of the channel as [seq=N] sender: text and publishes what you type as client_<id>.\n" +
			"/status, /connect HOST:PORT, /help, /quit. When the node dies the chat moves to the next address\n" +
			"(--addr, in order) and resumes after the last message it showed.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "the node to connect to first"},
			&cli.IntFlag{Name: "port", Value: broker.DefaultPort, Usage: "its port"},
			&cli.StringSliceFlag{Name: "addr", Usage: "more nodes (HOST:PORT) to move to when one dies, in order; repeat or comma-separate"},
			&cli.IntFlag{Name: "client-id", Usage: "publish as client_<id> (default: a random 3-digit id)"},
			&cli.StringFlag{Name: "channel", Value: "chat", Usage: "the conversation's channel"},
			&cli.BoolFlag{Name: "headless", Usage: "no screen: print the conversation to stdout and read lines and commands from stdin (for scripts)"},
		}, clientFlags()...),
		Action: func(c *cli.Context) error {
			cc, err := readClientFlags(c)
			if err != nil {
				return cli.Exit("ordo chat: "+err.Error(), 2)
			}
			id := c.Int("client-id")
			if !c.IsSet("client-id") {
				id = 100 + rand.IntN(900)
			}
			addrs := []string{net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))}
			for _, a := range c.StringSlice("addr") {
				if _, _, err := net.SplitHostPort(a); err != nil {
					return cli.Exit(fmt.Sprintf("ordo chat: --addr %q: %v (want HOST:PORT)", a, err), 2)
				}
				addrs = append(addrs, a)
			}
			name := fmt.Sprintf("client_%d", id)
			sess := chat.New(chat.Config{Name: name, Channel: c.String("channel"), Addrs: addrs, Client: cc.options()})
			if c.Bool("headless") {
				return terminal.RunHeadless(c.Context, sess, os.Stdin, os.Stdout)
			}
			// go-redis reports dial trouble on stderr, over the screen;
			// the chat says what matters itself.
			clients.SetLibraryLog(io.Discard)
			return tuiError("ordo chat", terminal.RunTUI(c.Context, sess, terminal.Options{Title: name, Placeholder: "type a message, or /help"}))
		},
	}
}
