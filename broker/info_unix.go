//go:build unix

package broker

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// cpuTimes is getrusage's system and user time (seconds, microseconds)
// of the process and of its children.
func cpuTimes() (self, children [4]int64) {
	get := func(who int) (r [4]int64) {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			r = [4]int64{int64(ru.Stime.Sec), int64(ru.Stime.Usec), int64(ru.Utime.Sec), int64(ru.Utime.Usec)}
		}
		return r
	}
	return get(syscall.RUSAGE_SELF), get(syscall.RUSAGE_CHILDREN)
}

// residentBytes is the process's resident set size (Linux; 0 elsewhere).
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// totalSystemMemory is the machine's memory (Linux; 0 elsewhere).
func totalSystemMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
