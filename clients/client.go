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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client talks to one ordo node.
type Client struct {
	rdb *redis.Client
}

// New connects lazily to addr (host:port).
func New(addr string) *Client {
	return &Client{rdb: redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		DisableIdentity: true,
	})}
}

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
