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

	// deliverMu guards the staging of a batch (DeliverBatch): touched and
	// every client's staged.
	deliverMu sync.Mutex
	touched   []*client
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
	var n [1]int
	r.DeliverBatch([]*store.Message{m}, n[:])
	return n[0]
}

// DeliverBatch fans a committed batch out to local subscribers, in order,
// and sets receivers[i] to message i's count (replica.BatchApplier). Each
// subscriber's share of the batch is gathered first and then queued with
// one output lock, one limit check and at most one wake-up of its writer,
// which sends it in one write: with a thousand subscribers, per-message
// locks, wake-ups and system calls were most of the CPU.
func (r *registry) DeliverBatch(ms []*store.Message, receivers []int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	// Readers share the read lock; only one batch is staged at a time.
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	touched := r.touched[:0]
	stage := func(c *client, b []byte) {
		if len(c.staged) == 0 {
			touched = append(touched, c)
		}
		c.staged = append(c.staged, b)
	}
	for i, m := range ms {
		receivers[i] = r.stageMessage(m, stage)
	}
	for _, c := range touched {
		c.deliver(c.staged)
		clear(c.staged) // drop the references: the pushes may be large
		c.staged = c.staged[:0]
	}
	clear(touched)
	r.touched = touched[:0]
}

// stageMessage hands each local subscriber of m its push (encoded once
// per RESP version, pattern pushes once per pattern and version) and
// returns the count.
func (r *registry) stageMessage(m *store.Message, stage func(*client, []byte)) int {
	n := 0
	var push [2][]byte // RESP2 and RESP3 encodings, built once
	enc := func(c *client, word string) []byte {
		i := 0
		if c.resp3 {
			i = 1
		}
		if push[i] == nil {
			push[i] = encodePush(c.resp3, word, "", m)
		}
		return push[i]
	}
	if m.Shard {
		for c := range r.subs[kindShard][string(m.Channel)] {
			stage(c, enc(c, "smessage"))
			n++
		}
		return n
	}
	for c := range r.subs[kindChannel][string(m.Channel)] {
		stage(c, enc(c, "message"))
		n++
	}
	if r.patterns.Len() > 0 {
		r.patterns.Match(string(m.Channel), func(pat string, cs map[*client]struct{}) {
			// Pattern pushes name the pattern: built per matching pattern.
			var ppush [2][]byte
			for c := range cs {
				i := 0
				if c.resp3 {
					i = 1
				}
				if ppush[i] == nil {
					ppush[i] = encodePush(c.resp3, "pmessage", pat, m)
				}
				stage(c, ppush[i])
				n++
			}
		})
	}
	return n
}

// encodePush builds a message push: [word, channel, payload], or
// [word, pattern, channel, payload] for a pattern match.
func encodePush(resp3 bool, word, pattern string, m *store.Message) []byte {
	w := replyBuf{resp3: resp3, b: make([]byte, 0, 48+len(word)+len(pattern)+len(m.Channel)+len(m.Payload))}
	if pattern != "" {
		w.Push(4)
		w.BulkString(word)
		w.BulkString(pattern)
	} else {
		w.Push(3)
		w.BulkString(word)
	}
	w.Bulk(m.Channel)
	w.Bulk(m.Payload)
	return w.b
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
