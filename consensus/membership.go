package consensus

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
)

// Membership: single-server changes as ordinary log entries (Raft thesis
// §4.1), one at a time.
//
// A change is an EntryMembership entry whose Data holds the whole new
// configuration (voters and learners), so any one membership entry tells
// the configuration without replaying earlier ones (a follower whose log
// restarts after retention needs exactly that).
//
// A configuration TAKES EFFECT WHEN APPENDED, as in the thesis: every node
// uses the latest configuration in its log, committed or not, for
// elections (whom it asks, whose acknowledgements count), for commit
// (whose acknowledgements count) and for replication. Why appended rather
// than committed: with "when committed" a leader would have to keep
// counting under the old configuration an entry that changes it, and a
// follower that holds an uncommitted change would elect under a
// configuration that a new leader might still commit around — the thesis
// shows the appended rule is the one whose safety argument is simple: two
// configurations that differ by one voter have overlapping majorities, so
// whichever of the two a node uses, two majorities always intersect, and
// a truncated (never committed) change simply reverts the node to the
// previous entry. The price is that a truncation can change the
// configuration back, which the tracker below handles (it pops the entry).
//
// One at a time: a leader proposes a change only when the latest
// membership entry of its log is committed (so at most one uncommitted
// change exists in any log), and only once it is sequencing. The
// published fix to single-server changes (Ongaro, raft-dev 2015: a new
// leader must commit an entry of its own term before it changes the
// configuration, or an older leader's uncommitted change and the new
// one can have disjoint majorities) is given by the synchronisation
// phase: a leader sequences only after a majority of its configuration
// persisted AcceptedTerm = its term for its history H, and elections
// compare (AcceptedTerm, LastIndex) first. That majority is exactly the
// "entry of the current term committed" of the fix: any later leader is
// elected by a majority that intersects it, so its history contains H,
// hence every change this leader makes is appended to a log that carries
// every configuration any earlier leader could have committed.
//
// Sequence numbers: membership entries occupy a log index (the core and
// the caller's log stay contiguous by Index) but consume no message
// sequence number: Entry.Seq, filled in by the core on every entry it
// hands out (Ready.Entries and Ready.Committed), counts EntryNormal
// entries only, so messages are numbered 1, 2, 3... whatever the
// membership changes. Seq == Index in a cluster that never changed its
// membership. The core derives Seq from the log itself (the number of
// membership entries up to an index), anchored by ConfState.Skipped, so
// it is never carried on the wire and cannot disagree between nodes.

// MembershipChangeType is the kind of a single-server change.
type MembershipChangeType uint8

const (
	// AddLearner adds a node that receives the log but does not vote and
	// does not count toward any majority.
	AddLearner MembershipChangeType = iota + 1
	// PromoteLearner makes a learner a voter.
	PromoteLearner
	// RemoveMember removes a voter or a learner.
	RemoveMember
)

func (t MembershipChangeType) String() string {
	switch t {
	case AddLearner:
		return "add-learner"
	case PromoteLearner:
		return "promote"
	case RemoveMember:
		return "remove"
	}
	return "unknown-change"
}

// MembershipChange is one single-server change (Node.ProposeMembership).
type MembershipChange struct {
	Type MembershipChangeType
	ID   NodeID
	// Addr is where members reach ID (AddLearner; opaque to the core,
	// at most MaxAddrLen bytes). It travels with the configuration.
	Addr string
}

// MaxAddrLen bounds a member's address in a configuration.
const MaxAddrLen = 255

// ConfState is a configuration: the committed one (Ready.ConfState,
// Config.ConfState) or the one a membership entry installs
// (DecodeMembership).
type ConfState struct {
	Voters   []NodeID // sorted
	Learners []NodeID // sorted; disjoint from Voters
	// Index and Term are those of the membership entry that set this
	// configuration; 0 for the initial configuration.
	Index, Term uint64
	// Skipped is the number of membership entries at indexes <=
	// SkippedAt: the Seq of entry SkippedAt is SkippedAt - Skipped.
	// (SkippedAt is Index, or, after a log restart, the restart point.)
	SkippedAt, Skipped uint64
	// Addrs holds the address of each member that has one (opaque to the
	// core: the caller's peer addresses, so a node that learns a
	// configuration also learns how to reach its members).
	Addrs map[NodeID]string
}

