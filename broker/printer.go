package broker

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/ordo-broker/ordo/broker/store"
)

// printer shows a node's conversation on its terminal (print_channels):
// every delivered message of the named channels, in sequence order, as
// the guide's chat lines "[seq=1] client_101: Hello from node 1!". It
// wraps the subscriber registry.
type printer struct {
	next     replica.Applier
	channels map[string]bool
	mu       sync.Mutex
	w        *bufio.Writer
}

func newPrinter(channels []string, w io.Writer, next replica.Applier) *printer {
	if w == nil {
		w = os.Stdout
	}
	p := &printer{next: next, channels: map[string]bool{}, w: bufio.NewWriter(w)}
	for _, ch := range channels {
		p.channels[ch] = true
	}
	return p
}

// Deliver implements replica.Applier.
func (p *printer) Deliver(m *store.Message) int {
	p.print(m)
	return p.next.Deliver(m)
}

// DeliverBatch implements replica.BatchApplier, keeping the wrapped
// registry's batched delivery.
func (p *printer) DeliverBatch(ms []*store.Message, receivers []int) {
	for _, m := range ms {
		p.print(m)
	}
	if ba, ok := p.next.(replica.BatchApplier); ok {
		ba.DeliverBatch(ms, receivers)
		return
	}
	for i, m := range ms {
		receivers[i] = p.next.Deliver(m)
	}
}

func (p *printer) print(m *store.Message) {
	if p.channels[string(m.Channel)] {
		p.mu.Lock()
		b := p.w.AvailableBuffer()
		b = append(b, "[seq="...)
		b = strconv.AppendUint(b, m.Seq, 10)
		b = append(b, "] "...)
		b = append(b, m.Sender...)
		b = append(b, ": "...)
		b = append(b, printable(m.Payload)...)
		b = append(b, '\n')
		p.w.Write(b)
		p.w.Flush() // one line at a time: a person is watching
		p.mu.Unlock()
	}
}

// printable keeps a payload on one line of a terminal: control characters
// (a newline, an escape sequence) are shown quoted rather than obeyed.
func printable(b []byte) []byte {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			q := strconv.Quote(string(b))
			return []byte(q[1 : len(q)-1])
		}
	}
	return b
}
