package wal

import (
	"fmt"
	"os"
	"time"
)

// ApplyRetention drops the oldest whole segments that Options.RetainBytes or
// Options.RetainAge allow to go, and returns the new FirstIndex. It never
// drops the last segment, nor a segment holding any index >= keepFrom (pass
// the lowest index still needed: uncommitted, not yet replicated, or being
// read by a catching-up follower; LastIndex()+1 keeps only the segment
// being appended to).
//
// A segment may go while the log is larger than RetainBytes, or if its file
// was last modified before now-RetainAge (its newest record is that old).
// Segments go oldest first, stopping at the first one that must stay. The
// new first index is persisted (tidwall/wal's TruncateFront) before it
// returns. With neither option set it drops nothing.
func (l *Log) ApplyRetention(now time.Time, keepFrom uint64) (newFirst uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return l.first.Load(), err
	}
	byBytes, byAge := l.opts.RetainBytes > 0, l.opts.RetainAge > 0
	if !byBytes && !byAge {
		return l.first.Load(), nil
	}
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	k := 0 // segments to drop
	for ; k < len(l.segs)-1 && l.segs[k+1].first <= keepFrom; k++ {
		over := byBytes && total > l.opts.RetainBytes
		if !over && byAge {
			fi, err := os.Stat(l.segPath(l.segs[k].first))
			if err != nil {
				return l.first.Load(), fmt.Errorf("wal: retention: %w", err)
			}
			over = fi.ModTime().Before(now.Add(-l.opts.RetainAge))
		}
		if !over {
			break
		}
		total -= l.segs[k].size
	}
	if k == 0 {
		return l.first.Load(), nil
	}
	if err := l.truncateFront(l.segs[k].first); err != nil {
		return l.first.Load(), err
	}
	return l.first.Load(), nil
}
