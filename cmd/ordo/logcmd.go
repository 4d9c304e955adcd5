package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/ordo-broker/ordo/broker/store"
	"github.com/ordo-broker/ordo/consensus"
	"github.com/ordo-broker/ordo/wal"
	"github.com/urfave/cli/v2"
)

// Exit codes of `ordo log` beyond 0 (clean), 1 (could not read the
// directory) and 2 (usage): everything readable was printed, but some
// record is damaged (a script must not take the output as the whole log).
const exitDamaged = 3

// logCommand is `ordo log`: a stopped node's data directory, read without
// changing it — the stored messages, the membership and the hard state —
// with every record's checksum verified. It replaces looking at the files
// (the guide's `alpine ls` of the volume) with looking at their meaning,
// and works in the image, which has nothing but the binary.
func logCommand() *cli.Command {
	return &cli.Command{
		Name:      "log",
		Usage:     "print a stopped node's stored messages, membership and hard state (checksums verified; changes nothing)",
		ArgsUsage: " ",
		Description: "Reads the data directory of a node that is not running (it refuses one a running node holds).\n" +
			"Exit status: 0 clean, 1 cannot read the directory, 2 bad usage, 3 damaged records found (reported; the rest printed).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the node's data directory (its data_dir option)"},
			&cli.Uint64Flag{Name: "from", Value: 1, Usage: "print messages from this sequence number on"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per line (type: state, message, membership, damaged, unreadable, summary)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return cli.Exit(fmt.Sprintf("ordo log: unexpected argument %q (give the directory with --data-dir)", c.Args().First()), 2)
			}
			if c.String("data-dir") == "" {
				return cli.Exit("ordo log: give the node's data directory with --data-dir DIR", 2)
			}
			w := bufio.NewWriterSize(c.App.Writer, 64<<10)
			var p logPrinter = &textPrinter{w: w}
			if c.Bool("json") {
				p = newJSONPrinter(w)
			}
			sum, err := readLog(c.String("data-dir"), c.Uint64("from"), p)
			if ferr := w.Flush(); err == nil && ferr != nil {
				err = ferr
			}
			if err != nil {
				return cli.Exit("ordo log: "+err.Error(), 1)
			}
			if n := sum.seriousDamage(); n > 0 {
				return cli.Exit(fmt.Sprintf("ordo log: %d damaged record(s) or unreadable stretch(es) in %s (see above); a cluster member refetches them from its peers when it starts, a lone node cannot", n, c.String("data-dir")), exitDamaged)
			}
			return nil
		},
	}
}

// logPrinter renders what readLog finds, as text or JSON lines. The
// printers write to a bufio.Writer and ignore its errors: the first one
// sticks and the final Flush returns it.
type logPrinter interface {
	state(dir string, hs store.DiskState)
	message(e *consensus.Entry, m *store.Message, committed bool)
	membership(e *consensus.Entry, me consensus.MembershipEntry, committed bool)
	damaged(index uint64, reason string)
	lost(e *consensus.Entry)
	unreadable(u wal.Unreadable)
	summary(s *logSummary)
}

// logSummary is what the whole log held.
type logSummary struct {
	in                    wal.Inspection
	commit                uint64
	messages, memberships int
	firstSeq, lastSeq     uint64 // of the messages found (0: none)
	damaged               []uint64
}

// seriousDamage counts damage a node does not simply repair: damaged
// records and unreadable stretches before the torn tail (which a node
// cuts at start, as the remains of a write cut short by a crash).
func (s *logSummary) seriousDamage() int {
	n := 0
	torn := func(i uint64) bool { return s.in.TornFrom != 0 && i >= s.in.TornFrom }
	for _, i := range s.damaged {
		if !torn(i) {
			n++
		}
	}
	for _, u := range s.in.Unreadable {
		if !torn(u.From) {
			n++
		}
	}
	return n
}

// readLog prints the data directory dir: its hard state, then every
// record with a message of seq >= from (membership entries and damage
// always), then a summary. It refuses a directory a running node holds.
func readLog(dir string, from uint64, p logPrinter) (*logSummary, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%v (give the node's data_dir, e.g. --data-dir data/node1)", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (give the node's data_dir)", dir)
	}
	disk := store.DirDisk(dir)
	// Checked before taking the lock, which would create a LOCK file in
	// whatever directory a typo named.
	if disk.Empty() {
		return nil, fmt.Errorf("%s holds no ordo data (no %s, no log segment): is it the node's data_dir?", dir, store.StateFile)
	}
	lock, err := disk.Lock()
	if errors.Is(err, store.ErrInUse) {
		return nil, fmt.Errorf("%s is in use by a running ordo node: stop the node first (ordo log reads only a stopped node's data; while it runs, ask it: STATUS, CLUSTER MEMBERS, XRANGE)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot take the lock of %s, which proves no node is running there: %v (it needs write access to %s/LOCK)", dir, err, dir)
	}
	defer lock.Close()
	hs, err := store.ReadState(dir)
	if err != nil {
		return nil, err
	}
	p.state(dir, hs)

	sum := &logSummary{commit: hs.Commit}
	sum.in, err = wal.Inspect(dir, func(index uint64, rec []byte, bad *wal.CorruptError) error {
		if bad != nil {
			sum.damaged = append(sum.damaged, index)
			p.damaged(index, bad.Error())
			return nil
		}
		e, err := store.DecodeEntry(index, rec)
		committed := index <= hs.Commit
		switch {
		case err != nil:
			// The checksum held, so this is not disk damage but a record
			// this version cannot parse: report it all the same.
			sum.damaged = append(sum.damaged, index)
			p.damaged(index, fmt.Sprintf("record does not parse: %v", err))
		case e.Type == consensus.EntryNormal:
			m, err := store.EntryMessage(&e)
			if err != nil {
				sum.damaged = append(sum.damaged, index)
				p.damaged(index, fmt.Sprintf("message does not parse: %v", err))
				return nil
			}
			sum.messages++
			if sum.firstSeq == 0 {
				sum.firstSeq = m.Seq
			}
			sum.lastSeq = m.Seq
			if m.Seq >= from {
				p.message(&e, m, committed)
			}
		case e.Type == consensus.EntryMembership:
			me, err := consensus.DecodeMembership(e.Data)
			if err != nil {
				sum.damaged = append(sum.damaged, index)
				p.damaged(index, fmt.Sprintf("membership entry does not parse: %v", err))
				return nil
			}
			sum.memberships++
			p.membership(&e, me, committed)
		case e.Type == consensus.EntryLost:
			if e.Seq >= from {
				p.lost(&e)
			}
		default:
			sum.damaged = append(sum.damaged, index)
			p.damaged(index, fmt.Sprintf("unknown entry type %d", e.Type))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the log in %s: %v", dir, err)
	}
	for _, u := range sum.in.Unreadable {
		p.unreadable(u)
	}
	p.summary(sum)
	return sum, nil
}
