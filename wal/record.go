package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

var (
	// ErrCorrupt is returned, inside a *CorruptError naming the index, by
	// Read, Scan and Verify when a stored record fails its checksum or its
	// segment can not be parsed. The record is not returned. The log stays
	// usable; TruncateBack to before the index and refill it from a peer.
	ErrCorrupt = errors.New("wal: corrupt record")

	// ErrFailed is returned by Append, Sync, Read, Scan, Verify,
	// TruncateFront, TruncateBack, Reset and ApplyRetention once any write,
	// fsync or file operation of the log has failed. The returned error also
	// wraps the original cause. Nothing is rolled back on disk or in memory,
	// so the log must be closed and opened again.
	ErrFailed = errors.New("wal: log failed, close and reopen it")

	// ErrNotFound is returned by Read and Scan for an index outside
	// [FirstIndex, LastIndex] (including one removed by a truncation while a
	// Scan was running), and by TruncateFront and TruncateBack for an index
	// outside the range they accept.
	ErrNotFound = errors.New("wal: index not in log")

	// ErrOutOfOrder is returned by Append when its first index is not
	// LastIndex()+1. Nothing is written; the log stays usable.
	ErrOutOfOrder = errors.New("wal: append out of order")

	// ErrClosed is returned by every method except FirstIndex, LastIndex,
	// Size and Repaired after Close, a second Close included.
	ErrClosed = errors.New("wal: log closed")
)

// CorruptError reports a record that failed verification. It matches
// ErrCorrupt with errors.Is.
type CorruptError struct {
	Index  uint64 // index of the damaged record
	Reason string // what was wrong, for the log line
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record at index %d: %s", e.Index, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

const (
	recordVersion = 1 // non-zero: zeroed pages never look like a record
	headerLen     = 5 // CRC32C (4) + version (1)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is CRC-32C over the index (8 bytes big-endian) then rest.
func checksum(index uint64, rest []byte) uint32 {
	var ib [8]byte
	binary.BigEndian.PutUint64(ib[:], index)
	return crc32.Update(crc32.Update(0, castagnoli, ib[:]), castagnoli, rest)
}

// appendRecord appends the record for payload stored at index to dst.
func appendRecord(dst []byte, index uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, recordVersion)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start:], checksum(index, dst[start+4:]))
	return dst
}

// decodeRecord verifies rec as the record stored at index and returns its
// payload, which aliases rec.
func decodeRecord(index uint64, rec []byte) ([]byte, error) {
	if len(rec) < headerLen {
		return nil, &CorruptError{index, fmt.Sprintf("record of %d bytes is shorter than its header", len(rec))}
	}
	if rec[4] != recordVersion {
		return nil, &CorruptError{index, fmt.Sprintf("unknown record version %d", rec[4])}
	}
	if got, want := checksum(index, rec[4:]), binary.LittleEndian.Uint32(rec); got != want {
		return nil, &CorruptError{index, fmt.Sprintf("checksum %08x, stored %08x", got, want)}
	}
	return rec[headerLen:], nil
}

// frameLen is the number of bytes tidwall/wal writes for a record of n bytes
// (uvarint length prefix, then the record).
func frameLen(n int) int64 {
	var b [binary.MaxVarintLen64]byte
	return int64(binary.PutUvarint(b[:], uint64(n)) + n)
}

// scanFrames walks the tidwall frames of a segment whose first index is
// first. It returns the offset just past the last frame holding a valid
// record, and how many complete frames follow that offset (all invalid).
// Walking stops at the first frame that can not be parsed: the framing of
// anything after it is unknown.
func scanFrames(data []byte, first uint64) (validEnd int64, invalidAfter int) {
	off, index := 0, first
	for off < len(data) {
		size, n := binary.Uvarint(data[off:])
		if n <= 0 || uint64(len(data)-off-n) < size {
			break
		}
		rec := data[off+n : off+n+int(size)]
		off += n + int(size)
		if _, err := decodeRecord(index, rec); err == nil {
			validEnd, invalidAfter = int64(off), 0
		} else {
			invalidAfter++
		}
		index++
	}
	return validEnd, invalidAfter
}
