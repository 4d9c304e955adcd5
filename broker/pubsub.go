package broker

import (
	"sort"
	"sync"

	"github.com/ordo-broker/ordo/broker/glob"
	"github.com/ordo-broker/ordo/broker/store"
)

// subKind is one of Redis's three subscription namespaces.
type subKind uint8

const (
	kindChannel subKind = iota
	kindPattern
	kindShard
)

// Reply words of each kind, as Redis names them.
var (
	subscribeWord   = [...]string{"subscribe", "psubscribe", "ssubscribe"}
	unsubscribeWord = [...]string{"unsubscribe", "punsubscribe", "sunsubscribe"}
)

// registry maps channels and patterns to the local clients subscribed to
// them. Delivery holds the read lock while it appends to output buffers
// (which never blocks), so a subscription confirmed under the write lock is
// never overtaken by a message for it.
type registry struct {
	mu   sync.RWMutex
	subs [3]map[string]map[*client]struct{}
	// patterns indexes subs[kindPattern] (the same client sets) by literal
	// prefix, so a publish tries only the patterns that could match.
	patterns glob.Index[map[*client]struct{}]
}

func newRegistry() *registry {
	r := &registry{}
	for i := range r.subs {
		r.subs[i] = map[string]map[*client]struct{}{}
	}
	return r
}

func (c *client) subsOf(k subKind) *map[string]struct{} {
	switch k {
	case kindPattern:
		return &c.patterns
	case kindShard:
		return &c.shardChannels
	default:
		return &c.channels
	}
}

// kindCount is the count Redis reports in (un)subscribe replies: channels
// plus patterns for the classic kinds, shard channels for the shard kind.
func (c *client) kindCount(k subKind) int {
	if k == kindShard {
		return len(c.shardChannels)
	}
	return len(c.channels) + len(c.patterns)
}

func (c *client) updateSubCount() {
	c.subCount.Store(int64(len(c.channels) + len(c.patterns) + len(c.shardChannels)))
}

// subscribe adds names and queues one confirmation per name.
func (r *registry) subscribe(c *client, k subKind, names [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := c.subsOf(k)
	if *set == nil {
		*set = map[string]struct{}{}
	}
	w := replyBuf{resp3: c.resp3}
	for _, n := range names {
		name := string(n)
		if _, ok := (*set)[name]; !ok {
			(*set)[name] = struct{}{}
			m := r.subs[k][name]
			if m == nil {
				m = map[*client]struct{}{}
				r.subs[k][name] = m
				if k == kindPattern {
					r.patterns.Set(name, m)
				}
			}
			m[c] = struct{}{}
		}
		c.updateSubCount()
		w.Push(3)
		w.BulkString(subscribeWord[k])
		w.Bulk(n)
		w.Int(int64(c.kindCount(k)))
	}
	c.push(w.b)
}

// unsubscribe removes names (all of the kind when names is empty) and
// queues Redis's confirmations, including for names never subscribed.
func (r *registry) unsubscribe(c *client, k subKind, names [][]byte, confirm bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unsubscribeLocked(c, k, names, confirm)
}

func (r *registry) unsubscribeLocked(c *client, k subKind, names [][]byte, confirm bool) {
	set := c.subsOf(k)
	if len(names) == 0 {
		keys := make([]string, 0, len(*set))
		for n := range *set {
			keys = append(keys, n)
		}
		sort.Strings(keys)
		for _, n := range keys {
			names = append(names, []byte(n))
		}
		if len(names) == 0 && confirm {
			w := replyBuf{resp3: c.resp3}
			w.Push(3)
			w.BulkString(unsubscribeWord[k])
			w.Null()
			w.Int(int64(c.kindCount(k)))
			c.push(w.b)
			return
		}
	}
	w := replyBuf{resp3: c.resp3}
	for _, n := range names {
		name := string(n)
		if _, ok := (*set)[name]; ok {
			delete(*set, name)
			if m := r.subs[k][name]; m != nil {
				delete(m, c)
				if len(m) == 0 {
					delete(r.subs[k], name)
					if k == kindPattern {
						r.patterns.Delete(name)
					}
				}
			}
		}
		c.updateSubCount()
		if confirm {
			w.Push(3)
			w.BulkString(unsubscribeWord[k])
			w.Bulk(n)
			w.Int(int64(c.kindCount(k)))
		}
	}
	if confirm {
		c.push(w.b)
	}
}

// dropClient removes every subscription of a departing client.
func (r *registry) dropClient(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := kindChannel; k <= kindShard; k++ {
		if len(*c.subsOf(k)) > 0 {
			r.unsubscribeLocked(c, k, nil, false)
		}
	}
}

// Deliver fans a committed message out to local subscribers and returns
// how many deliveries were made (PUBLISH's reply). It implements
// replica.Applier.
func (r *registry) Deliver(m *store.Message) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	var push [2][]byte // RESP2 and RESP3 encodings, built once
	enc := func(c *client, word string, pattern string) []byte {
		if pattern != "" {
			// Pattern pushes name the pattern, so they are built per match.
			w := replyBuf{resp3: c.resp3}
			w.Push(4)
			w.BulkString(word)
			w.BulkString(pattern)
			w.Bulk(m.Channel)
			w.Bulk(m.Payload)
			return w.b
		}
		i := 0
		if c.resp3 {
			i = 1
		}
		if push[i] == nil {
			w := replyBuf{resp3: c.resp3}
			w.Push(3)
			w.BulkString(word)
			w.Bulk(m.Channel)
			w.Bulk(m.Payload)
			push[i] = w.b
		}
		return push[i]
	}
	if m.Shard {
		for c := range r.subs[kindShard][string(m.Channel)] {
			c.deliver(enc(c, "smessage", ""))
			n++
		}
		return n
	}
	for c := range r.subs[kindChannel][string(m.Channel)] {
		c.deliver(enc(c, "message", ""))
		n++
	}
	if r.patterns.Len() > 0 {
		r.patterns.Match(string(m.Channel), func(pat string, cs map[*client]struct{}) {
			for c := range cs {
				c.deliver(enc(c, "pmessage", pat))
				n++
			}
		})
	}
	return n
}

// channels lists active channels of a kind matching an optional pattern.
func (r *registry) channels(k subKind, pattern string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for name := range r.subs[k] {
		if pattern == "" || globMatch(pattern, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (r *registry) numSub(k subKind, name string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.subs[k][name])
}

func (r *registry) numPat() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.subs[kindPattern])
}

func (r *registry) sizes() (channels, patterns, shard int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.subs[kindChannel]), len(r.subs[kindPattern]), len(r.subs[kindShard])
}
