package consensus
import ("testing"; "strings")
func TestDbg(t *testing.T) {
	c := newTestCluster(t, 3)
	c.requireLeader(3, 30)
	c.crash(1)
	c.trace = &strings.Builder{}
	defer func() { t.Log(c.trace.String()); t.Log(c.logText()) }()
	for i := 0; i < 1; i++ {
		c.proposeAndCommit(2, 50)
	}
}
