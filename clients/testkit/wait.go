package testkit

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ScaleEnv names the environment variable that multiplies every timeout
// (a float, e.g. 2.5) on machines slower than a developer's.
const ScaleEnv = "ORDO_TEST_TIMEOUT_SCALE"

var envScale = sync.OnceValue(func() float64 {
	s := os.Getenv(ScaleEnv)
	if s == "" {
		return 1
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		// A typo must not silently run with the wrong timeouts.
		panic(fmt.Sprintf("testkit: %s=%q is not a positive number", ScaleEnv, s))
	}
	return f
})

// Scale returns d multiplied for this run: by 3 under -race, and by
// ORDO_TEST_TIMEOUT_SCALE if set.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * raceScale * envScale())
}

// Eventually polls cond until it returns true, and fails the test with
// the formatted message if it has not within Scale(timeout). It must be
// called from the test's goroutine. Polling starts at 2ms and backs off
// to 50ms: quick when the condition is already near, cheap when not.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf(format+" (%v)", append(args, err)...)
	}
}

// poll is Eventually without a test: it returns an error on timeout.
func poll(timeout time.Duration, cond func() bool) error {
	limit := Scale(timeout)
	deadline := time.Now().Add(limit)
	wait := 2 * time.Millisecond
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %s", limit)
		}
		time.Sleep(wait)
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// EventuallyNoError polls f until it returns nil, and fails the test
// with the message and f's last error if it has not within
// Scale(timeout): the failure then says what was still wrong.
func EventuallyNoError(t testing.TB, timeout time.Duration, f func() error, format string, args ...any) {
	t.Helper()
	var last error
	if err := poll(timeout, func() bool { last = f(); return last == nil }); err != nil {
		t.Fatalf(format+": %v (%v)", append(args, last, err)...)
	}
}

// Buffer is a bytes.Buffer safe for concurrent writers and readers: a log
// or output destination that a test reads while a node writes to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
