package broker

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/ordo-broker/ordo/broker/store"
)

func cmdPublish(c *client, args [][]byte)  { publish(c, args, false) }
func cmdSPublish(c *client, args [][]byte) { publish(c, args, true) }

// publish submits a message for sequencing. Its reply (the number of local
// deliveries, Redis Cluster's convention) is reserved in the output now
// and filled in when the message commits.
func publish(c *client, args [][]byte, shard bool) {
	max := c.srv.limits.Load().MaxMessageBytes
	if int64(len(args[2])) > max {
		c.w.Error(fmt.Sprintf("ERR message too large: %d bytes exceeds max-message-size %d", len(args[2]), max))
		return
	}
	sender := c.getName()
	if sender == "" {
		if c.anonSender == "" {
			c.anonSender = "client_" + strconv.FormatInt(c.id, 10)
		}
		sender = c.anonSender
	}
	if !c.srv.beginPublish() {
		c.w.Error(shuttingDownError)
		return
	}
	// One allocation holds the reserved reply, the replica's request and
	// the callback (plus the reply's channel).
	w := &publishWait{srv: c.srv}
	w.p.done = make(chan struct{})
	c.flush()
	if !c.replies.silenced() {
		c.reserve(&w.p)
	}
	c.lastPub = &w.p
	w.Msg = store.Message{Channel: args[1], Payload: args[2], Sender: sender, Shard: shard}
	c.srv.replica.Submit(&w.Request, w)
}

// publishWait is one PUBLISH waiting for its commit.
type publishWait struct {
	replica.Request
	p   pending
	srv *Server
}

func (w *publishWait) PublishDone(r replica.Result) {
	w.p.resolve(publishReply(r))
	w.srv.endPublish()
}

// intReplies are the replies ":0\r\n" to ":1023\r\n", shared (a reply is
// only ever read), so that acknowledging a publish allocates nothing.
var intReplies = func() [][]byte {
	out := make([][]byte, 1024)
	for i := range out {
		out[i] = append(strconv.AppendInt([]byte{':'}, int64(i), 10), '\r', '\n')
	}
	return out
}()

// publishReply is PUBLISH's reply for an outcome: the number of local
// receivers, or an error that says what the client should do.
func publishReply(r replica.Result) []byte {
	if r.Err == nil {
		if r.Receivers >= 0 && r.Receivers < len(intReplies) {
			return intReplies[r.Receivers]
		}
		return append(strconv.AppendInt([]byte{':'}, int64(r.Receivers), 10), '\r', '\n')
	}
	prefix := "-TRYAGAIN " // not sequenced, or unknown: retrying is the answer
	var se *replica.StorageError
	switch {
	case errors.Is(r.Err, replica.ErrNoLeader):
		prefix = "-CLUSTERDOWN "
	case errors.As(r.Err, &se), errors.Is(r.Err, replica.ErrShuttingDown):
		prefix = "-ERR "
	}
	return []byte(prefix + sanitize(r.Err.Error()) + "\r\n")
}
func cmdSubscribe(k subKind) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		if c.inExec && k == kindShard {
			// Redis refuses it inside a transaction; SUBSCRIBE and
			// PSUBSCRIBE are allowed there for backward compatibility.
			c.w.Error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
			return
		}
		c.flush()
		c.srv.reg.subscribe(c, k, args[1:])
	}
}

func cmdUnsubscribe(k subKind) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		c.flush()
		c.srv.reg.unsubscribe(c, k, args[1:], true)
	}
}

func cmdPubsubChannels(k subKind) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		if len(args) > 3 {
			c.w.Error(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%.128s'. Try PUBSUB HELP.", args[1]))
			return
		}
		pattern := ""
		if len(args) == 3 {
			pattern = string(args[2])
		}
		names := c.srv.reg.channels(k, pattern)
		c.w.Array(len(names))
		for _, n := range names {
			c.w.BulkString(n)
		}
	}
}

func cmdPubsubNumsub(k subKind) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		c.w.Array(2 * (len(args) - 2))
		for _, ch := range args[2:] {
			c.w.Bulk(ch)
			c.w.Int(int64(c.srv.reg.numSub(k, string(ch))))
		}
	}
}

func cmdPubsubNumpat(c *client, _ [][]byte) { c.w.Int(int64(c.srv.reg.numPat())) }

var pubsubHelp = []string{
	"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CHANNELS [<pattern>]",
	"    Return the currently active channels matching a <pattern> (default: '*').",
	"NUMPAT",
	"    Return number of subscriptions to patterns.",
	"NUMSUB [<channel> ...]",
	"    Return the number of subscribers for the specified channels, excluding",
	"    pattern subscriptions(default: no channels).",
	"SHARDCHANNELS [<pattern>]",
	"    Return the currently active shard level channels matching a <pattern> (default: '*').",
	"SHARDNUMSUB [<shardchannel> ...]",
	"    Return the number of subscribers for the specified shard level channel(s)",
	"HELP",
	"    Print this help.",
}

func helpFn(name string, lines []string) func(*client, [][]byte) {
	return func(c *client, _ [][]byte) {
		c.w.Array(len(lines))
		for _, l := range lines {
			c.w.Simple(l)
		}
	}
}
