package consensus

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// MsgType names an internode message.
type MsgType uint8

const (
	// MsgHeartbeat is the leader's periodic "I am alive" (an empty append:
	// it carries the commit index the follower may apply).
	MsgHeartbeat MsgType = iota + 1
	// MsgHeartbeatResp answers a heartbeat; it also carries the current term
	// back to a stale leader that sent anything of an older term.
	MsgHeartbeatResp
	// MsgApp carries a batch of entries following (Index, LogTerm).
	MsgApp
	// MsgAppResp acknowledges a MsgApp by position (Index = highest index
	// persisted and known to match the leader's log) or rejects it with a
	// hint (RejectHint, LogTerm) to find the divergence point.
	MsgAppResp
	// MsgElection is the bully "are you alive?" sent to higher IDs.
	MsgElection
	// MsgAlive is the bully "OK": a higher ID is alive and will take over.
	MsgAlive
	// MsgCoordinator announces a coordinator for Term. With Pre set it is a
	// probe ("would you acknowledge Term?") that changes no state anywhere.
	MsgCoordinator
	// MsgCoordinatorAck acknowledges (or, with Reject, refuses) a
	// coordinator. A real acknowledgement carries the voter's log position:
	// AcceptedTerm, LastIndex, LastTerm.
	MsgCoordinatorAck
	// MsgSyncReq is sent by a new leader to the voter with the most advanced
	// log: "send me your entries after (Index, LogTerm)".
	MsgSyncReq
	// MsgSyncResp carries the voter's entries after (Index, LogTerm), and its
	// LastIndex; Reject means the voter can no longer serve its acknowledged
	// log (the leader must step down).
	MsgSyncResp
	// MsgForward carries proposals of one origin from a follower to the
	// leader, in ReqID order. Index is the ReqID of the origin's proposal
	// sent just before them in this stream (0: the stream (re)starts with
	// the origin's oldest pending proposal). A leader that did not receive
	// that one refuses the batch: it answers MsgForward with Reject and the
	// first refused proposal (no Data), and the follower restarts its
	// stream. So a lost batch never lets a later one overtake it.
	MsgForward
	// MsgTimeoutNow is sent by the leader to the target of a leadership
	// transfer once it holds the whole log: campaign now (see transfer.go).
	MsgTimeoutNow
	// MsgRecover is sent by a leader whose synchronised history has
	// damaged positions (recover.go) to every member: Index is the first
	// of them, Terms[k] the term of position Index+k if known (else 0),
	// and (LastIndex, LastTerm) the history's last position beyond the
	// window with a known term (0: none).
	MsgRecover
	// MsgRecoverResp answers MsgRecover. With Entries: intact entries the
	// sender holds for the window (following Index, as in MsgApp). Without:
	// the summary for the window starting at Index: Terms[k] is 1 if the
	// sender does not hold position Index+k (absent: no entry there, or
	// one of another term) and can say so; LastIndex is how far its log
	// reaches (damaged positions included), Commit its commit index.
	MsgRecoverResp

	msgTypeEnd
)

var msgTypeNames = [...]string{
	MsgHeartbeat:      "MsgHeartbeat",
	MsgHeartbeatResp:  "MsgHeartbeatResp",
	MsgApp:            "MsgApp",
	MsgAppResp:        "MsgAppResp",
	MsgElection:       "MsgElection",
	MsgAlive:          "MsgAlive",
	MsgCoordinator:    "MsgCoordinator",
	MsgCoordinatorAck: "MsgCoordinatorAck",
	MsgSyncReq:        "MsgSyncReq",
	MsgSyncResp:       "MsgSyncResp",
	MsgForward:        "MsgForward",
	MsgTimeoutNow:     "MsgTimeoutNow",
	MsgRecover:        "MsgRecover",
	MsgRecoverResp:    "MsgRecoverResp",
}

func (t MsgType) String() string {
	if t > 0 && t < msgTypeEnd {
		return msgTypeNames[t]
	}
	return "MsgType(" + strconv.Itoa(int(t)) + ")"
}

