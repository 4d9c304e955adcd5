package store

import (
	"encoding/binary"
	"errors"

	"github.com/ordo-broker/ordo/consensus"
)

// A log record is one consensus entry as stored in the WAL (whose own
// framing adds a checksum; the WAL index is the entry's log index):
//
//	| version=2 | term uvarint | type u8 | origin uvarint | reqid uvarint | time varint | index-seq uvarint | data |
//
// (Version 1 records lack index-seq: they were written before membership
// changes existed, when seq was always the index.)
//
// The data of a normal entry is a published message:
//
//	| flags u8 (1 = shard) | len uvarint | channel | len uvarint | sender | payload |
const recordVersion = 2

// ErrBadRecord is returned for a record or message that does not parse.
var ErrBadRecord = errors.New("malformed log record")

// EncodeEntry appends e's record to dst.
func EncodeEntry(dst []byte, e *consensus.Entry) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, e.Term)
	dst = append(dst, byte(e.Type))
	dst = binary.AppendUvarint(dst, uint64(e.Origin))
	dst = binary.AppendUvarint(dst, e.ReqID)
	dst = binary.AppendVarint(dst, e.Time)
	seq := e.Seq
	if seq > e.Index || (seq == 0 && e.Type == consensus.EntryNormal) {
		seq = e.Index // (a caller that did not fill Seq in)
	}
	dst = binary.AppendUvarint(dst, e.Index-seq)
	return append(dst, e.Data...)
}

// DecodeEntry parses the record of entry index; Data aliases b.
func DecodeEntry(index uint64, b []byte) (consensus.Entry, error) {
	e := consensus.Entry{Index: index, Seq: index}
	if len(b) < 1 || b[0] < 1 || b[0] > recordVersion {
		return e, ErrBadRecord
	}
	version := b[0]
	b = b[1:]
	var n int
	if e.Term, n = binary.Uvarint(b); n <= 0 {
		return e, ErrBadRecord
	}
	b = b[n:]
	if len(b) < 1 {
		return e, ErrBadRecord
	}
	e.Type, b = consensus.EntryType(b[0]), b[1:]
	origin, n := binary.Uvarint(b)
	if n <= 0 {
		return e, ErrBadRecord
	}
	e.Origin, b = consensus.NodeID(origin), b[n:]
	if e.ReqID, n = binary.Uvarint(b); n <= 0 {
		return e, ErrBadRecord
	}
	b = b[n:]
	if e.Time, n = binary.Varint(b); n <= 0 {
		return e, ErrBadRecord
	}
	b = b[n:]
	if version >= 2 {
		skip, n := binary.Uvarint(b)
		if n <= 0 || skip > index {
			return e, ErrBadRecord
		}
		e.Seq, b = index-skip, b[n:]
	}
	e.Data = b
	return e, nil
}

const flagShard = 1

// EncodeMessage is the Data of a normal entry carrying m.
func EncodeMessage(m *Message) []byte {
	return AppendMessage(make([]byte, 0, MessageSize(m)), m)
}

// MessageSize is an upper bound of the encoded size of m.
func MessageSize(m *Message) int {
	return 1 + 2*binary.MaxVarintLen32 + len(m.Channel) + len(m.Sender) + len(m.Payload)
}

// AppendMessage appends the encoding of m (EncodeMessage's) to b.
func AppendMessage(b []byte, m *Message) []byte {
	var flags byte
	if m.Shard {
		flags |= flagShard
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(m.Channel)))
	b = append(b, m.Channel...)
	b = binary.AppendUvarint(b, uint64(len(m.Sender)))
	b = append(b, m.Sender...)
	return append(b, m.Payload...)
}

// DecodeMessage fills m from an entry's data; the slices alias data.
func DecodeMessage(data []byte, m *Message) error {
	if len(data) < 1 {
		return ErrBadRecord
	}
	m.Shard = data[0]&flagShard != 0
	data = data[1:]
	n, k := binary.Uvarint(data)
	if k <= 0 || uint64(len(data)-k) < n {
		return ErrBadRecord
	}
	m.Channel, data = data[k:k+int(n)], data[k+int(n):]
	n, k = binary.Uvarint(data)
	if k <= 0 || uint64(len(data)-k) < n {
		return ErrBadRecord
	}
	m.Sender, m.Payload = string(data[k:k+int(n)]), data[k+int(n):]
	return nil
}

// EntryMessage decodes a normal entry into a message with its sequence
// number and sequencer time.
func EntryMessage(e *consensus.Entry) (*Message, error) {
	m := &Message{Seq: e.Seq, TimeMs: e.Time}
	if err := DecodeMessage(e.Data, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Message is one published message: what a PUBLISH carries, plus the
// sequence number and time the sequencer gave it once committed.
type Message struct {
	Seq     uint64
	Channel []byte
	Payload []byte
	Sender  string
	TimeMs  int64
	Shard   bool // SPUBLISH
}