// IsVoter reports whether id votes in this configuration.
func (cs *ConfState) IsVoter(id NodeID) bool {
	_, ok := slices.BinarySearch(cs.Voters, id)
	return ok
}

// IsLearner reports whether id is a learner in this configuration.
func (cs *ConfState) IsLearner(id NodeID) bool {
	_, ok := slices.BinarySearch(cs.Learners, id)
	return ok
}

// IsMember reports whether id is a voter or a learner.
func (cs *ConfState) IsMember(id NodeID) bool { return cs.IsVoter(id) || cs.IsLearner(id) }

func (cs ConfState) clone() ConfState {
	cs.Voters, cs.Learners, cs.Addrs = slices.Clone(cs.Voters), slices.Clone(cs.Learners), maps.Clone(cs.Addrs)
	return cs
}

func sameMembers(a, b *ConfState) bool {
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners)
}

// Errors of ProposeMembership and TransferLeadership.
var (
	// ErrNotLeader: membership changes and transfers are made at the
	// sequencing leader (route the request there; Status().Leader).
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrChangePending: the previous membership change is not committed
	// yet (one change at a time), or the leader has not yet synchronised
	// its term (it sequences nothing then). Retry later.
	ErrChangePending = errors.New("consensus: a membership change is already pending")
	// ErrUnknownMember: Promote or Remove of a node that is not a member
	// (Promote: not a learner), or a transfer to a node that is not a
	// voter.
	ErrUnknownMember = errors.New("consensus: unknown member")
	// ErrMemberExists: AddLearner of a node that is already a member.
	ErrMemberExists = errors.New("consensus: already a member")
	// ErrLastVoter: the change would leave the cluster without voters.
	ErrLastVoter = errors.New("consensus: cannot remove the last voter")
	// ErrTransferring: a leadership transfer is in progress (proposals
	// are queued meanwhile; membership changes are refused).
	ErrTransferring = errors.New("consensus: leadership transfer in progress")
	// ErrBadChange: an unknown change type or ID 0.
	ErrBadChange = errors.New("consensus: invalid membership change")
)

// applyChange returns the configuration after cc, or an error.
func (cs *ConfState) applyChange(cc MembershipChange) (ConfState, error) {
	out := ConfState{Voters: slices.Clone(cs.Voters), Learners: slices.Clone(cs.Learners), Addrs: maps.Clone(cs.Addrs)}
	if cc.ID == 0 || len(cc.Addr) > MaxAddrLen {
		return out, ErrBadChange
	}

	switch cc.Type {
	case AddLearner:
		if cs.IsMember(cc.ID) {
			return out, ErrMemberExists
		}
		out.Learners = insertSorted(out.Learners, cc.ID)
	case PromoteLearner:
		if !cs.IsLearner(cc.ID) {
			return out, ErrUnknownMember
		}
		out.Learners = slices.DeleteFunc(out.Learners, func(x NodeID) bool { return x == cc.ID })
		out.Voters = insertSorted(out.Voters, cc.ID)
	case RemoveMember:
		switch {
		case cs.IsLearner(cc.ID):
			out.Learners = slices.DeleteFunc(out.Learners, func(x NodeID) bool { return x == cc.ID })
		case cs.IsVoter(cc.ID):
			if len(cs.Voters) == 1 {
				return out, ErrLastVoter
			}
			out.Voters = slices.DeleteFunc(out.Voters, func(x NodeID) bool { return x == cc.ID })
		default:
			return out, ErrUnknownMember
		}
	default:
		return out, ErrBadChange
	}
	// Addresses of members only; an added member's from the change.
	if cc.Type == AddLearner && cc.Addr != "" {
		if out.Addrs == nil {
			out.Addrs = map[NodeID]string{}
		}
		out.Addrs[cc.ID] = cc.Addr
	}
	maps.DeleteFunc(out.Addrs, func(id NodeID, _ string) bool { return !out.IsMember(id) })
	return out, nil
}