// Message is one internode message. Every message carries the sender's
// Term; the meaning of the other fields depends on Type (see MsgType).
type Message struct {
	Type MsgType
	From NodeID
	To   NodeID
	Term uint64

	// MsgApp, MsgSyncReq, MsgSyncResp: the entry preceding Entries.
	// MsgAppResp: the acknowledged index, or the rejected Index.
	// MsgHeartbeatResp: the sender's last index.
	// MsgForward: the ReqID preceding Proposals in the stream.
	Index uint64
	// LogTerm is the term of entry Index; 0 for Index > 0 means unknown
	// (the entry is gone by retention and its term was not kept).
	LogTerm uint64
	// Commit is the sender's commit index (MsgApp, MsgHeartbeat,
	// MsgSyncReq).
	Commit  uint64
	Entries []Entry

	Reject     bool
	RejectHint uint64 // MsgAppResp with Reject: the follower's hint index

	// Reset (MsgApp, MsgSyncResp): the sender no longer holds entries up to
	// Index (retention), so it cannot go back further. A receiver whose log
	// does not match at (Index, LogTerm) discards its log and restarts it at
	// Index+1 (Ready.ResetLog). Index is committed.
	Reset bool
	// Repair (MsgAppResp, MsgHeartbeatResp) is non-zero while the sender's
	// log may lack entries it acknowledged and it does not know which
	// (MustReach unknown): a random token of this incarnation. The leader
	// echoes it in MsgApp / MsgHeartbeat with LastIndex = its last index
	// when it first saw the token: the follower is whole again once it
	// holds that much of this leader's log.
	Repair uint64

	// SyncIndex (MsgApp, MsgHeartbeat) is the last index of the leader's
	// synchronised history: a follower that has not yet synced with this
	// term's leader accepts entries up to it and no further.
	SyncIndex uint64
	// AcceptedTerm (MsgCoordinatorAck, MsgAppResp, MsgHeartbeatResp) is the
	// sender's HardState.AcceptedTerm.
	AcceptedTerm uint64
	// LastIndex, LastTerm (MsgCoordinatorAck, MsgSyncResp): the sender's
	// log position. LastIndex (MsgAppResp): the sender's last index.
	// LastIndex (MsgApp, MsgHeartbeat with Repair): the repair target.
	LastIndex uint64
	LastTerm  uint64
	// Pre marks MsgCoordinator / MsgCoordinatorAck as a pre-vote probe.
	// On MsgApp / MsgHeartbeat it says the leader has sequenced nothing
	// (its log is empty): its leadership is provisional and yields to a
	// higher ID (formation; see election.go).
	Pre bool

	Proposals []Proposal // MsgForward

	// Transfer marks a MsgCoordinator of an election the leader asked for
	// (MsgTimeoutNow): voters acknowledge it even while in lease.
	Transfer bool
	// Conf (MsgApp, MsgSyncResp with Reset) is the sender's committed
	// configuration, with Skipped exact at the restart point (SkippedAt
	// = Index): the receiver whose log restarts there installs it.
	Conf *ConfState

	// Faulty (MsgSyncResp): the sender's log ends right after Entries, and
	// it holds damaged positions after it up to LastIndex, whose terms (0:
	// unknown) are Terms. Terms also carries MsgRecover's and
	// MsgRecoverResp's per-position data.
	Faulty bool
	Terms  []uint64
}

const (
	// wireVersion 2 added Repair and the Reset flag: a node of version 1
	// rejects the messages of a version 2 node (and vice versa) instead of
	// misreading them. Version 3 added MsgTimeoutNow, Transfer and Conf
	// (with the members' addresses).
	// Version 4 added MsgRecover, MsgRecoverResp, Faulty and Terms.
	// Upgrade all nodes together.
	wireVersion = 4

	flagReject   = 1 << 0
	flagPre      = 1 << 1
	flagReset    = 1 << 2
	flagTransfer = 1 << 3
	flagConf     = 1 << 4
	flagFaulty   = 1 << 5
)

// ErrBadMessage is returned by UnmarshalMessage for input that is not a
// well-formed message of this version, and by Node.Step for a message no
// correct peer sends (see Step); errors.Is matches it either way.
var ErrBadMessage = errors.New("consensus: malformed message")

