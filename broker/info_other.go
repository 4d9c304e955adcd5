//go:build !unix

package broker

func cpuTimes() (self, children [4]int64) { return }
func residentBytes() uint64               { return 0 }
func totalSystemMemory() uint64           { return 0 }