func insertSorted(s []NodeID, id NodeID) []NodeID {
	i, _ := slices.BinarySearch(s, id)
	return slices.Insert(s, i, id)
}

// MembershipEntry is the content of an EntryMembership entry.
type MembershipEntry struct {
	Change MembershipChange
	// Voters and Learners: the whole configuration after the change.
	Voters, Learners []NodeID
	// Addrs: the members' addresses after the change (see ConfState).
	Addrs map[NodeID]string
}

// membershipVersion 2 added the members' addresses.
const membershipVersion = 2

// encodeMembership: | version | change type | uvarint change ID |
// uvarint #voters | voters | uvarint #learners | learners | addrs |
// (addrs: see appendAddrs).
func encodeMembership(me MembershipEntry) []byte {
	b := []byte{membershipVersion, byte(me.Change.Type)}
	b = binary.AppendUvarint(b, uint64(me.Change.ID))
	for _, l := range [][]NodeID{me.Voters, me.Learners} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, id := range l {
			b = binary.AppendUvarint(b, uint64(id))
		}
	}
	return appendAddrs(b, me.Addrs)
}

// appendAddrs: | uvarint #addrs | (uvarint id, uvarint len, addr) by id |.
func appendAddrs(b []byte, addrs map[NodeID]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(addrs)))
	for _, id := range slices.Sorted(maps.Keys(addrs)) {
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, uint64(len(addrs[id])))
		b = append(b, addrs[id]...)
	}
	return b
}

// addrs decodes appendAddrs' output: ids ascending, each address at most
// MaxAddrLen bytes.
func (d *decoder) addrs() map[NodeID]string {
	n := d.count(2)
	if n == 0 || d.err {
		return nil
	}
	out := make(map[NodeID]string, n)
	var prev NodeID
	for i := 0; i < n && !d.err; i++ {
		id := NodeID(d.uvarint())
		a := d.bytes()
		if id <= prev || len(a) > MaxAddrLen {
			d.err = true
		}
		out[id], prev = string(a), id
	}
	return out
}

// DecodeMembership decodes the Data of an EntryMembership entry. It returns
// ErrBadMessage for anything the core does not produce (unknown version,
// unsorted or overlapping ID lists, no voters).
func DecodeMembership(data []byte) (MembershipEntry, error) {
	var me MembershipEntry
	if len(data) < 2 || data[0] < 1 || data[0] > membershipVersion {
		return me, ErrBadMessage
	}
	me.Change.Type = MembershipChangeType(data[1])
	d := decoder{b: data[2:]}
	me.Change.ID = NodeID(d.uvarint())
	lists := [2][]NodeID{}
	for k := range lists {
		n := d.count(1)
		for i := 0; i < n && !d.err; i++ {
			id := NodeID(d.uvarint())
			if id == 0 || (i > 0 && id <= lists[k][i-1]) {
				d.err = true
			}
			lists[k] = append(lists[k], id)
		}
	}
	me.Voters, me.Learners = lists[0], lists[1]
	if data[0] >= 2 {
		me.Addrs = d.addrs()
	}
	if d.err || len(d.b) != 0 || len(me.Voters) == 0 || me.Change.Type < AddLearner || me.Change.Type > RemoveMember {
		return MembershipEntry{}, ErrBadMessage
	}
	for _, id := range me.Learners {
		if _, dup := slices.BinarySearch(me.Voters, id); dup {
			return MembershipEntry{}, ErrBadMessage
		}
	}
	return me, nil
}

