package broker

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// A channel's history is readable with the stream commands every Redis
// client already has. Entry IDs are "<seq>-0", where seq is the global
// sequence number; fields are payload, sender and time.

type streamID struct{ ms, seq uint64 }

const errInvalidStreamID = "ERR Invalid stream ID specified as stream command argument"

// parseStreamID parses "ms-seq", "ms" (seq defaults to missingSeq), and
// unless strict "-" and "+".
func parseStreamID(s string, missingSeq uint64, strict bool) (streamID, bool) {
	if len(s) > 127 {
		return streamID{}, false
	}
	if !strict && s == "-" {
		return streamID{0, 0}, true
	}
	if !strict && s == "+" {
		return streamID{math.MaxUint64, math.MaxUint64}, true
	}
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return streamID{}, false
	}
	seq := missingSeq
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return streamID{}, false
		}
	}
	return streamID{ms, seq}, true
}

// parseIntervalID handles XRANGE's "(" exclusive prefix.
func parseIntervalID(s string, missingSeq uint64) (id streamID, exclusive, ok bool) {
	if len(s) > 1 && s[0] == '(' {
		id, ok = parseStreamID(s[1:], missingSeq, true)
		return id, true, ok
	}
	id, ok = parseStreamID(s, missingSeq, false)
	return id, false, ok
}

func (id *streamID) incr() bool {
	if id.seq == math.MaxUint64 {
		if id.ms == math.MaxUint64 {
			return false
		}
		id.ms, id.seq = id.ms+1, 0
		return true
	}
	id.seq++
	return true
}

func (id *streamID) decr() bool {
	if id.seq == 0 {
		if id.ms == 0 {
			return false
		}
		id.ms, id.seq = id.ms-1, math.MaxUint64
		return true
	}
	id.seq--
	return true
}

// seqRange maps an inclusive stream-ID interval to sequence numbers: entry
// seq has ID (seq, 0).
func seqRange(start, end streamID) (lo, hi uint64, empty bool) {
	lo = start.ms
	if start.seq > 0 {
		if lo == math.MaxUint64 {
			return 0, 0, true
		}
		lo++
	}
	hi = end.ms
	return lo, hi, lo > hi
}

func parseCount(c *client, args [][]byte) (count int64, ok bool) {
	count = -1
	for j := 0; j < len(args); j++ {
		if strings.EqualFold(string(args[j]), "count") && j+1 < len(args) {
			v, err := strconv.ParseInt(string(args[j+1]), 10, 64)
			if err != nil {
				c.w.Error("ERR value is not an integer or out of range")
				return 0, false
			}
			if v < 0 {
				v = 0
			}
			count = v
			j++
			continue
		}
		c.w.Error("ERR syntax error")
		return 0, false
	}
	return count, true
}

func cmdXRange(rev bool) func(*client, [][]byte) {
	return func(c *client, args [][]byte) {
		startArg, endArg := string(args[2]), string(args[3])
		if rev {
			startArg, endArg = endArg, startArg
		}
		start, sx, ok := parseIntervalID(startArg, 0)
		if !ok {
			c.w.Error(errInvalidStreamID)
			return
		}
		if sx && !start.incr() {
			c.w.Error("ERR invalid start ID for the interval")
			return
		}
		end, ex, ok := parseIntervalID(endArg, math.MaxUint64)
		if !ok {
			c.w.Error(errInvalidStreamID)
			return
		}
		if ex && !end.decr() {
			c.w.Error("ERR invalid end ID for the interval")
			return
		}
		count, ok := parseCount(c, args[4:])
		if !ok {
			return
		}
		st := c.srv.replica.Store()
		ch := string(args[1])
		if st.ChannelLen(ch) == 0 {
			c.w.Array(0)
			return
		}
		if count == 0 {
			c.w.NullArray()
			return
		}
		lo, hi, empty := seqRange(start, end)
		var seqs []uint64
		if !empty {
			if bad := st.CorruptIn(lo, hi); bad != 0 {
				c.w.Error(damagedError(bad))
				return
			}
			seqs = st.ChannelSeqsN(ch, lo, hi, int(min(count, math.MaxInt32)), rev)
		}
		c.writeEntries(seqs, rev)
	}
}

