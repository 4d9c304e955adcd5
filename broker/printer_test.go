package broker

import (
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// print_channels: the node's terminal shows its channels' conversation,
// in order, one line per message, and nothing of other channels.
func TestPrintChannelsShowsTheConversation(t *testing.T) {
	out := &testkit.Buffer{}
	s := startServer(t, func(c *Config) { c.PrintChannels, c.PrintTo = []string{"chat"}, out })
	c := testkit.Dial(t, s.Addr().String())
	c.Do("CLIENT", "SETNAME", "client_101")
	for _, args := range [][]string{{"chat", "Hello from node 1!"}, {"other", "not shown"}, {"chat", "two\nlines\x1b[2J"}} {
		if v := c.Do("PUBLISH", args[0], args[1]); v.Err() != nil {
			t.Fatal(v)
		}
	}
	want := "[seq=1] client_101: Hello from node 1!\n[seq=3] client_101: two\\nlines\\x1b[2J\n"
	testkit.Eventually(t, 5*time.Second, func() bool { return out.String() == want },
		"printed %q, want %q", out.String(), want)
}
