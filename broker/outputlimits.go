package broker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
)

// Output buffer limits, as Redis's client-output-buffer-limit: the
// "normal" class (clients that are not subscribed; no limit by default)
// and the "pubsub" class (subscribers), each a hard limit and a soft
// limit with its grace period; plus a node-wide budget for the unsent
// replies of all clients together (max_client_buffers, Redis's
// maxmemory-clients), past which the client holding the most is
// disconnected.

// outputLimitsParam is CONFIG GET client-output-buffer-limit.
func outputLimitsParam(l Limits) string {
	return fmt.Sprintf("normal %d %d %d slave 268435456 67108864 60 pubsub %d %d %d",
		l.NormalHardBytes, l.NormalSoftBytes, int64(l.NormalSoftDuration.Seconds()),
		l.PubsubHardBytes, l.PubsubSoftBytes, int64(l.PubsubSoftDuration.Seconds()))
}

// configSetLimits applies CONFIG SET client-output-buffer-limit and
// maxmemory-clients; it reports false for other parameters.
func (c *client) configSetLimits(name string, value []byte) bool {
	s := c.srv
	fail := func(msg string) bool {
		c.w.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + msg)
		return true
	}
	s.cfgMu.Lock()
	lim := s.cfg.Limits
	s.cfgMu.Unlock()
	switch name {
	case "client-output-buffer-limit":
		f := strings.Fields(string(value))
		if len(f)%4 != 0 {
			return fail("Wrong number of arguments in buffer limit configuration.")
		}
		for i := 0; i < len(f); i += 4 {
			class := strings.ToLower(f[i])
			if class != "normal" && class != "pubsub" && class != "slave" && class != "replica" {
				return fail("Invalid client class specified in buffer limit configuration.")
			}
			hard, err1 := redisMemory(f[i+1])
			soft, err2 := redisMemory(f[i+2])
			secs, err3 := strconv.ParseInt(f[i+3], 10, 32)
			if err1 != nil || err2 != nil || err3 != nil || secs < 0 {
				return fail("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
			}
			switch class {
			case "normal":
				lim.NormalHardBytes, lim.NormalSoftBytes, lim.NormalSoftDuration = hard, soft, time.Duration(secs)*time.Second
			case "pubsub":
				lim.PubsubHardBytes, lim.PubsubSoftBytes, lim.PubsubSoftDuration = hard, soft, time.Duration(secs)*time.Second
			}
			// (ordo has no Redis replicas: their class is accepted and ignored.)
		}
	case "maxmemory-clients":
		n, err := redisMemory(string(value))
		if err != nil || n == 0 {
			return fail("argument must be a memory value greater than 0")
		}
		lim.MaxClientBuffers = n
	default:
		return false
	}
	s.cfgMu.Lock()
	s.cfg.Limits = lim
	s.cfgMu.Unlock()
	s.limits.Store(&lim)
	c.w.OK()
	return true
}

// overLimitLocked applies the output buffer limits of the client's class
// (c.out.mu held): subscribed clients, and writes of pub/sub messages,
// are of the pubsub class.
func (c *client) overLimitLocked(pubsub bool) bool {
	lim := c.srv.limits.Load()
	hardLim, softLim, grace := lim.NormalHardBytes, lim.NormalSoftBytes, lim.NormalSoftDuration
	if pubsub || c.subCount.Load() > 0 {
		hardLim, softLim, grace = lim.PubsubHardBytes, lim.PubsubSoftBytes, lim.PubsubSoftDuration
	}
	size := int64(len(c.out.buf) + c.out.inflight + len(c.out.deferred))
	if hardLim > 0 && size > hardLim {
		return true
	}
	if softLim > 0 && size > softLim {
		now := time.Now()
		if c.out.softSince.IsZero() {
			c.out.softSince = now
		} else if now.Sub(c.out.softSince) > grace {
			return true
		}
	} else {
		c.out.softSince = time.Time{}
	}
	return false
}

// accountLocked brings the node's total of unsent output up to date with
// this client's (c.out.mu held) and returns the new total.
func (c *client) accountLocked() int64 {
	o := &c.out
	size := int64(len(o.buf) + o.inflight + len(o.deferred))
	if o.closed {
		size = 0 // a closed client's buffers are garbage
	}
	d := size - o.accounted
	o.accounted = size
	o.peak = max(o.peak, size)
	return c.srv.clientBuffers.Add(d)
}

// enforceBudget disconnects the client with the most unsent output while
// all clients together hold more than max_client_buffers.
func (s *Server) enforceBudget(total int64) {
	budget := s.limits.Load().MaxClientBuffers
	if budget <= 0 || total <= budget {
		return
	}
	var worst *client
	var most int
	for _, c := range s.allClients() {
		c.out.mu.Lock()
		n := len(c.out.buf) + c.out.inflight + len(c.out.deferred)
		closed := c.out.closed
		c.out.mu.Unlock()
		if !closed && n > most {
			worst, most = c, n
		}
	}
	if worst == nil {
		return
	}
	s.stats.outputLimitDisconnects.Add(1)
	s.log.Logf(logging.Warn, "clients", "Client id=%d addr=%s closed: all clients' output buffers together (%d bytes) exceed max_client_buffers (%d); it held the most (%d bytes)", worst.id, worst.addr, total, budget, most)
	worst.close()
}

// redisMemory parses a memory value as Redis's memtoull does: k, m, g are
// powers of 1000, kb, mb, gb powers of 1024.
func redisMemory(v string) (int64, error) {
	t := strings.ToLower(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid memory value %q", v)
	}
	return n * mult, nil
}