// Size returns an upper bound of len(m.Marshal()).
func (m *Message) Size() int {
	n := 3 + 12*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64
	if m.Conf != nil {
		n += (5 + len(m.Conf.Voters) + len(m.Conf.Learners) + 2*len(m.Conf.Addrs)) * binary.MaxVarintLen64
		for _, a := range m.Conf.Addrs {
			n += len(a)
		}
	}
	for i := range m.Entries {
		n += 6*binary.MaxVarintLen64 + 1 + len(m.Entries[i].Data)
	}
	for i := range m.Proposals {
		n += 3*binary.MaxVarintLen64 + 1 + len(m.Proposals[i].Data)
	}
	n += (1 + len(m.Terms)) * binary.MaxVarintLen64
	return n
}

// Marshal encodes m compactly:
//
//	| version | type | flags | uvarint From, To, Term, Index, LogTerm, Commit,
//	  RejectHint, SyncIndex, AcceptedTerm, LastIndex, LastTerm, Repair |
//	| uvarint #entries | entries... | uvarint #proposals | proposals... |
//
// An entry is | uvarint Index-delta | uvarint Term | Type | uvarint Origin,
// ReqID | varint Time | uvarint len | Data |, where Index-delta is relative to the
// previous entry's Index (the first relative to 0). A proposal is
// | uvarint Origin, ReqID | Type | uvarint len | Data |.
func (m Message) Marshal() []byte {
	return m.AppendMarshal(make([]byte, 0, m.Size()))
}

// AppendMarshal appends the encoding of m to b.
func (m Message) AppendMarshal(b []byte) []byte {
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Pre {
		flags |= flagPre
	}
	if m.Reset {
		flags |= flagReset
	}
	if m.Transfer {
		flags |= flagTransfer
	}
	if m.Conf != nil {
		flags |= flagConf
	}
	if m.Faulty {
		flags |= flagFaulty
	}
	b = append(b, wireVersion, byte(m.Type), flags)
	for _, v := range [...]uint64{uint64(m.From), uint64(m.To), m.Term, m.Index, m.LogTerm,
		m.Commit, m.RejectHint, m.SyncIndex, m.AcceptedTerm, m.LastIndex, m.LastTerm, m.Repair} {
		b = binary.AppendUvarint(b, v)
	}
	if cs := m.Conf; cs != nil {
		for _, v := range [...]uint64{cs.Index, cs.Term, cs.SkippedAt, cs.Skipped} {
			b = binary.AppendUvarint(b, v)
		}
		for _, l := range [][]NodeID{cs.Voters, cs.Learners} {
			b = binary.AppendUvarint(b, uint64(len(l)))
			for _, id := range l {
				b = binary.AppendUvarint(b, uint64(id))
			}
		}
		b = appendAddrs(b, cs.Addrs)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	var prev uint64
	for i := range m.Entries {
		e := &m.Entries[i]
		b = binary.AppendUvarint(b, e.Index-prev)
		prev = e.Index
		b = binary.AppendUvarint(b, e.Term)
		b = append(b, byte(e.Type))
		b = binary.AppendUvarint(b, uint64(e.Origin))
		b = binary.AppendUvarint(b, e.ReqID)
		b = binary.AppendVarint(b, e.Time)
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Proposals)))
	for i := range m.Proposals {
		p := &m.Proposals[i]
		b = binary.AppendUvarint(b, uint64(p.Origin))
		b = binary.AppendUvarint(b, p.ReqID)
		b = append(b, byte(p.Type))
		b = binary.AppendUvarint(b, uint64(len(p.Data)))
		b = append(b, p.Data...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Terms)))
	for _, t := range m.Terms {
		b = binary.AppendUvarint(b, t)
	}
	return b
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	if d.err || len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	if n == 0 {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// count reads an element count and rejects counts that the remaining input
// cannot possibly hold (each element takes at least min bytes), so garbage
// never causes a large allocation.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)/min) {
		d.err = true
		return 0
	}
	return int(n)
}