func damagedError(seq uint64) string {
	return "ERR log record seq_no=" + strconv.FormatUint(seq, 10) + " is damaged (failed its checksum) and cannot be served; read around it or restore it from a replica"
}

func cmdXLen(c *client, args [][]byte) {
	c.w.Int(int64(c.srv.replica.Store().ChannelLen(string(args[1]))))
}

// cmdXRead reads channels after the given IDs, optionally blocking until
// a message arrives: the way a reconnecting subscriber resumes without gaps.
func cmdXRead(c *client, args [][]byte) {
	var (
		count      int64 = -1
		block      time.Duration
		blocking   bool
		streamsArg int
	)
	for i := 1; i < len(args); i++ {
		more := len(args) - i - 1
		opt := strings.ToLower(string(args[i]))
		switch {
		case opt == "block" && more > 0:
			i++
			v, err := strconv.ParseInt(string(args[i]), 10, 64)
			if err != nil {
				c.w.Error("ERR timeout is not an integer or out of range")
				return
			}
			if v < 0 {
				c.w.Error("ERR timeout is negative")
				return
			}
			block, blocking = time.Duration(v)*time.Millisecond, true
		case opt == "count" && more > 0:
			i++
			v, err := strconv.ParseInt(string(args[i]), 10, 64)
			if err != nil {
				c.w.Error("ERR value is not an integer or out of range")
				return
			}
			if v < 0 {
				v = 0
			}
			count = v
		case opt == "streams" && more > 0:
			streamsArg = i + 1
			i = len(args)
		default:
			c.w.Error("ERR syntax error")
			return
		}
	}
	if streamsArg == 0 {
		c.w.Error("ERR syntax error")
		return
	}
	rest := args[streamsArg:]
	if len(rest)%2 != 0 {
		c.w.Error("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
		return
	}
	n := len(rest) / 2
	keys, after := rest[:n], make([]uint64, n)
	st := c.srv.replica.Store()
	for i, a := range rest[n:] {
		if string(a) == "$" {
			after[i] = st.LastChannelSeq(string(keys[i]))
			continue
		}
		id, ok := parseStreamID(string(a), 0, true)
		if !ok {
			c.w.Error(errInvalidStreamID)
			return
		}
		// Entry s has ID s-0, which is after ms-seq exactly when s > ms.
		after[i] = id.ms
	}
	if c.inExec {
		blocking = false // as Redis: no blocking inside a transaction
	}
	var deadline <-chan time.Time
	if blocking && block > 0 {
		t := time.NewTimer(block)
		defer t.Stop()
		deadline = t.C
	}
	var hangup <-chan struct{}
	if blocking {
		closed, stop := watchClose(c.conn)
		defer stop()
		hangup = closed
	}
	for {
		wake := st.WaitCh()
		type result struct {
			key  []byte
			seqs []uint64
		}
		var res []result
		for i, k := range keys {
			if bad := st.CorruptIn(after[i]+1, math.MaxUint64); bad != 0 {
				c.w.Error(damagedError(bad))
				return
			}
			n := -1
			if count > 0 {
				n = int(min(count, math.MaxInt32))
			}
			seqs := st.ChannelSeqsN(string(k), after[i]+1, math.MaxUint64, n, false)
			if len(seqs) == 0 {
				continue
			}
			res = append(res, result{k, seqs})
		}
		if len(res) > 0 {
			if c.resp3 {
				c.w.Map(len(res))
			} else {
				c.w.Array(len(res))
			}
			for _, r := range res {
				if !c.resp3 {
					c.w.Array(2)
				}
				c.w.Bulk(r.key)
				c.writeEntries(r.seqs, false)
			}
			return
		}
		if !blocking {
			c.w.NullArray()
			return
		}
		select {
		case <-wake:
		case <-deadline:
			c.w.NullArray()
			return
		case <-c.quit:
			return
		case <-hangup:
			c.close() // the client left while blocked
			return
		}
	}
}
