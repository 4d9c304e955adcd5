package main

import (
	"strconv"
	"testing"

	"github.com/ordo-broker/ordo/clients/testkit"
)

// The tests in this package run the real ordo binary, built once by the
// test kit, as processes: kill -9, SIGSTOP and restarts are the real
// thing, and so are flags, environment and exit codes.
func TestMain(m *testing.M) { testkit.Main(m, testkit.WithOrdo()) }

// startOrdo runs `ordo args...` with extra environment and, if port is
// not 0, waits until it accepts connections there.
func startOrdo(t *testing.T, port int, env []string, args ...string) *testkit.Proc {
	t.Helper()
	return testkit.StartOrdo(t, testkit.ProcConfig{Args: args, Env: env, Port: port})
}

func nodeArgs(port int, dir string, extra ...string) []string {
	return append([]string{"node", "--port", strconv.Itoa(port), "--data-dir", dir}, extra...)
}

// history returns a channel's log on the node at addr, via XRANGE.
func history(t *testing.T, addr, channel string) testkit.History {
	t.Helper()
	h, err := testkit.ReadHistory(addr, channel)
	if err != nil {
		t.Fatalf("XRANGE %s on %s: %v", channel, addr, err)
	}
	return h
}