// confTracker follows the configurations in the log (part of nodeLog):
// the committed one (or the one a log restart installed) and the
// membership entries after it; and, for Seq, where every membership entry
// known in the log is.
type confTracker struct {
	base ConfState // committed (or installed by a reset), as persisted
	tail []confAt  // membership entries after base.Index, in index order
	// Seq numbering: skipped(anchor) = anchorSkipped, and idx holds every
	// membership entry index known in the log (either side of the anchor).
	anchor, anchorSkipped uint64
	idx                   []uint64
	dirty                 bool   // base changed: hand out a Ready.ConfState
	version               uint64 // bumped whenever latest() or base may have changed
}

type confAt struct {
	index, term uint64
	cs          ConfState
}

func (t *confTracker) init(cs ConfState) {
	t.base = cs.clone()
	t.tail, t.idx = nil, nil
	t.anchor, t.anchorSkipped = cs.SkippedAt, cs.Skipped
	t.version++
}

// latest is the configuration in force (the last one appended).
func (t *confTracker) latest() *ConfState {
	if k := len(t.tail); k > 0 {
		return &t.tail[k-1].cs
	}
	return &t.base
}

// position identifies the configuration in force by its entry's (term,
// index); term 0 means unknown.
func (t *confTracker) position() (term, index uint64) {
	if k := len(t.tail); k > 0 {
		return t.tail[k-1].term, t.tail[k-1].index
	}
	return t.base.Term, t.base.Index
}

// pending reports whether the log holds an uncommitted membership entry.
func (t *confTracker) pending() bool { return len(t.tail) > 0 }

// observe notes an entry appended to the log (in index order).
func (t *confTracker) observe(e *Entry) {
	if e.Type != EntryMembership {
		return
	}
	if k := len(t.idx); k == 0 || t.idx[k-1] < e.Index {
		t.idx = append(t.idx, e.Index)
	}
	if e.Index == t.base.Index && t.base.SkippedAt < e.Index {
		// A log restarted before the entry of its committed configuration
		// (see confForReset): the anchor is the restart point, and only
		// entries seen since count the membership entries after it. Move
		// the anchor to this entry and persist it (dirty), so that Seq
		// stays right once retention drops this entry from the log.
		// (Found by a sweep: a restart after that lost one.)
		sk := t.skipped(e.Index)
		t.base.SkippedAt, t.base.Skipped = e.Index, sk
		t.anchor, t.anchorSkipped = e.Index, sk
		t.dirty = true
	}
	if e.Index <= t.base.Index {
		return
	}
	me, err := DecodeMembership(e.Data)
	if err != nil {
		// Step refuses such entries from peers and the leader encodes its
		// own: only a corrupted local log gets here.
		invariant("undecodable membership entry at index " + u64s(e.Index))
	}
	t.tail = append(t.tail, confAt{e.Index, e.Term,
		ConfState{Voters: me.Voters, Learners: me.Learners, Addrs: me.Addrs, Index: e.Index, Term: e.Term, SkippedAt: e.Index}})
	t.version++
}

// truncate forgets the entries >= from (an uncommitted tail).
func (t *confTracker) truncate(from uint64) {
	for k := len(t.idx); k > 0 && t.idx[k-1] >= from; k-- {
		t.idx = t.idx[:k-1]
	}
	for k := len(t.tail); k > 0 && t.tail[k-1].index >= from; k-- {
		t.tail = t.tail[:k-1]
		t.version++
	}
}

// commit folds the membership entries up to upto into the committed base.
func (t *confTracker) commit(upto uint64) {
	k := 0
	for k < len(t.tail) && t.tail[k].index <= upto {
		k++
	}
	if k == 0 {
		return
	}
	cs := t.tail[k-1].cs
	cs.Skipped = t.skipped(cs.Index)
	t.base = cs
	t.tail = append(t.tail[:0], t.tail[k:]...)
	t.dirty = true
	t.version++
}

// reset installs cs (the sender's committed configuration, with Skipped
// exact at SkippedAt = index) for a log restarted empty after index.
func (t *confTracker) reset(cs ConfState) {
	t.init(cs)
	t.dirty = true
}

