package terminal

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/ordo-broker/ordo/clients/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"Hello from peer 2!":  "Hello from peer 2!",
		"two\nlines":          `two\nlines`,
		"\x1b[2Jcleared":      `\x1b[2Jcleared`,
		"héllo ✓":             "héllo ✓",
		"c1 \u009b control":   `c1 \u009b control`,
		"tab\tand del\x7fend": `tab\tand del\x7fend`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// Lines printed while the screen is busy arrive as one batch, in order;
// a screen far behind gets the newest lines and a count of the dropped.
func TestQueueBatches(t *testing.T) {
	q := newQueue()
	for i := range 3 * Scrollback {
		q.Print(Message, fmt.Sprint(i))
	}
	q.SetStatus("LEADER")
	b := q.take(context.Background())
	if len(b.lines)+b.dropped != 3*Scrollback || len(b.lines) > 2*Scrollback || b.status == nil || *b.status != "LEADER" {
		t.Fatalf("batch of %d lines, %d dropped, status %v", len(b.lines), b.dropped, b.status)
	}
	if last := b.lines[len(b.lines)-1].text; last != fmt.Sprint(3*Scrollback-1) {
		t.Fatalf("last line %q", last)
	}
	start := time.Now()
	q.Print(Event, "next")
	if b := q.take(context.Background()); len(b.lines) != 1 || b.status != nil || time.Since(start) < FrameInterval/2 {
		t.Fatalf("second batch %+v after %s: want one line, no status, a frame later", b, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b := q.take(ctx); !b.quit {
		t.Fatal("take on an ended context must quit")
	}
}

// The input line is the screen's last row, whatever arrives; letters
// the viewport would take as scroll keys go to the input.
func TestInputLineSurvivesFlood(t *testing.T) {
	var submitted []string
	m := newModel(Options{Title: "peer_1"}, newQueue(), context.Background(), func(l string) bool {
		submitted = append(submitted, l)
		return true
	})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 20})
	for _, r := range "jk fb" {
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	var lines []line
	for i := range 1000 {
		lines = append(lines, line{Message, fmt.Sprintf("[seq=%d] peer_2: flood", i+1)})
	}
	m.Update(batch{lines: lines, status: ptr("FOLLOWER | term 2")})
	v := m.View()
	rows := strings.Split(v, "\n")
	if len(rows) != 20 || !strings.HasSuffix(strings.TrimRight(rows[19], " "), "> jk fb") {
		t.Fatalf("%d rows; last %q", len(rows), rows[len(rows)-1])
	}
	if !strings.Contains(rows[17], "[seq=1000]") || !strings.Contains(rows[18], "FOLLOWER | term 2") {
		t.Fatalf("newest line and status bar not above the input:\n%s", v)
	}
	m.Update(tea.KeyMsg{Type: tea.KeyPgUp})
	m.Update(batch{lines: lines[:5]})
	if v := m.View(); !strings.Contains(v, "5 new below") || strings.Contains(v, "[seq=1000]") {
		t.Fatalf("scrolled up: new lines must not move the view, and be counted:\n%s", v)
	}
	m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	if len(submitted) != 1 || submitted[0] != "jk fb" || m.in.Value() != "" {
		t.Fatalf("submitted %q, input now %q", submitted, m.in.Value())
	}
}

func ptr[T any](v T) *T { return &v }

// recorder is an App that records its input and quits on "/quit".
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Run(ctx context.Context, out Output) {
	out.Print(Message, "[seq=1] peer_2: hi")
	<-ctx.Done()
}

func (r *recorder) Input(ctx context.Context, l string, out Output) {
	r.mu.Lock()
	r.lines = append(r.lines, l)
	r.mu.Unlock()
	out.Print(Notice, "got "+l)
	if l == "/quit" {
		out.Quit()
	}
}

// Headless: lines in, in order, one at a time; output as plain lines;
// /quit ends it even though stdin stays open.
func TestHeadless(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	var out strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(b) })
	r := &recorder{}
	done := make(chan error, 1)
	go func() { done <- RunHeadless(context.Background(), r, inR, w) }()
	fmt.Fprint(inW, "one\ntwo\n/quit\n")
	select {
	case <-done:
	case <-time.After(testkit.Scale(10 * time.Second)):
		t.Fatal("RunHeadless did not end after /quit")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"[seq=1] peer_2: hi\n", "got one\ngot two\ngot /quit\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output %q lacks %q", out.String(), want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// Words that name keys ("down", "left"...) and arrive as one burst of
// runes are text, not cursor movement.
func TestInputKeepsKeyNamedWords(t *testing.T) {
	var submitted []string
	m := newModel(Options{Title: "client_1"}, newQueue(), context.Background(), func(l string) bool {
		submitted = append(submitted, l)
		return true
	})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 20})
	const text = "While node_3 is down: up left right home end delete tab backspace ctrl+a"
	for i, w := range strings.Split(text, " ") {
		if i > 0 {
			m.Update(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
		}
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(w)})
	}
	m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	if len(submitted) != 1 || submitted[0] != text {
		t.Fatalf("submitted %q, want %q", submitted, text)
	}
}
