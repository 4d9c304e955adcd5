package scale

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/clients/resp"
)

// queryTimeout bounds each read-only command (STATUS, CLUSTER MEMBERS,
// XRANGE): a node that is busy or dying must not stall a polling loop.
const queryTimeout = 5 * time.Second

// do runs one command on a fresh connection to addr. Error replies are
// returned as errors.
func do(addr string, timeout time.Duration, args ...string) (resp.Value, error) {
	c, err := resp.Dial(addr, timeout)
	if err != nil {
		return resp.Value{}, err
	}
	defer c.Close()
	v, err := c.Do(args...)
	if err != nil {
		return v, err
	}
	return v, v.Err()
}

// status is a node's STATUS fields.
func status(addr string) (map[string]string, error) {
	v, err := do(addr, queryTimeout, "STATUS")
	if err != nil {
		return nil, err
	}
	return v.StringMap(), nil
}

// member is one row of CLUSTER MEMBERS.
type member struct {
	ID    int
	Addr  string
	Role  string // leader, follower
	State string // voter, learner, unreachable
	Lag   int64
}

func members(addr string) ([]member, error) {
	v, err := do(addr, queryTimeout, "CLUSTER", "MEMBERS")
	if err != nil {
		return nil, err
	}
	var out []member
	for _, row := range v.Array() {
		f := row.StringMap()
		id, err := strconv.Atoi(f["id"])
		if err != nil {
			return nil, fmt.Errorf("CLUSTER MEMBERS row without an id: %v", f)
		}
		lag, _ := strconv.ParseInt(f["lag"], 10, 64)
		out = append(out, member{ID: id, Addr: f["addr"], Role: f["role"], State: f["state"], Lag: lag})
	}
	return out, nil
}

// readHistory is a channel's whole log on the node at addr (XRANGE - +).
func readHistory(addr, channel string) (History, error) {
	v, err := do(addr, queryTimeout, "XRANGE", channel, "-", "+")
	if err != nil {
		return History{}, err
	}
	var h History
	for _, e := range v.Array() {
		es := e.Array()
		if len(es) != 2 {
			return h, fmt.Errorf("XRANGE entry is not [id, fields]: %+v", e)
		}
		id := es[0].String()
		seq, err := strconv.ParseUint(strings.TrimSuffix(id, "-0"), 10, 64)
		if err != nil || !strings.HasSuffix(id, "-0") {
			return h, fmt.Errorf("XRANGE entry id %q is not <seq>-0", id)
		}
		h.Seqs = append(h.Seqs, seq)
		h.Payloads = append(h.Payloads, es[1].StringMap()["payload"])
	}
	return h, nil
}

// publisher publishes through one node over one connection, redialled
// when it breaks.
type publisher struct {
	addr    string
	timeout time.Duration // per request: longer than the node's publish timeout
	conn    *resp.Conn
}

func (p *publisher) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// attempt sends one PUBLISH and classifies its outcome; kind names the
// error of a failed attempt.
func (p *publisher) attempt(channel, payload string) (o Outcome, kind string, err error) {
	if p.conn == nil {
		c, err := resp.Dial(p.addr, p.timeout)
		if err != nil {
			// Nothing was sent: the message cannot have committed.
			return Refused, "dial", err
		}
		p.conn = c
	}
	v, err := p.conn.Do("PUBLISH", channel, payload)
	if err != nil {
		// The request may have left, and been committed, before the
		// connection broke or the reply timed out.
		p.close()
		return Ambiguous, "connection", err
	}
	if v.Err() == nil {
		return Acked, "", nil
	}
	o, kind = classify(string(v.Str))
	return o, kind, v.Err()
}

// classify reads a PUBLISH error reply (without its leading "-"). Only
// what ordo documents as "not sequenced" counts as refused; anything
// else, including errors this harness does not know, may have committed.
func classify(e string) (Outcome, string) {
	code, _, _ := strings.Cut(e, " ")
	switch {
	case code == "CLUSTERDOWN":
		// No leader: the publish was held and never proposed.
		return Refused, "CLUSTERDOWN"
	case code == "TRYAGAIN" && strings.Contains(e, "may or may not"):
		return Ambiguous, "TRYAGAIN unconfirmed"
	case code == "TRYAGAIN" && strings.Contains(e, "not sequenced"):
		return Refused, "TRYAGAIN not sequenced"
	case code == "TRYAGAIN":
		return Ambiguous, "TRYAGAIN other"
	}
	return Ambiguous, "ERR " + truncate(e, 40)
}

// retryable reports whether a failed attempt is worth retrying: errors
// of a cluster in transition and broken connections are; a refusal that
// will not change (message too large, wrong arguments) is not.
func retryable(kind string) bool {
	return kind == "dial" || kind == "connection" || strings.HasPrefix(kind, "CLUSTERDOWN") ||
		strings.HasPrefix(kind, "TRYAGAIN") || strings.Contains(kind, "shutting down")
}

// publish publishes payload until it is acknowledged, retrying
// transient failures with a short backoff, recording every attempt in
// the ledger. It gives up when ctx ends or on an error retrying cannot
// fix. It returns when the acknowledged attempt was sent.
func (p *publisher) publish(ctx context.Context, l *Ledger, channel, payload string) (time.Time, error) {
	backoff := 10 * time.Millisecond
	for {
		sent := time.Now()
		o, kind, err := p.attempt(channel, payload)
		l.Note(payload, o, kind)
		if o == Acked {
			return sent, nil
		}
		if !retryable(kind) {
			return sent, fmt.Errorf("PUBLISH %s via %s: %v", payload, p.addr, err)
		}
		select {
		case <-ctx.Done():
			return sent, fmt.Errorf("PUBLISH %s via %s: gave up (%v); last error: %v", payload, p.addr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// poll calls f until it returns nil, at most bound (and no longer than
// ctx) long, backing off from 5ms to 100ms between calls. On timeout
// the error is f's last one.
func poll(ctx context.Context, bound time.Duration, f func() error) error {
	deadline := time.Now().Add(bound)
	wait := 5 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s: %w", bound, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

var errNotYet = errors.New("not yet")
