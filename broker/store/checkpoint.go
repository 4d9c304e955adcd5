package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/ordo-broker/ordo/wal"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	"github.com/ordo-broker/ordo/consensus"
)

// Index checkpoints. Without one, a restart reads and verifies every
// record to rebuild the channel index, the seq runs and the core's
// summary: ~10 s and gigabytes of garbage for 10M messages. A checkpoint
// is all of that as of an applied index (upto), saved next to the log
// every CheckpointEvery applied entries and at a clean shutdown; a
// restart loads it and reads only the records after upto.
//
// It is trusted only if it still describes this log: it names the first
// index it covers and carries a hash of the record at upto, which must
// read back (checksum verified) with the same hash. A log truncated,
// reset or refilled differently below upto fails that test, and a
// missing, damaged or stale checkpoint falls back to the full scan.
//
// Damage: the full scan verified every record's checksum at startup. With
// a checkpoint the records up to upto are instead verified (a) whenever
// read — a damaged record is never served, as before — and (b) by a
// background pass over [first, upto] right after startup (verify.go),
// which on damage deletes the checkpoint and reports it, so the node
// reopens its log with the full scan and repairs as it always did.
//
// File format (IndexFile), all integers uvarints:
//
//	"ORDOIDX1" | upto | first | crc32c of record upto's payload |
//	runs: n (index seq)* | summary: n (origin req)* n index* n (index term)* |
//	corrupt: n index* | channels: n (len name seqList)* | crc32c of all before (4 bytes LE)
const (
	IndexFile        = "index.ckpt"
	indexMagic       = "ORDOIDX1"
	CheckpointEvery  = 1 << 20
	maxCheckpointLen = 1 << 30
)