// skipped returns the number of membership entries at indexes <= i.
func (t *confTracker) skipped(i uint64) uint64 {
	atI, _ := slices.BinarySearch(t.idx, i+1)
	atA, _ := slices.BinarySearch(t.idx, t.anchor+1)
	return t.anchorSkipped + uint64(atI) - uint64(atA)
}

// isMembership reports whether entry i is, or for all this node knows
// may be, a membership entry: one in its log or its committed
// configuration's, or — at or below the anchor, whose count of
// membership entries exceeds those the log shows (a damaged or missing
// record was one) — any position there.
func (t *confTracker) isMembership(i uint64) bool {
	known, _ := slices.BinarySearch(t.idx, t.anchor+1) // membership entries at or below the anchor in the log
	_, found := slices.BinarySearch(t.idx, i)
	return found || (i != 0 && t.base.Index == i) || (i <= t.anchor && t.anchorSkipped > uint64(known))
}

// seq is the message sequence number of entry i (see Entry.Seq).
func (t *confTracker) seq(i uint64) uint64 { return i - t.skipped(i) }

// confAt returns the configuration to hand a follower whose log restarts
// after index: the committed one, with Skipped exact at index (see
// resetLog: a configuration committed after index is in force there early,
// which is safe because it is committed).
func (t *confTracker) confForReset(index uint64) ConfState {
	cs := t.base.clone()
	cs.SkippedAt, cs.Skipped = index, t.skipped(index)
	return cs
}

// committedState returns the committed configuration as persisted.
func (t *confTracker) committedState() ConfState { return t.base.clone() }

// The node's view of the configuration in force.

func (n *Node) conf() *ConfState       { return n.log.conf.latest() }
func (n *Node) voters() []NodeID       { return n.conf().Voters }
func (n *Node) isVoter(id NodeID) bool { return n.conf().IsVoter(id) }
func (n *Node) quorum() int            { return len(n.voters())/2 + 1 }

// members lists the voters and learners in force, sorted.
func (n *Node) members() []NodeID {
	cs := n.conf()
	return slices.Sorted(slices.Values(append(slices.Clone(cs.Voters), cs.Learners...)))
}

// replicas lists the nodes a leader replicates to: the members in force
// and, until its removal commits, a member being removed (so it learns of
// its removal and stops campaigning), sorted, without this node.
func (n *Node) replicas() []NodeID {
	out := n.members()
	base := &n.log.conf.base
	for _, l := range [][]NodeID{base.Voters, base.Learners} {
		for _, id := range l {
			if i, ok := slices.BinarySearch(out, id); !ok {
				out = slices.Insert(out, i, id)
			}
		}
	}
	return slices.DeleteFunc(out, func(id NodeID) bool { return id == n.id })
}

// acceptsFrom filters messages by sender. Appends and heartbeats are taken
// from anyone (a joining node knows no configuration yet, and a lagging
// follower may not know a newer leader's addition yet; terms still guard
// them). Everything else only from members in force or whose removal is
// not committed yet (see electable): a node whose removal this node saw
// committed (or one that never joined) cannot take part in, or disturb,
// elections.
func (n *Node) acceptsFrom(m Message) bool {
	switch {
	case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgRecover:
		// (A leader of a configuration this log has not reached yet; a
		// recovering leader asks every member for copies.)
		return true
	case len(n.conf().Voters) == 0:
		return true // (knows no configuration yet: see inConfig)
	}
	return n.conf().IsMember(m.From) || n.log.conf.base.IsMember(m.From)
}