// UnmarshalMessage decodes a message produced by Marshal. It returns
// ErrBadMessage (never panics) for truncated, oversized or otherwise
// malformed input. The returned message does not alias b.
func UnmarshalMessage(b []byte) (Message, error) {
	if len(b) < 3 {
		return Message{}, ErrBadMessage
	}
	return UnmarshalMessageOwned(append([]byte(nil), b...))
}

// UnmarshalMessageOwned is UnmarshalMessage for a buffer the caller hands
// over (a frame read into its own allocation): the returned message's
// entry and proposal data alias b, which must not change afterwards.
func UnmarshalMessageOwned(b []byte) (Message, error) {
	var m Message
	if len(b) < 3 || b[0] != wireVersion {
		return m, ErrBadMessage
	}
	m.Type = MsgType(b[1])
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return m, ErrBadMessage
	}
	flags := b[2]
	if flags&^(flagReject|flagPre|flagReset|flagTransfer|flagConf|flagFaulty) != 0 {
		return m, ErrBadMessage
	}
	m.Reject = flags&flagReject != 0
	m.Pre = flags&flagPre != 0
	m.Reset = flags&flagReset != 0
	m.Transfer = flags&flagTransfer != 0
	m.Faulty = flags&flagFaulty != 0
	d := decoder{b: b[3:]} // decoded Data slices alias b
	m.From = NodeID(d.uvarint())
	m.To = NodeID(d.uvarint())
	m.Term = d.uvarint()
	m.Index = d.uvarint()
	m.LogTerm = d.uvarint()
	m.Commit = d.uvarint()
	m.RejectHint = d.uvarint()
	m.SyncIndex = d.uvarint()
	m.AcceptedTerm = d.uvarint()
	m.LastIndex = d.uvarint()
	m.LastTerm = d.uvarint()
	m.Repair = d.uvarint()
	if flags&flagConf != 0 {
		cs := &ConfState{Index: d.uvarint(), Term: d.uvarint(), SkippedAt: d.uvarint(), Skipped: d.uvarint()}
		for k := 0; k < 2 && !d.err; k++ {
			ids := make([]NodeID, d.count(1))
			for i := range ids {
				ids[i] = NodeID(d.uvarint())
			}
			if len(ids) == 0 {
				ids = nil
			}
			if k == 0 {
				cs.Voters = ids
			} else {
				cs.Learners = ids
			}
		}
		cs.Addrs = d.addrs()
		m.Conf = cs
	}
	if n := d.count(6); n > 0 {
		m.Entries = make([]Entry, n)
		var prev uint64
		for i := range m.Entries {
			e := &m.Entries[i]
			delta := d.uvarint()
			if delta == 0 || prev+delta < prev {
				d.err = true
				break
			}
			e.Index = prev + delta
			prev = e.Index
			e.Term = d.uvarint()
			t := d.byte1()
			if t > byte(EntryLost) {
				d.err = true
			}
			e.Type = EntryType(t)
			e.Origin = NodeID(d.uvarint())
			e.ReqID = d.uvarint()
			e.Time = d.varint()
			e.Data = d.bytes()
			if d.err {
				break
			}
		}
		if !d.err {
			for i := 1; i < len(m.Entries); i++ {
				if m.Entries[i].Index != m.Entries[i-1].Index+1 {
					d.err = true
					break
				}
			}
		}
	}
	if n := d.count(4); n > 0 && !d.err {
		m.Proposals = make([]Proposal, n)
		for i := range m.Proposals {
			p := &m.Proposals[i]
			p.Origin = NodeID(d.uvarint())
			p.ReqID = d.uvarint()
			t := d.byte1()
			if t > byte(EntryMembership) {
				d.err = true
			}
			p.Type = EntryType(t)
			p.Data = d.bytes()
			if d.err {
				break
			}
		}
	}
	if n := d.count(1); n > 0 && !d.err {
		m.Terms = make([]uint64, n)
		for i := range m.Terms {
			m.Terms[i] = d.uvarint()
		}
	}
	if d.err || len(d.b) != 0 {
		return Message{}, ErrBadMessage
	}
	return m, nil
}
