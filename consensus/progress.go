package consensus

// progress is the leader's view of one follower.
type progress struct {
	match uint64 // highest index known persisted on the follower and matching
	next  uint64 // next index to send

	state  progressState
	paused bool // probe: a MsgApp is outstanding, wait for an answer

	inflight inflights // replicate: last indexes of unacknowledged MsgApp

	// synced: the follower persisted AcceptedTerm = this term, i.e. its log
	// is this leader's synchronised history. Only synced followers count
	// toward commit.
	synced bool

	active      bool // heard from since the last quorum check
	lastContact int  // ticks since the follower was last heard from

	sentCommit uint64 // commit index last told to the follower
	forceSend  bool   // send an append even if there is nothing new

	// repairToken is the follower's Repair token (it lost entries it does
	// not know); repairFloor is this leader's last index when the token
	// was first seen: every entry the follower's previous incarnation can
	// have acknowledged to this leader is at or below it.
	repairToken, repairFloor uint64

	resetLogged bool

	// readWait: Storage answered ErrReadPending for what this follower
	// needs; nothing is sent to it until the caller's background read
	// completes (Node.ReadReady) or, as a fallback, the next heartbeat.
	readWait bool
}

type progressState uint8

const (
	// probe: one MsgApp at a time until the match point is found.
	probe progressState = iota
	// replicate: pipelined MsgApp, up to MaxInflight unacknowledged.
	replicate
)

func (s progressState) String() string {
	if s == replicate {
		return "replicate"
	}
	return "probe"
}

func (pr *progress) becomeProbe() {
	pr.state = probe
	pr.paused = false
	pr.next = pr.match + 1
	pr.inflight.reset()
}

func (pr *progress) becomeReplicate() {
	pr.state = replicate
	pr.paused = false
	pr.next = pr.match + 1
	pr.inflight.reset()
}

// maybeUpdate records an acknowledgement of index n.
func (pr *progress) maybeUpdate(n uint64) bool {
	updated := false
	if pr.match < n {
		pr.match = n
		updated = true
		pr.paused = false
	}
	pr.next = max(pr.next, n+1)
	return updated
}

// maybeDecrTo handles a rejection of the MsgApp whose preceding index was
// rejected; matchHint is the leader-side guess of the follower's match.
// It returns false for a stale rejection.
func (pr *progress) maybeDecrTo(rejected, matchHint uint64) bool {
	if pr.state == replicate {
		if rejected <= pr.match {
			return false
		}
		pr.next = pr.match + 1
		return true
	}
	if pr.next-1 != rejected {
		return false
	}
	pr.next = max(min(rejected, matchHint+1), pr.match+1)
	pr.paused = false
	return true
}

// inflights is a FIFO of the last indexes of pipelined MsgApp.
type inflights struct {
	buf   []uint64
	start int
	count int
}

func newInflights(size int) inflights { return inflights{buf: make([]uint64, size)} }

func (in *inflights) full() bool { return in.count == len(in.buf) }

func (in *inflights) add(last uint64) {
	if in.full() {
		return
	}
	in.buf[(in.start+in.count)%len(in.buf)] = last
	in.count++
}

// freeLE frees every MsgApp whose last index is <= to.
func (in *inflights) freeLE(to uint64) {
	for in.count > 0 && in.buf[in.start] <= to {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}

func (in *inflights) freeFirst() {
	if in.count > 0 {
		in.start = (in.start + 1) % len(in.buf)
		in.count--
	}
}

func (in *inflights) reset() { in.start, in.count = 0, 0 }
