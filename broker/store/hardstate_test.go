package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-broker/ordo/consensus"
)

func sampleState() DiskState {
	return DiskState{Term: 17, Vote: 3, AcceptedTerm: 17, Commit: 1234, Acked: 1240, AckedTerm: 17, AckedTermStart: 1200,
		ClusterID: "c-1", Conf: &consensus.ConfState{Voters: []consensus.NodeID{1, 2, 3}, Addrs: map[consensus.NodeID]string{1: "a:1", 2: "b:2"}}}
}

// damage replaces the first occurrence of old in the file (it must exist).
func damage(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q: %s", path, old, b)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sameState(a, b DiskState) bool {
	a.CRC, b.CRC, a.Repaired, b.Repaired = 0, 0, "", ""
	x, _ := stateCRC(a)
	y, _ := stateCRC(b)
	return x == y
}

// One damaged copy, whichever it is and however it is damaged (a digit
// that still parses as JSON, broken syntax), is read from the other and
// rewritten; ReadState reports it without rewriting.
func TestStateCopyRepairsOneDamagedFile(t *testing.T) {
	for _, tc := range []struct{ file, old, new string }{
		{StateFile, `"term":17`, `"term":13`}, // a flipped bit in a digit: valid JSON
		{StateFile, `"vote":3`, `"vote":2`},   // the vote itself
		{StateCopyFile, `"commit":1234`, `"commit":1235`},
		{StateFile, `{"term"`, `{"te\x00m"`},            // unknown key: the term reads as 0
		{StateCopyFile, `"cluster_id"`, `"cluster_id}`}, // broken syntax
	} {
		dir := t.TempDir()
		want := sampleState()
		if err := saveState(dir, want, true); err != nil {
			t.Fatal(err)
		}
		damage(t, filepath.Join(dir, tc.file), tc.old, tc.new)
		ro, err := ReadState(dir)
		if err != nil || !sameState(ro, want) || !strings.Contains(ro.Repaired, tc.file) {
			t.Fatalf("%s %q: ReadState = %+v, %v; want the saved state and the damage named", tc.file, tc.new, ro, err)
		}
		if _, err := readStateFile(filepath.Join(dir, tc.file)); err == nil {
			t.Fatalf("ReadState rewrote %s", tc.file)
		}
		got, err := loadState(dir, false)
		if err != nil || !sameState(got, want) || !strings.Contains(got.Repaired, tc.file) {
			t.Fatalf("%s %q: loadState = %+v, %v", tc.file, tc.new, got, err)
		}
		again, err := loadState(dir, false)
		if err != nil || again.Repaired != "" || !sameState(again, want) {
			t.Fatalf("after the repair: %+v, %v; want both copies intact", again, err)
		}
	}
}

func TestStateBothCopiesDamagedIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := saveState(dir, sampleState(), true); err != nil {
		t.Fatal(err)
	}
	damage(t, filepath.Join(dir, StateFile), `"term":17`, `"term":19`)
	damage(t, filepath.Join(dir, StateCopyFile), `"vote":3`, `"vote":1`)
	_, err := loadState(dir, false)
	if err == nil || !strings.Contains(err.Error(), "both copies") || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("loadState = %v, want both copies named damaged", err)
	}
}

// A state file written before the checksum and the copy (an upgrade)
// still loads; the next save writes both with checksums.
func TestStateFileWithoutChecksumLoads(t *testing.T) {
	dir := t.TempDir()
	legacy := `{"term":5,"vote":2,"accepted_term":5,"commit":99,"acked_prev":[{"Start":0,"Term":0},{"Start":0,"Term":0},{"Start":0,"Term":0}],"cluster_id":"old"}`
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	hs, err := loadState(dir, false)
	if err != nil || hs.Term != 5 || hs.Vote != 2 || hs.Commit != 99 || hs.ClusterID != "old" || hs.Repaired != "" {
		t.Fatalf("legacy state: %+v, %v", hs, err)
	}
	if err := saveState(dir, hs, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{StateFile, StateCopyFile} {
		if got, err := readStateFile(filepath.Join(dir, f)); err != nil || got.CRC == 0 || got.Term != 5 {
			t.Fatalf("%s after saving: %+v, %v", f, got, err)
		}
	}
}

// StateFile is written first, so when both are intact and differ (a
// crash between the two writes) it is the newer one.
func TestStateFilePreferredWhenBothIntact(t *testing.T) {
	dir := t.TempDir()
	old := sampleState()
	if err := saveState(dir, old, true); err != nil {
		t.Fatal(err)
	}
	newer := old
	newer.Term, newer.Vote = 18, 2
	sum, _ := stateCRC(newer)
	newer.CRC = sum
	b, _ := json.Marshal(newer)
	if err := replaceStateFile(dir, StateFile, b, true); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir, false)
	if err != nil || got.Term != 18 || got.Vote != 2 {
		t.Fatalf("loadState = %+v, %v; want term 18 vote 2 from %s", got, err, StateFile)
	}
}

// An Acked rise is the acked mark alone (the state file is not
// rewritten); loading returns it; a damaged mark falls back to the state
// file's acked fields, which SaveState keeps no newer than the mark.
func TestAckedMark(t *testing.T) {
	dir := t.TempDir()
	d := DirDisk(dir)
	hs := sampleState()
	if err := d.SaveState(hs, true); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, StateFile))
	rise := AckedMark{Acked: 1300, AckedTerm: 18, AckedTermStart: 1290, AckedPrev: [3]consensus.TermRun{{Start: 1200, Term: 17}}}
	if err := d.SaveAcked(rise); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, StateFile)); !bytes.Equal(before, after) {
		t.Fatal("SaveAcked rewrote the state file")
	}
	got, err := d.LoadState()
	if err != nil || got.Mark() != rise || got.Term != hs.Term || got.Vote != hs.Vote {
		t.Fatalf("LoadState = %+v, %v; want the state with the mark %+v", got, err, rise)
	}
	if ro, err := ReadState(dir); err != nil || ro.Mark() != rise {
		t.Fatalf("ReadState = %+v, %v", ro, err)
	}
	// A fall goes through SaveState, which rewrites the mark too.
	fall := hs
	fall.Acked, fall.AckedTerm = 1250, 17
	if err := d.SaveState(fall, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.LoadState(); got.Acked != 1250 {
		t.Fatalf("after a synced fall: acked %d, want 1250", got.Acked)
	}
	damage(t, filepath.Join(dir, AckedFile), ackedMagic, "ORDOACK9")
	if got, err := d.LoadState(); err != nil || got.Acked != 1250 || got.AckedTerm != 17 {
		t.Fatalf("damaged mark: %+v, %v; want the state file's acked 1250", got, err)
	}
}
