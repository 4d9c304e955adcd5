package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/bench/suite/scorecard"
)

// header describes the machine and the software measured.
func header(cfg config) scorecard.Header {
	h := scorecard.Header{
		Started:   time.Now(),
		Machine:   machine(),
		LoadStart: loadAvg(),
		Runs:      cfg.runs,
		Quick:     cfg.quick,
		Versions:  map[string]string{"go": runtime.Version()},
		Parameters: map[string]string{
			"payload_bytes":      fmt.Sprint(cfg.size),
			"requests_P16":       fmt.Sprint(cfg.requests),
			"requests_P1":        fmt.Sprint(cfg.requestsP1),
			"fanout_subscribers": fmt.Sprint(cfg.fanoutSubs),
			"fanout_duration":    cfg.fanoutDur.String(),
			"latency_rate":       fmt.Sprint(cfg.latencyRate),
			"latency_duration":   cfg.latencyDur.String(),
			"catchup_messages":   fmt.Sprint(cfg.catchup),
			"restart_messages":   fmt.Sprint(cfg.restart),
			"xrange_entries":     fmt.Sprint(cfg.xrangeEntries),
		},
	}
	version := func(name string, args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).Output(); err == nil {
			h.Versions[name] = strings.TrimSpace(string(out))
		}
	}
	version("ordo", cfg.ordoBin, "version")
	// The binary names its commit only when built with VCS stamping; the
	// checkout the suite runs from is the next best thing.
	version("checkout", "git", "describe", "--always", "--dirty")
	version("redis-server", cfg.redisBin, "--version")
	if cfg.natsBin != "" {
		version("nats-server", cfg.natsBin, "--version")
	}
	for k, v := range h.Versions {
		// "Redis server v=7.0.15 sha=..." -> "7.0.15"
		if i := strings.Index(v, "v="); i >= 0 {
			v = strings.Fields(v[i+2:])[0]
		}
		h.Versions[k] = strings.TrimPrefix(strings.TrimPrefix(v, "nats-server: "), "ordo ")
	}
	return h
}

// machine is "N cores, CPU model, M GB RAM" from /proc.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.1f GB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores, %s%s", runtime.NumCPU(), model, mem)
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
