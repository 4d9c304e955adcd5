package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
)

// msTime is a sequencer timestamp as people read it (UTC, milliseconds).
func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// textPrinter writes the log for people: a header, one line per record
// in the guide's `[seq=N] sender: payload` style, a summary.
type textPrinter struct{ w *bufio.Writer }

func (p *textPrinter) f(format string, args ...any) { fmt.Fprintf(p.w, format, args...) }

func (p *textPrinter) state(dir string, hs store.DiskState) {
	p.f("data directory  %s\n", dir)
	p.f("cluster id      %s\n", orNone(hs.ClusterID))
	p.f("hard state      term %d, vote %s, accepted term %d, commit index %d\n", hs.Term, nodeOrNone(hs.Vote), hs.AcceptedTerm, hs.Commit)
	if hs.Repaired != "" {
		p.f("                DAMAGED: %s\n", hs.Repaired)
	}
	if hs.MustReach != 0 {
		p.f("                must reach index %d: the log lost acknowledged entries; the node takes no part in elections until a leader refills it\n", hs.MustReach)
	}
	if hs.BaseIndex != 0 {
		p.f("                log restarted or trimmed after index %d (term %d)\n", hs.BaseIndex, hs.BaseTerm)
	}
	if hs.Joining {
		p.f("                joining a cluster: no configuration received yet\n")
	}
	if hs.Conf == nil {
		p.f("configuration   none stored: the membership never changed (a static cluster's members are its peers option)\n")
		return
	}
	cs := hs.Conf
	from := "the initial configuration"
	if cs.Index != 0 {
		from = fmt.Sprintf("set by the membership entry at index %d, term %d", cs.Index, cs.Term)
	}
	p.f("configuration   voters %s; learners %s (committed; %s)\n", ids(cs.Voters), ids(cs.Learners), from)
	for _, id := range slices.Sorted(maps.Keys(cs.Addrs)) {
		p.f("                node %d at %s\n", id, cs.Addrs[id])
	}
}

func (p *textPrinter) message(e *consensus.Entry, m *store.Message, committed bool) {
	ch := showField(m.Channel)
	if m.Shard {
		ch += " (spublish)"
	}
	p.f("[seq=%d] %s %s %s: %s%s\n", m.Seq, msTime(m.TimeMs), ch, showField([]byte(m.Sender)), show(m.Payload), uncommitted(committed))
}

func (p *textPrinter) membership(e *consensus.Entry, me consensus.MembershipEntry, committed bool) {
	change := fmt.Sprintf("%s node %d", me.Change.Type, me.Change.ID)
	if a := changeAddr(me); a != "" {
		change += " at " + a
	}
	p.f("[index=%d] membership %s -> voters %s; learners %s (term %d, %s)%s\n",
		e.Index, change, ids(me.Voters), ids(me.Learners), e.Term, msTime(e.Time), uncommitted(committed))
}

func (p *textPrinter) damaged(index uint64, reason string) {
	p.f("[index=%d] DAMAGED: %s\n", index, reason)
}

func (p *textPrinter) lost(e *consensus.Entry) {
	p.f("[index=%d seq=%d] LOST: no member held it intact; an operator accepted the loss (CLUSTER ACCEPT-LOSS)\n", e.Index, e.Seq)
}

func (p *textPrinter) unreadable(u wal.Unreadable) { p.f("UNREADABLE: %s\n", u) }

func (p *textPrinter) summary(s *logSummary) {
	in := s.in
	p.f("\nlog             ")
	if in.LastIndex < in.FirstIndex {
		p.f("empty (next index %d)\n", in.FirstIndex)
	} else {
		p.f("indexes %d..%d in %d segment file(s)\n", in.FirstIndex, in.LastIndex, in.Segments)
	}
	if s.messages > 0 {
		p.f("messages        %d, seq %d..%d\n", s.messages, s.firstSeq, s.lastSeq)
	} else {
		p.f("messages        none\n")
	}
	p.f("membership      %d entries in the log\n", s.memberships)
	if in.LastIndex > s.commit && in.LastIndex >= in.FirstIndex {
		p.f("beyond commit   indexes %d..%d follow the stored commit index %d, marked \"beyond stored commit\": a node saves its commit index\n"+
			"                lazily, so acknowledged messages can be among them; one that never reached a majority may be replaced by a new leader\n",
			max(s.commit+1, in.FirstIndex), in.LastIndex, s.commit)
	}
	if len(s.damaged) > 0 {
		p.f("damaged         %d record(s): indexes %s\n", len(s.damaged), joinUints(s.damaged))
	}
	if in.TornTail.DroppedBytes > 0 {
		p.f("torn tail       %d bytes (%d whole records) from index %d at the end of %s: a node cuts them when it starts (a write cut short by a crash)\n",
			in.TornTail.DroppedBytes, in.TornTail.DroppedRecords, in.TornFrom, in.TornTail.Segment)
	}
	if in.Pending != "" {
		p.f("pending         %s\n", in.Pending)
	}
	for _, r := range in.Reframed {
		p.f("reframed        %s: a damaged length prefix, read past by the next record's checksum (a node rewrites the frame when it starts)\n", r)
	}
	if s.seriousDamage() == 0 {
		p.f("checksums       all records verified\n")
	}
}