// Checkpoints is where a store keeps its index checkpoint (a Disk).
type Checkpoints interface {
	// LoadIndex returns the last saved checkpoint (nil, nil if none).
	LoadIndex() ([]byte, error)
	// SaveIndex replaces it atomically and durably (nil: remove it).
	SaveIndex(b []byte) error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkpoint is what a checkpoint holds, as a snapshot of a store.
type checkpoint struct {
	upto, first uint64
	recHash     uint32
	runs        seqRuns
	sum         summary
	corrupt     []uint64
	channels    map[string]seqList
}

// snapshot copies the store's index as of applied index s.applied (s.mu
// held). Sealed chunks are immutable, so they are shared, not copied.
func (s *Store) snapshot() *checkpoint {
	ck := &checkpoint{
		upto:     s.applied,
		first:    s.log.FirstIndex(),
		runs:     slices.Clone(s.runs),
		corrupt:  slices.Clone(s.corrupt),
		channels: make(map[string]seqList, len(s.byChannel)),
	}
	ck.sum = summary{upto: s.sum.upto, membership: slices.Clone(s.sum.membership), terms: slices.Clone(s.sum.terms),
		maxReq: make(map[consensus.NodeID]uint64, len(s.sum.maxReq))}
	for o, r := range s.sum.maxReq {
		ck.sum.maxReq[o] = r
	}
	for ch, l := range s.byChannel {
		ck.channels[ch] = seqList{sealed: l.sealed[:len(l.sealed):len(l.sealed)], open: slices.Clone(l.open), n: l.n}
	}
	return ck
}

// encode serialises ck; it reads the record at upto for its hash.
func (s *Store) encodeCheckpoint(ck *checkpoint) ([]byte, error) {
	rec, err := s.log.Read(ck.upto)
	if err != nil {
		return nil, err
	}
	b := []byte(indexMagic)
	u := func(v uint64) { b = binary.AppendUvarint(b, v) }
	u(ck.upto)
	u(ck.first)
	u(uint64(crc32.Checksum(rec, castagnoli)))
	u(uint64(len(ck.runs)))
	for _, r := range ck.runs {
		u(r.index)
		u(r.seq)
	}
	origins := make([]consensus.NodeID, 0, len(ck.sum.maxReq))
	for o := range ck.sum.maxReq {
		origins = append(origins, o)
	}
	slices.Sort(origins)
	u(uint64(len(origins)))
	for _, o := range origins {
		u(uint64(o))
		u(ck.sum.maxReq[o])
	}
	u(uint64(len(ck.sum.membership)))
	for _, i := range ck.sum.membership {
		u(i)
	}
	u(uint64(len(ck.sum.terms)))
	for _, t := range ck.sum.terms {
		u(t.Index)
		u(t.Term)
	}
	u(uint64(len(ck.corrupt)))
	for _, i := range ck.corrupt {
		u(i)
	}
	names := make([]string, 0, len(ck.channels))
	for ch := range ck.channels {
		names = append(names, ch)
	}
	slices.Sort(names)
	u(uint64(len(names)))
	for _, ch := range names {
		u(uint64(len(ch)))
		b = append(b, ch...)
		l := ck.channels[ch]
		b = appendSeqList(b, l.sealed, l.open)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

var errBadCheckpoint = errors.New("index checkpoint is damaged")

func decodeCheckpoint(b []byte) (*checkpoint, error) {
	if len(b) < len(indexMagic)+4 || !bytes.HasPrefix(b, []byte(indexMagic)) {
		return nil, errBadCheckpoint
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errBadCheckpoint
	}
	d := &decoder{b: body[len(indexMagic):]}
	ck := &checkpoint{upto: d.uvarint(), first: d.uvarint(), recHash: uint32(d.uvarint())}
	for n := d.count(2); n > 0 && d.err == nil; n-- {
		ck.runs = append(ck.runs, seqRun{d.uvarint(), d.uvarint()})
	}
	ck.sum.upto = ck.upto
	ck.sum.maxReq = map[consensus.NodeID]uint64{}
	for n := d.count(2); n > 0 && d.err == nil; n-- {
		o := consensus.NodeID(d.uvarint())
		ck.sum.maxReq[o] = d.uvarint()
	}
	for n := d.count(1); n > 0 && d.err == nil; n-- {
		ck.sum.membership = append(ck.sum.membership, d.uvarint())
	}
	for n := d.count(2); n > 0 && d.err == nil; n-- {
		ck.sum.terms = append(ck.sum.terms, consensus.TermStart{Index: d.uvarint(), Term: d.uvarint()})
	}
	for n := d.count(1); n > 0 && d.err == nil; n-- {
		ck.corrupt = append(ck.corrupt, d.uvarint())
	}
	n := d.count(2)
	ck.channels = make(map[string]seqList, n)
	for ; n > 0 && d.err == nil; n-- {
		name := string(d.bytes(d.count(1)))
		ck.channels[name] = readSeqList(d)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return ck, nil
}

// decoder reads uvarints, failing (sticky) on anything malformed.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errBadCheckpoint
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items each at least min bytes long, refusing
// one the rest of the input cannot hold (no huge allocation from a bad
// count).
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)) || (min > 0 && v*uint64(min) > uint64(len(d.b))) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail()
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// restoreCheckpoint loads the saved checkpoint into an empty store if it
// describes this log (see above), and returns the index it covers up to
// (0: none usable, scan everything).
func (s *Store) restoreCheckpoint() uint64 {
	if s.ck == nil {
		return 0
	}
	b, err := s.ck.LoadIndex()
	if err != nil || len(b) == 0 {
		return 0
	}
	ck, err := decodeCheckpoint(b)
	if err != nil {
		return 0
	}
	first, last := s.log.FirstIndex(), s.log.LastIndex()
	if ck.upto < first || ck.upto > last || ck.first > first {
		return 0
	}
	rec, err := s.log.Read(ck.upto)
	if err != nil || crc32.Checksum(rec, castagnoli) != ck.recHash {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs, s.sum, s.corrupt = ck.runs, ck.sum, ck.corrupt
	for ch, l := range ck.channels {
		l := l
		s.byChannel[ch] = &l
	}
	if first > ck.first {
		s.trimBefore(first) // retention ran after the checkpoint was saved
	}
	s.indexed, s.ckUpto = ck.upto, ck.upto
	return ck.upto
}

// trimBefore forgets index entries for the messages before log index
// first (s.mu held).
func (s *Store) trimBefore(first uint64) {
	firstSeq := s.runs.seq(first)
	if e, ok := s.cache.get(first); ok && e.Type != consensus.EntryNormal {
		firstSeq++ // (a membership entry: its Seq is the message before it)
	}
	for ch, l := range s.byChannel {
		l.trimFront(firstSeq)
		if l.n == 0 {
			delete(s.byChannel, ch)
		}
	}
	k, _ := slices.BinarySearch(s.corrupt, first)
	s.corrupt = s.corrupt[k:]
	k, _ = slices.BinarySearch(s.sum.membership, first)
	s.sum.membership = s.sum.membership[k:]
	t := s.sum.terms
	for len(t) > 1 && t[1].Index <= first {
		t = t[1:]
	}
	if len(t) > 0 && t[0].Index < first {
		t[0].Index = first
	}
	s.sum.terms = t
}

// saveCheckpoint writes ck (errors are only logged by callers: a missing
// checkpoint costs a slower start, nothing else).
func (s *Store) saveCheckpoint(ck *checkpoint) error {
	b, err := s.encodeCheckpoint(ck)
	if err != nil {
		return err
	}
	return s.ck.SaveIndex(b)
}

// maybeCheckpoint starts a background checkpoint when CheckpointEvery
// entries were applied since the last (s.mu held).
func (s *Store) maybeCheckpoint() {
	if s.ck == nil || s.ckBusy || s.closed || s.verify.damaged || s.applied < s.ckUpto+s.ckEvery || s.applied < s.indexed || s.applied < s.log.FirstIndex() {
		return
	}
	ck := s.snapshot()
	if s.ckInline {
		if s.saveCheckpoint(ck) == nil {
			s.ckUpto = ck.upto
		}
		return
	}
	s.ckBusy = true
	s.ckWG.Add(1)
	go func() {
		defer s.ckWG.Done()
		err := s.saveCheckpoint(ck)
		s.mu.Lock()
		s.ckBusy = false
		if err == nil && ck.upto > s.ckUpto {
			s.ckUpto = ck.upto
		}
		s.mu.Unlock()
	}()
}

// SaveIndex implements Checkpoints: IndexFile, replaced atomically.
func (d DirDisk) SaveIndex(b []byte) error {
	path := filepath.Join(string(d), IndexFile)
	if b == nil {
		err := os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return wal.ReplaceFile(path, b)
}

// LoadIndex implements Checkpoints.
func (d DirDisk) LoadIndex() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(string(d), IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if len(b) > maxCheckpointLen {
		return nil, errBadCheckpoint
	}
	return b, err
}
