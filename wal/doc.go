// Package wal is ordo's write-ahead log: an append-only sequence of records
// addressed by a dense, increasing index (the broker's global sequence
// number). It serves crash recovery and follower catch-up.
//
// Segment management (files, cycling, truncation) is github.com/tidwall/wal.
// This package adds what that library lacks: a checksum per record, repair
// of a torn tail on Open, directory fsyncs, logs that start at any index,
// a sticky failure state, serialised reads, and retention.
//
// # Record format
//
// Each entry handed to tidwall/wal (which frames it on disk as a uvarint
// length followed by the bytes) is one record:
//
//	+----------------+-------------+----------------------+
//	| CRC32C         | Version     | Payload              |
//	| 4 bytes, LE    | 1 byte (=1) | len(frame)-5 bytes   |
//	+----------------+-------------+----------------------+
//
// The CRC is CRC-32C (Castagnoli) over the record's index as 8 big-endian
// bytes (not stored) followed by every byte after the CRC field (Version and
// Payload). Seeding the checksum with the index means a record that is read
// back at the wrong position — a damaged length prefix that shifts the
// framing, a misnamed segment file — fails its check instead of returning
// some other message. The version byte is never zero, so a run of zero bytes
// (a page the disk never wrote) can not pass as a record.
//
// # What the log promises
//
//   - Append returns only after the records, and any segment file created for
//     them, are durable (file fsync, then directory fsync), unless
//     Options.NoSync is set; then Sync makes everything appended so far
//     durable.
//   - Read and Scan never return a record that fails its checksum: they
//     return a *CorruptError (which matches ErrCorrupt) naming the index.
//   - Open repairs only the tail: the last segment file is cut after its last
//     valid record, and the cut is reported by Repaired. Damage anywhere else
//     is left in place for Verify to find; the caller decides (the cluster
//     layer truncates back to before it and refetches from peers).
//   - After any failed write, fsync or file operation the log is failed:
//     every later call except Close, FirstIndex, LastIndex, Size and Repaired
//     returns an error matching ErrFailed (reads too: tidwall's memory may no
//     longer match the files). Close and Open the log again to recover; Open
//     repairs whatever the failure left behind.
//   - The first index survives restart: TruncateFront, ApplyRetention and
//     Reset are persisted before they return.
//   - Inspect reads a log directory without opening it: it verifies every
//     record, goes on past damage and changes nothing (no repair), for
//     looking at a stopped node's log.
//
// All methods are safe for concurrent use. One mutex serialises them (tidwall
// reads of old segments are not safe concurrently, upstream issue #34), so a
// Read waits for an Append's fsync; serve live subscribers from memory and
// read the log to catch up.
package wal
