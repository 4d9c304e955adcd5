// Package terminal runs ordo's chat terminals: a conversation that
// scrolls, a status bar and an input line, full-screen (RunTUI, with
// bubbletea) or as plain lines on stdout and stdin for scripts
// (RunHeadless). What the terminal does is an App's business (package
// chat): the terminal only shows what the App prints and hands it what
// the person types.
//
// Promises:
//   - Output is safe for any goroutine and never blocks on the screen:
//     lines are queued and shown in batches (a frame at most every
//     FrameInterval), so a thousand messages a second neither freeze the
//     screen nor slow the App; when the queue outgrows the scrollback the
//     oldest queued lines are dropped, as scrolling would drop them.
//   - Typed lines reach App.Input one at a time, in the order typed: a
//     line published before another is sequenced before it.
//   - Incoming lines never overwrite the input line: it is drawn last,
//     below the conversation and the status bar.
package terminal

import (
	"context"
	"strconv"
	"time"
)

// Kind is what a printed line is, for its colour on screen.
type Kind int

const (
	Message Kind = iota // a message of the conversation
	Event               // something that happened: an election, a reconnection
	Notice              // output of a command
	Problem             // an error the person should read
)

// Output is where an App shows things. Every method is safe for
// concurrent use and returns at once.
type Output interface {
	// Print adds one line to the conversation.
	Print(k Kind, line string)
	// SetStatus replaces the status bar (a headless terminal has none).
	SetStatus(s string)
	// Quit ends the terminal once what was printed so far is shown.
	Quit()
}

// App is what runs in a terminal.
type App interface {
	// Run does the App's background work (following the conversation,
	// refreshing the status bar) until ctx ends.
	Run(ctx context.Context, out Output)
	// Input handles one line the person typed. Calls come one at a time,
	// in the order the lines were typed; ctx ends when the terminal does.
	Input(ctx context.Context, line string, out Output)
}

// Scrollback is how many lines the conversation keeps.
const Scrollback = 5000

// FrameInterval is the shortest time between two screen updates.
const FrameInterval = 30 * time.Millisecond

// inputQueue is how many typed lines may wait for the App.
const inputQueue = 1024

// Printable keeps text on one line of a terminal: control characters (a
// newline, an escape sequence that would move the cursor or recolour the
// screen) are shown quoted, Go-style, rather than obeyed.
func Printable(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// runInputs hands lines to app.Input one at a time until ctx ends or
// lines is closed.
func runInputs(ctx context.Context, app App, lines <-chan string, out Output) {
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-lines:
			if !ok {
				return
			}
			app.Input(ctx, l, out)
		}
	}
}
