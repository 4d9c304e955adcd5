//go:build race

package testkit

// Race reports whether the race detector is on. It slows code down
// several times (and the child ordo processes are built with it too), so
// timeouts are multiplied by raceScale.
const Race = true

const raceScale = 3
