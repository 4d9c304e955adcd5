package clients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-broker/ordo/clients/testkit"
	"github.com/redis/rueidis"
)

// rueidis with its default options: it connects with HELLO 3 and CLIENT
// TRACKING ON OPTIN (client-side caching), which ordo accepts as Redis
// does; pub/sub then works on channels, patterns and shard channels.
func TestRueidisDefaultOptions(t *testing.T) {
	addr, _ := startNode(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatalf("rueidis connect: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name      string
		subscribe rueidis.Completed
		publish   func(i int) rueidis.Completed
		numsub    func() rueidis.Completed // (a rueidis command is sent once)
	}{
		{"channel", client.B().Subscribe().Channel("news").Build(),
			func(i int) rueidis.Completed {
				return client.B().Publish().Channel("news").Message(fmt.Sprint(i)).Build()
			},
			func() rueidis.Completed { return client.B().PubsubNumsub().Channel("news").Build() }},
		{"pattern", client.B().Psubscribe().Pattern("n*").Build(),
			func(i int) rueidis.Completed {
				return client.B().Publish().Channel("nx").Message(fmt.Sprint(i)).Build()
			},
			func() rueidis.Completed { return client.B().PubsubNumpat().Build() }},
		{"shard", client.B().Ssubscribe().Channel("s").Build(),
			func(i int) rueidis.Completed {
				return client.B().Spublish().Channel("s").Message(fmt.Sprint(i)).Build()
			},
			func() rueidis.Completed { return client.B().PubsubShardnumsub().Channel("s").Build() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subCtx, stop := context.WithCancel(ctx)
			got := make(chan string, 10)
			done := make(chan error, 1)
			go func() {
				done <- client.Receive(subCtx, tc.subscribe, func(m rueidis.PubSubMessage) { got <- m.Message })
			}()
			testkit.EventuallyNoError(t, 10*time.Second, func() error {
				v, err := client.Do(ctx, tc.numsub()).ToAny()
				if err != nil {
					return err
				}
				if !subscribed(v) {
					return fmt.Errorf("not subscribed yet: %v", v)
				}
				return nil
			}, "rueidis %s subscription not active", tc.name)
			for i := 0; i < 3; i++ {
				if err := client.Do(ctx, tc.publish(i)).Error(); err != nil {
					t.Fatalf("publish: %v", err)
				}
			}
			for i := 0; i < 3; i++ {
				select {
				case m := <-got:
					if m != fmt.Sprint(i) {
						t.Fatalf("message %d: %q", i, m)
					}
				case <-ctx.Done():
					t.Fatalf("message %d not received", i)
				}
			}
			stop()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("Receive did not return after its context ended")
			}
		})
	}
	// The connection kept working after the tracking handshake.
	if v, err := client.Do(ctx, client.B().Ping().Build()).ToString(); err != nil || v != "PONG" {
		t.Fatalf("PING: %q %v", v, err)
	}
}

// subscribed reads a NUMPAT, NUMSUB or SHARDNUMSUB reply as rueidis gives
// it (a count, a map, or a flat [channel count] array, whichever the
// protocol produced) and says whether it counts a subscriber.
func subscribed(v any) bool {
	switch v := v.(type) {
	case int64:
		return v > 0
	case map[string]any:
		for _, n := range v {
			if n.(int64) == 0 {
				return false
			}
		}
		return len(v) > 0
	case []any:
		for i := 1; i < len(v); i += 2 {
			if v[i].(int64) == 0 {
				return false
			}
		}
		return len(v) > 0
	}
	return false
}
