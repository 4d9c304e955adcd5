package chat

import (
	"strings"
	"sync"
	"testing"

	"github.com/ordo-broker/ordo/clients/terminal"
	"github.com/ordo-broker/ordo/clients/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type recordOut struct {
	mu    sync.Mutex
	lines []string
}

func (r *recordOut) Print(_ terminal.Kind, l string) {
	r.mu.Lock()
	r.lines = append(r.lines, l)
	r.mu.Unlock()
}
func (r *recordOut) SetStatus(string) {}
func (r *recordOut) Quit()            {}

// The feed keeps the whole log and shows the guide's events, node_N read
// as peer_N, including those logged before a terminal was attached.
func TestLogFeed(t *testing.T) {
	var full strings.Builder
	f := NewLogFeed(&full, "peer_")
	log := "2026-12-02 05:53:04,123 - failure.2 - WARNING - Leader timeout!\n" +
		"2026-12-02 05:53:04,124 - election.2 - INFO - Starting election for term 3\n" +
		"2026-12-02 05:53:04,125 - ordering.2 - INFO - Set last_seq=5, next_expected=6\n" +
		"2026-12-02 05:53:04,126 - node.2 - INFO - New coordinator: node_3, term=3\n"
	f.Write([]byte(log[:70])) // a line may come in pieces
	f.Write([]byte(log[70:]))
	out := &recordOut{}
	f.Attach(out)
	f.Write([]byte("2026-12-02 05:53:05,000 - membership.2 - INFO - Joined cluster ab12 as follower of node_1\n" +
		"2026-12-02 05:53:05,001 - storage.2 - INFO - Loaded 0 messages from log\n" +
		"2026-12-02 05:53:05,002 - peer.2 - ERROR - disk \x1b[31mfull\n"))
	want := []string{
		"* Leader timeout!",
		"* Starting election for term 3",
		"* New coordinator: peer_3, term=3",
		"* Joined cluster ab12 as follower of peer_1",
		`* disk \x1b[31mfull`,
	}
	if strings.Join(out.lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("shown:\n%s\nwant:\n%s", strings.Join(out.lines, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(full.String(), log) || strings.Count(full.String(), "\n") != 7 {
		t.Fatalf("full log:\n%s", full.String())
	}
}

func TestStatusLines(t *testing.T) {
	s := New(Config{Name: "peer_2", Addrs: []string{"127.0.0.1:6002"}, Prefix: "peer_", Leave: func() (string, error) { return "", nil }})
	defer s.fo.Close()
	st := map[string]string{
		"node_id": "2", "role": "follower", "term": "3", "leader_id": "3", "leader_addr": "127.0.0.1:6003",
		"last_seq": "5", "commit_seq": "5", "cluster_id": "ab12", "members": "1,2,3",
		"member_1": "addr=127.0.0.1:6001 role=follower state=unreachable lag=-1",
		"member_2": "addr=127.0.0.1:6002 role=follower state=voter lag=-1",
		"member_3": "addr=127.0.0.1:6003 role=leader state=voter lag=-1",
	}
	got := strings.Join(s.statusLines(st, view{members: members(st), leader: "peer_3", live: true}), "\n")
	for _, want := range []string{
		"Node: peer_2 at 127.0.0.1:6002\nRole: FOLLOWER\nLeader: peer_3 (127.0.0.1:6003)\nTerm: 3\nLast seq: 5 (committed: 5; shown here: 0)",
		"Members (3):\n  peer_1   127.0.0.1:6001        follower unreachable\n  peer_2   127.0.0.1:6002        follower voter        (this node)\n  peer_3",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("/status:\n%s\nlacks:\n%s", got, want)
		}
	}
	if !strings.Contains(got, "(states as the leader peer_3 sees them)") {
		t.Fatalf("/status does not say whose view the states are:\n%s", got)
	}
	if bar := s.statusBar(st, view{members: members(st), live: true}); bar != "FOLLOWER | term 3 | leader peer_3 | 2/3 members up | seq 0" {
		t.Fatalf("status bar %q", bar)
	}
	if bar := s.statusBar(st, view{members: members(st)}); !strings.Contains(bar, "| 3 members |") {
		t.Fatalf("without the leader's view the bar cannot count members up: %q", bar)
	}
}