// ProposeMembership proposes one single-server change at the leader and
// returns the index of its membership entry. The change takes effect on
// every node as soon as the entry is in its log (see above); it is
// committed like any entry (watch Ready.ConfState, or Ready.Committed for
// an EntryMembership entry at that index). It consumes no sequence number.
//
// Errors: ErrNotLeader (not the leader: route to Status().Leader),
// ErrChangePending (the previous change is not committed, or the leader
// has not committed its term's history yet — retry shortly),
// ErrTransferring, ErrMemberExists, ErrUnknownMember, ErrLastVoter,
// ErrBadChange.
//
// A leader may remove itself: it keeps leading without counting itself
// until the removal commits, then hands over (MsgTimeoutNow to an
// up-to-date voter, if one is) and steps down.
func (n *Node) ProposeMembership(cc MembershipChange) (uint64, error) {
	switch {
	case n.role != Leader:
		return 0, ErrNotLeader
	case n.transferee != 0:
		return 0, ErrTransferring
	case n.sync != syncDone || n.log.conf.pending():
		return 0, ErrChangePending
	}
	next, err := n.conf().applyChange(cc)
	if err != nil {
		return 0, err
	}
	idx := n.log.lastIndex() + 1
	n.log.append(Entry{Index: idx, Term: n.term, Type: EntryMembership, Origin: n.id, Time: n.wallMs,
		Data: encodeMembership(MembershipEntry{Change: cc, Voters: next.Voters, Learners: next.Learners, Addrs: next.Addrs})})
	n.logf(LevelInfo, compMembership, "Proposed %v of node_%d at index %d: voters=%v learners=%v",
		cc.Type, cc.ID, idx, next.Voters, next.Learners)
	n.syncProgress()
	n.needBcast = true
	n.maybeCommit() // (a removal can make a majority of what is left)
	return idx, nil
}

// Membership returns the configuration in force (the latest in the log,
// committed or not) and the committed one, with their addresses. A node
// keeps links to the members of both: a member whose removal is not
// committed yet must still hear of it.
func (n *Node) Membership() (inForce, committed ConfState) {
	return n.conf().clone(), n.log.conf.base.clone()
}

// syncProgress keeps the leader's progress map equal to replicas() after
// the configuration changed.
func (n *Node) syncProgress() {
	if n.role != Leader || n.prsVersion == n.log.conf.version {
		return
	}
	n.prsVersion = n.log.conf.version
	want := n.replicas()
	for id := range n.prs {
		if _, ok := slices.BinarySearch(want, id); !ok {
			delete(n.prs, id)
		}
	}
	for _, id := range want {
		if n.prs[id] == nil {
			next := n.log.lastIndex() + 1
			if n.sync == syncSyncing {
				next = n.syncIndex + 1
			}
			n.prs[id] = &progress{next: next, inflight: newInflights(n.cfg.MaxInflight)}
			if n.sync >= syncSyncing {
				n.needBcast = true
			}
		}
	}
	n.replicaIDs = want
}

// maybeRemoved steps a leader down once its own removal committed.
func (n *Node) maybeRemoved() {
	base := &n.log.conf.base
	if n.role != Leader || base.IsVoter(n.id) || n.isVoter(n.id) {
		return
	}
	n.logf(LevelInfo, compMembership, "Removal of node_%d committed; stepping down", n.id)
	if to := n.bestTransferee(); to != 0 && n.prs[to].match == n.log.lastIndex() {
		n.send(Message{To: to, Type: MsgTimeoutNow}) // no need to wait for an election timeout
	}
	n.becomeFollower(n.term, 0)
}

// electable reports whether this node takes part in elections (campaigns,
// acknowledges, answers MsgElection): it votes in the configuration in
// force, or its own removal is not committed yet. The latter matters
// when a leader that removed itself dies before the removal commits: it
// still counts in everybody else's configuration, and with the newest
// configuration it may be the only node the others can elect; it then
// leads without counting itself, commits its removal and hands over (the
// thesis's leader that is not part of its own configuration).
func (n *Node) electable() bool { return n.isVoter(n.id) || n.log.conf.base.IsVoter(n.id) }

// inConfig reports whether this node is a member (voter or learner) of the
// configuration in force or of the committed one — or knows no
// configuration at all (a joining node that has not received its log: it
// may already be a voter of a configuration it has not seen, and like a
// Raft node with an empty log it may acknowledge; a coordinator counts it
// only if its own configuration lists it as a voter).
func (n *Node) inConfig() bool {
	return len(n.conf().Voters) == 0 || n.conf().IsMember(n.id) || n.log.conf.base.IsMember(n.id)
}
