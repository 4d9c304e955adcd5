package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// Options adjust the full-screen terminal.
type Options struct {
	// Title opens the status bar ("peer_2", "client_101").
	Title string
	// In and Out default to the process's terminal (tests pass pipes).
	In  io.Reader
	Out io.Writer
	// Placeholder is shown in the empty input line.
	Placeholder string
}

var (
	styleEvent   = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	styleNotice  = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
	styleProblem = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	styleBar     = lipgloss.NewStyle().Reverse(true)
)

// RunTUI runs app full-screen until the App calls Quit, the person
// presses Ctrl+C, or ctx ends; then it waits for the App's goroutines to
// return. Ctrl+C only ends the terminal: what it means (a peer stops
// without leaving its cluster) is the caller's business.
func RunTUI(ctx context.Context, app App, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := newQueue()
	lines := make(chan string, inputQueue)
	m := newModel(o, q, ctx, func(l string) bool {
		select {
		case lines <- l:
			return true
		default:
			return false
		}
	})
	opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
	if o.In != nil {
		opts = append(opts, tea.WithInput(o.In))
	}
	if o.Out != nil {
		opts = append(opts, tea.WithOutput(o.Out))
	}
	p := tea.NewProgram(m, opts...)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); app.Run(ctx, q) }()
	go func() { defer wg.Done(); runInputs(ctx, app, lines, q) }()
	_, err := p.Run()
	cancel()
	wg.Wait()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, tea.ErrInterrupted) {
		return nil // ctx ended or a signal: an ordinary way to stop
	}
	return err
}

type model struct {
	title  string
	ctx    context.Context
	q      *queue
	submit func(string) bool
	vp     viewport.Model
	in     textinput.Model
	width  int

	raw     []line   // the conversation, at most Scrollback lines
	wrapped []string // raw[i] wrapped to the width, styled
	content strings.Builder
	status  string
	unseen  int // lines that arrived while the person scrolled up
	dropped int // lines dropped unseen because the screen fell behind
}

func newModel(o Options, q *queue, ctx context.Context, submit func(string) bool) *model {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = o.Placeholder
	in.Focus()
	vp := viewport.New(80, 20)
	// The viewport's default keys include letters (j, k, f, b, u, d, and
	// space) that the person types into the input line: scrolling is
	// wired by hand in Update instead.
	vp.KeyMap = viewport.KeyMap{}
	return &model{title: o.Title, ctx: ctx, q: q, submit: submit, vp: vp, in: in, width: 80}
}

// waitBatch is the command that brings the next batch of output; Update
// issues it again after each one, so exactly one is outstanding.
func (m *model) waitBatch() tea.Cmd {
	return func() tea.Msg { return m.q.take(m.ctx) }
}

func (m *model) Init() tea.Cmd { return tea.Batch(textinput.Blink, m.waitBatch()) }

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case batch:
		return m, m.apply(msg)
	case tea.KeyMsg:
		switch msg.Type {
		case tea.KeyCtrlC:
			return m, tea.Quit
		case tea.KeyEnter:
			l := m.in.Value()
			if strings.TrimSpace(l) == "" {
				return m, nil
			}
			m.in.Reset()
			if !m.submit(l) {
				m.add(line{Problem, "Too many lines waiting to be sent; this one was dropped: " + Printable(l)})
				m.refresh()
			}
			return m, nil
		case tea.KeyPgUp:
			m.vp.PageUp()
			return m, nil
		case tea.KeyPgDown:
			m.vp.PageDown()
			m.seenBottom()
			return m, nil
		case tea.KeyUp:
			m.vp.ScrollUp(1)
			return m, nil
		case tea.KeyDown:
			m.vp.ScrollDown(1)
			m.seenBottom()
			return m, nil
		case tea.KeyCtrlEnd:
			m.vp.GotoBottom()
			m.seenBottom()
			return m, nil
		case tea.KeyCtrlHome:
			m.vp.GotoTop()
			return m, nil
		}
	}
	// Characters that arrive together (typed fast, over a slow link, sent
	// by tmux send-keys) come as one key named by the text, and the input
	// line compares key names with its bindings: a word "down", "up",
	// "left", "right", "home", "end" or "delete" acted as that key and
	// vanished. Text is text: marked pasted, it matches no binding.
	if k, ok := msg.(tea.KeyMsg); ok && k.Type == tea.KeyRunes && len(k.Runes) > 1 && !k.Alt {
		k.Paste = true
		msg = k
	}
	var cmd tea.Cmd
	m.in, cmd = m.in.Update(msg)
	return m, cmd
}

// apply takes a batch of output into the conversation.
func (m *model) apply(b batch) tea.Cmd {
	follow := m.vp.AtBottom()
	for _, l := range b.lines {
		m.add(l)
	}
	m.dropped += b.dropped
	if b.status != nil {
		m.status = *b.status
	}
	if len(b.lines) > 0 {
		m.refresh()
		if follow {
			m.vp.GotoBottom()
		} else {
			m.unseen += len(b.lines)
		}
	}
	if b.quit {
		return tea.Quit
	}
	return m.waitBatch()
}

func (m *model) add(l line) {
	if len(m.raw) == Scrollback {
		// Drop the oldest tenth at once: trimming one line per message
		// would copy the whole scrollback every time.
		n := Scrollback / 10
		m.raw = append(m.raw[:0], m.raw[n:]...)
		m.wrapped = append(m.wrapped[:0], m.wrapped[n:]...)
	}
	m.raw = append(m.raw, l)
	m.wrapped = append(m.wrapped, m.render(l))
}

// render styles a line and wraps it to the screen's width (the viewport
// cuts long lines rather than wrapping them).
func (m *model) render(l line) string {
	s := ansi.Wrap(l.text, max(m.width, 10), "")
	switch l.kind {
	case Event:
		s = styleEvent.Render(s)
	case Notice:
		s = styleNotice.Render(s)
	case Problem:
		s = styleProblem.Render(s)
	}
	return s
}

// refresh hands the conversation to the viewport.
func (m *model) refresh() {
	m.content.Reset()
	for i, w := range m.wrapped {
		if i > 0 {
			m.content.WriteByte('\n')
		}
		m.content.WriteString(w)
	}
	m.vp.SetContent(m.content.String())
}

func (m *model) resize(w, h int) {
	m.width = w
	m.vp.Width = w
	m.vp.Height = max(h-2, 1) // the status bar and the input line below
	m.in.Width = max(w-len(m.in.Prompt)-1, 1)
	for i, l := range m.raw {
		m.wrapped[i] = m.render(l)
	}
	m.refresh()
	m.vp.GotoBottom()
	m.unseen = 0
}

func (m *model) seenBottom() {
	if m.vp.AtBottom() {
		m.unseen = 0
	}
}

func (m *model) View() string {
	bar := m.title
	if m.status != "" {
		bar += " | " + m.status
	}
	if m.unseen > 0 {
		bar += fmt.Sprintf(" | %d new below (PgDn)", m.unseen)
	}
	if m.dropped > 0 {
		bar += fmt.Sprintf(" | %d lines skipped (screen too slow)", m.dropped)
	}
	bar = ansi.Truncate(bar, max(m.width, 1), "…")
	bar = styleBar.Render(bar + strings.Repeat(" ", max(m.width-ansi.StringWidth(bar), 0)))
	return m.vp.View() + "\n" + bar + "\n" + m.in.View()
}