// changeAddr is the address of the node a membership change is about:
// the change's own, else the one the new configuration holds for it.
func changeAddr(me consensus.MembershipEntry) string {
	if me.Change.Addr != "" {
		return me.Change.Addr
	}
	return me.Addrs[me.Change.ID]
}

// uncommitted marks a record after the commit index in the state file,
// which is a lower bound (see the summary).
func uncommitted(committed bool) string {
	if committed {
		return ""
	}
	return "  (beyond stored commit)"
}

// show is a payload as text: as it is when printable, else Go-quoted
// (so a binary payload cannot garble the terminal).
func show(b []byte) string {
	s := string(b)
	if s != "" && s[0] != '"' && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// showField is show for a word in the middle of a line: quoted if it has
// spaces too.
func showField(b []byte) string {
	if strings.ContainsRune(string(b), ' ') {
		return strconv.Quote(string(b))
	}
	return show(b)
}

func ids(l []consensus.NodeID) string {
	if len(l) == 0 {
		return "none"
	}
	s := make([]string, len(l))
	for i, id := range l {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, " ")
}

func joinUints(l []uint64) string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = strconv.FormatUint(v, 10)
	}
	return strings.Join(s, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func nodeOrNone(id uint64) string {
	if id == 0 {
		return "none"
	}
	return "node " + strconv.FormatUint(id, 10)
}

// jsonPrinter writes one JSON object per line, each with a "type", so
// the output streams (a long log is never held in memory) and filters
// with jq: `ordo log --json --data-dir d | jq 'select(.type=="message")'`.
type jsonPrinter struct{ enc *json.Encoder }

func newJSONPrinter(w *bufio.Writer) *jsonPrinter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonPrinter{enc}
}

type jsonConf struct {
	Voters   []consensus.NodeID          `json:"voters"`
	Learners []consensus.NodeID          `json:"learners"`
	Addrs    map[consensus.NodeID]string `json:"addrs,omitempty"`
	Index    uint64                      `json:"index,omitempty"` // the membership entry that set it
	Term     uint64                      `json:"term,omitempty"`
}

func (p *jsonPrinter) state(dir string, hs store.DiskState) {
	v := struct {
		Type          string    `json:"type"`
		DataDir       string    `json:"data_dir"`
		ClusterID     string    `json:"cluster_id"`
		Term          uint64    `json:"term"`
		Vote          uint64    `json:"vote"`
		AcceptedTerm  uint64    `json:"accepted_term"`
		Commit        uint64    `json:"commit"`
		MustReach     uint64    `json:"must_reach,omitempty"`
		BaseIndex     uint64    `json:"base_index,omitempty"`
		BaseTerm      uint64    `json:"base_term,omitempty"`
		Joining       bool      `json:"joining,omitempty"`
		Configuration *jsonConf `json:"configuration"`     // null: never changed (static peers)
		Damaged       string    `json:"damaged,omitempty"` // a damaged copy of the state file
	}{"state", dir, hs.ClusterID, hs.Term, hs.Vote, hs.AcceptedTerm, hs.Commit, hs.MustReach, hs.BaseIndex, hs.BaseTerm, hs.Joining, nil, hs.Repaired}
	if cs := hs.Conf; cs != nil {
		v.Configuration = &jsonConf{nonNil(cs.Voters), nonNil(cs.Learners), cs.Addrs, cs.Index, cs.Term}
	}
	p.enc.Encode(v)
}

func nonNil(l []consensus.NodeID) []consensus.NodeID {
	if l == nil {
		return []consensus.NodeID{}
	}
	return l
}

