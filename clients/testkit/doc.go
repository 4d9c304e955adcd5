// Package testkit is ordo's one test kit: a RESP test connection, a
// polling Eventually, timeouts that scale on slow machines and under the
// race detector, a goroutine-leak check for TestMain, and helpers that run
// the real ordo binary as processes, alone or as a cluster whose peer
// links can be cut.
//
// Rules the kit encodes, so tests don't each reinvent them:
//   - Never sleep and hope: wait on the condition you assert
//     (Eventually, Proc.WaitLog, Cluster.WaitLeader, WaitSameHistory).
//   - Every timeout given to the kit is a base value for an idle machine;
//     the kit multiplies it by Scale, so a loaded or -race run waits
//     longer instead of failing.
//   - Roles come from STATUS: a test asks the kit which node leads and
//     which follow, never assumes an id.
//
// It imports neither broker nor consensus, so their in-package tests can
// use it too.
package testkit
