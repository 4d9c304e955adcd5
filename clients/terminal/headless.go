package terminal

import (
	"bufio"
	"context"
	"io"
	"sync"
)

// RunHeadless runs app without a screen, for scripts: every line the App
// prints goes to w as it is (no colours, no status bar), and every line
// read from in is typed into it. It returns when the App quits or ctx
// ends. The end of in does not end the terminal (a script may pipe a few
// lines into a node it wants to keep running; it types /quit or sends a
// signal to stop it).
//
// The goroutine reading in is not waited for: a read from a terminal or a
// pipe cannot be interrupted, and the process is about to end anyway.
func RunHeadless(ctx context.Context, app App, in io.Reader, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &lineOutput{w: bufio.NewWriter(w), quit: make(chan struct{})}
	lines := make(chan string, inputQueue)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text(): // blocks while the App is behind: backpressure on the script
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); app.Run(ctx, out) }()
	go func() { defer wg.Done(); runInputs(ctx, app, lines, out) }()
	select {
	case <-ctx.Done():
	case <-out.quit:
	}
	cancel()
	wg.Wait()
	return nil
}

// lineOutput prints lines as they come, one write and flush per line.
type lineOutput struct {
	mu       sync.Mutex
	w        *bufio.Writer
	quitOnce sync.Once
	quit     chan struct{}
}

func (o *lineOutput) Print(_ Kind, line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.WriteString(line)
	o.w.WriteByte('\n')
	o.w.Flush()
}

func (o *lineOutput) SetStatus(string) {}

func (o *lineOutput) Quit() { o.quitOnce.Do(func() { close(o.quit) }) }
