package broker

import (
	"strconv"
	"sync"
	"time"
)

// aclLog is Redis's ACL LOG: recent refusals (failed AUTH, NOPERM), a
// repeat of a recent entry (same reason, context, object and user within
// a minute) counted on it rather than added.
type aclLog struct {
	mu      sync.Mutex
	entries []*aclLogEntry // newest first
	nextID  int64
}

type aclLogEntry struct {
	count            int64
	reason, context  string
	object, username string
	clientInfo       string
	id               int64
	created, updated time.Time
}

const (
	aclLogMaxLen    = 128 // Redis's acllog-max-len
	aclLogGroupTime = time.Minute
)

// add records a refusal: reason is auth, command, key or channel.
func (l *aclLog) add(c *client, reason, object, username string) {
	now := time.Now()
	ctx := "toplevel"
	if c.multi != nil || c.inExec {
		ctx = "multi"
	}
	info := c.info()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.entries[:min(len(l.entries), 10)] {
		if e.reason == reason && e.context == ctx && e.object == object && e.username == username && now.Sub(e.updated) <= aclLogGroupTime {
			e.count++
			e.updated, e.clientInfo = now, info
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = e
			return
		}
	}
	e := &aclLogEntry{count: 1, reason: reason, context: ctx, object: object, username: username,
		clientInfo: info, id: l.nextID, created: now, updated: now}
	l.nextID++
	l.entries = append([]*aclLogEntry{e}, l.entries...)
	if len(l.entries) > aclLogMaxLen {
		l.entries = l.entries[:aclLogMaxLen]
	}
}

func (l *aclLog) reset() {
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
}

// write replies ACL LOG [count] as Redis 7.2.
func (l *aclLog) write(c *client, count int) {
	l.mu.Lock()
	entries := make([]aclLogEntry, 0, min(count, len(l.entries)))
	for _, e := range l.entries[:min(count, len(l.entries))] {
		entries = append(entries, *e)
	}
	l.mu.Unlock()
	now := time.Now()
	c.w.Array(len(entries))
	for _, e := range entries {
		c.w.Map(10)
		c.w.BulkString("count")
		c.w.Int(e.count)
		for _, kv := range [][2]string{{"reason", e.reason}, {"context", e.context}, {"object", e.object}, {"username", e.username}} {
			c.w.BulkString(kv[0])
			c.w.BulkString(kv[1])
		}
		c.w.BulkString("age-seconds")
		age := strconv.FormatFloat(float64(now.Sub(e.updated).Milliseconds())/1000, 'g', 17, 64)
		if c.resp3 {
			c.w.b = append(c.w.b, ","+age+"\r\n"...)
		} else {
			c.w.BulkString(age)
		}
		c.w.BulkString("client-info")
		c.w.BulkString(e.clientInfo)
		c.w.BulkString("entry-id")
		c.w.Int(e.id)
		c.w.BulkString("timestamp-created")
		c.w.Int(e.created.UnixMilli())
		c.w.BulkString("timestamp-last-updated")
		c.w.Int(e.updated.UnixMilli())
	}
}
