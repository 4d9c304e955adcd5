// Package clients is ordo's Go client library (a thin layer over go-redis:
// ordo speaks the Redis protocol).
//
// What it adds to a plain Redis client is resumable consumption: Follow
// reads a channel's history from any sequence number and then keeps
// following it live, so a consumer that reconnects continues exactly
// where it stopped, with no gap and no duplicate.
package clients

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client talks to one ordo node.
type Client struct {
	rdb  *redis.Client
	addr string
}

// Options tune a Client. The zero value is New's behaviour.
type Options struct {
	// Name is sent as CLIENT SETNAME on every connection; ordo records it
	// as the sender of every message published through the client.
	Name string
	// DialTimeout bounds one connection attempt (default 5s).
	DialTimeout time.Duration
	// NoRetry turns off go-redis's automatic retry of a command whose
	// connection broke. A PUBLISH retried that way after the node received
	// it is published twice; Failover's clients set it and retry only
	// what certainly was not delivered (see NotDelivered).
	NoRetry bool
	// Username and Password authenticate every connection (Password
	// alone: the default user, as requirepass).
	Username, Password string
	// TLSConfig, if not nil, makes every connection TLS; an empty
	// ServerName is taken from the address dialled.
	TLSConfig *tls.Config
}

// New connects lazily to addr (host:port).
func New(addr string) *Client { return NewWithOptions(addr, Options{}) }

// NewWithOptions connects lazily to addr (host:port).
func NewWithOptions(addr string, o Options) *Client {
	ro := &redis.Options{
		Addr:            addr,
		Protocol:        2,
		DisableIdentity: true,
		ClientName:      o.Name,
		DialTimeout:     o.DialTimeout,
		Username:        o.Username,
		Password:        o.Password,
		TLSConfig:       o.TLSConfig,
	}
	if o.NoRetry {
		// One dial attempt, no command retry: the caller decides. Reads
		// wait longer than the node's own publish timeout (5s by
		// default), so a slow commit is answered by the node rather than
		// cut by the client, and a deadline on ctx is obeyed.
		ro.MaxRetries, ro.DialerRetries = -1, 1
		ro.ReadTimeout, ro.ContextTimeoutEnabled = 15*time.Second, true
	}
	return &Client{rdb: redis.NewClient(ro), addr: addr}
}

// Addr is the node's address.
func (c *Client) Addr() string { return c.addr }

// Redis exposes the underlying go-redis client.
func (c *Client) Redis() *redis.Client { return c.rdb }

// Close releases the connections.
func (c *Client) Close() error { return c.rdb.Close() }

// Publish sends a message; it returns once the message is committed
// (durable on a majority) with the number of subscribers on that node that
// received it.
func (c *Client) Publish(ctx context.Context, channel, payload string) (int64, error) {
	return c.rdb.Publish(ctx, channel, payload).Result()
}

// Message is one committed message.
type Message struct {
	Seq     uint64
	Channel string
	Payload string
	Sender  string
	Time    time.Time
}

// Follow calls fn for every message of channel with a sequence number
// greater than after, in order: first the history, then new messages as
// they commit. It returns when ctx ends or fn returns an error. To resume
// after a disconnect, call it again with the last Seq seen.
func (c *Client) Follow(ctx context.Context, channel string, after uint64, fn func(Message) error) error {
	for {
		// go-redis does not interrupt a blocked read when ctx is
		// cancelled: the check here ends the loop at the next round (or
		// Close the client to end it at once).
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := c.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{channel, fmt.Sprintf("%d-0", after)},
			Count:   1000,
			Block:   2 * time.Second,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for _, st := range res {
			for _, m := range st.Messages {
				msg, err := toMessage(channel, m)
				if err != nil {
					return err
				}
				if err := fn(msg); err != nil {
					return err
				}
				after = msg.Seq
			}
		}
	}
}

func toMessage(channel string, m redis.XMessage) (Message, error) {
	seq, err := strconv.ParseUint(strings.TrimSuffix(m.ID, "-0"), 10, 64)
	if err != nil {
		return Message{}, fmt.Errorf("unexpected entry id %q", m.ID)
	}
	ms, _ := strconv.ParseInt(fmt.Sprint(m.Values["time"]), 10, 64)
	return Message{
		Seq:     seq,
		Channel: channel,
		Payload: fmt.Sprint(m.Values["payload"]),
		Sender:  fmt.Sprint(m.Values["sender"]),
		Time:    time.UnixMilli(ms),
	}, nil
}

// Status returns the node's STATUS fields.
func (c *Client) Status(ctx context.Context) (map[string]string, error) {
	v, err := c.rdb.Do(ctx, "STATUS").StringSlice()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := 0; i+1 < len(v); i += 2 {
		out[v[i]] = v[i+1]
	}
	return out, nil
}

// SetLibraryLog sends go-redis's own log lines (connection-pool and dial
// trouble, written to stderr by default) to w, for the whole process: a
// full-screen terminal must not have them written over its screen.
func SetLibraryLog(w io.Writer) { redis.SetLogger(libraryLog{w}) }

type libraryLog struct{ w io.Writer }

func (l libraryLog) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(l.w, "go-redis: "+strings.TrimSuffix(format, "\n")+"\n", v...)
}