func (p *jsonPrinter) message(e *consensus.Entry, m *store.Message, committed bool) {
	v := struct {
		Type          string `json:"type"`
		Seq           uint64 `json:"seq"`
		Index         uint64 `json:"index"`
		Term          uint64 `json:"term"`
		Time          string `json:"time"`
		TimeMs        int64  `json:"time_ms"`
		Channel       string `json:"channel"`
		Sender        string `json:"sender"`
		Payload       string `json:"payload,omitempty"`
		PayloadBase64 string `json:"payload_base64,omitempty"` // instead of payload when it is not UTF-8
		Shard         bool   `json:"shard,omitempty"`          // SPUBLISH
		Origin        uint64 `json:"origin"`                   // the node that took the PUBLISH
		Committed     bool   `json:"known_committed"`          // at or before the state file's commit index (a lower bound)
	}{Type: "message", Seq: m.Seq, Index: e.Index, Term: e.Term, Time: msTime(m.TimeMs), TimeMs: m.TimeMs,
		Channel: string(m.Channel), Sender: m.Sender, Shard: m.Shard, Origin: uint64(e.Origin), Committed: committed}
	if utf8.Valid(m.Payload) {
		v.Payload = string(m.Payload)
	} else {
		v.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	p.enc.Encode(v)
}

func (p *jsonPrinter) membership(e *consensus.Entry, me consensus.MembershipEntry, committed bool) {
	p.enc.Encode(struct {
		Type      string   `json:"type"`
		Index     uint64   `json:"index"`
		Term      uint64   `json:"term"`
		Time      string   `json:"time"`
		Change    string   `json:"change"`
		Node      uint64   `json:"node"`
		Addr      string   `json:"addr,omitempty"`
		After     jsonConf `json:"configuration"` // the whole configuration after the change
		Committed bool     `json:"known_committed"`
	}{"membership", e.Index, e.Term, msTime(e.Time), me.Change.Type.String(), uint64(me.Change.ID), changeAddr(me),
		jsonConf{nonNil(me.Voters), nonNil(me.Learners), me.Addrs, 0, 0}, committed})
}

func (p *jsonPrinter) damaged(index uint64, reason string) {
	p.enc.Encode(struct {
		Type  string `json:"type"`
		Index uint64 `json:"index"`
		Error string `json:"error"`
	}{"damaged", index, reason})
}

func (p *jsonPrinter) lost(e *consensus.Entry) {
	p.enc.Encode(struct {
		Type  string `json:"type"`
		Index uint64 `json:"index"`
		Seq   uint64 `json:"seq"`
		Term  uint64 `json:"term"`
	}{"lost", e.Index, e.Seq, e.Term})
}

func (p *jsonPrinter) unreadable(u wal.Unreadable) {
	p.enc.Encode(struct {
		Type    string `json:"type"`
		Segment string `json:"segment"`
		Offset  int64  `json:"offset"`
		Bytes   int64  `json:"bytes"`
		From    uint64 `json:"from_index"`
		To      uint64 `json:"to_index,omitempty"` // absent: unknown (the last segment)
		Reason  string `json:"reason"`
	}{"unreadable", u.Segment, u.Offset, u.Bytes, u.From, u.To, u.Reason})
}

func (p *jsonPrinter) summary(s *logSummary) {
	type torn struct {
		Segment   string `json:"segment"`
		FromIndex uint64 `json:"from_index"`
		Bytes     int64  `json:"bytes"`
		Records   int    `json:"records"`
	}
	v := struct {
		Type        string        `json:"type"`
		FirstIndex  uint64        `json:"first_index"`
		LastIndex   uint64        `json:"last_index"`
		Segments    int           `json:"segments"`
		Messages    int           `json:"messages"`
		FirstSeq    uint64        `json:"first_seq"`
		LastSeq     uint64        `json:"last_seq"`
		Memberships int           `json:"membership_entries"`
		Damaged     []uint64      `json:"damaged"`
		TornTail    *torn         `json:"torn_tail"` // what a node cuts when it starts
		Pending     string        `json:"pending,omitempty"`
		Reframed    []wal.Reframe `json:"reframed,omitempty"` // damaged length prefixes read past
		Clean       bool          `json:"clean"`              // no damage beyond a torn tail
	}{Type: "summary", FirstIndex: s.in.FirstIndex, LastIndex: s.in.LastIndex, Segments: s.in.Segments,
		Messages: s.messages, FirstSeq: s.firstSeq, LastSeq: s.lastSeq, Memberships: s.memberships,
		Damaged: append([]uint64{}, s.damaged...), Pending: s.in.Pending, Reframed: s.in.Reframed, Clean: s.seriousDamage() == 0}
	if t := s.in.TornTail; t.DroppedBytes > 0 {
		v.TornTail = &torn{t.Segment, s.in.TornFrom, t.DroppedBytes, t.DroppedRecords}
	}
	p.enc.Encode(v)
}
