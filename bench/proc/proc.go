// Package proc holds what the bench programs (bench/attack, bench/xrange)
// need to run a server process and read what it costs: a free loopback
// port, and memory from /proc (Linux only).
package proc

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePort is a loopback port free at the time of the call.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StatusKB reads a "Key: N kB" line of /proc/PID/status (VmRSS, VmHWM).
func StatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}
