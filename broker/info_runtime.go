package broker

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
)

// INFO's memory and cpu sections, in Redis's field names, from the Go
// runtime (runtime.MemStats) and getrusage. redis-cli --stat reads
// used_memory from here.

// peakMemory is the highest used_memory INFO has reported.
var peakMemory atomic.Uint64

func memorySection(b *strings.Builder) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	line := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	used := ms.HeapAlloc + ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.BuckHashSys + ms.GCSys + ms.OtherSys
	for {
		p := peakMemory.Load()
		if used <= p || peakMemory.CompareAndSwap(p, used) {
			break
		}
	}
	peak := max(peakMemory.Load(), used)
	rss := residentBytes()
	if rss == 0 {
		rss = ms.Sys - ms.HeapReleased
	}
	b.WriteString("# Memory\r\n")
	line("used_memory", used)
	line("used_memory_human", bytesToHuman(used))
	line("used_memory_rss", rss)
	line("used_memory_rss_human", bytesToHuman(rss))
	line("used_memory_peak", peak)
	line("used_memory_peak_human", bytesToHuman(peak))
	line("used_memory_peak_perc", fmt.Sprintf("%.2f%%", float64(used)*100/float64(peak)))
	line("total_system_memory", totalSystemMemory())
	line("total_system_memory_human", bytesToHuman(totalSystemMemory()))
	line("maxmemory", 0)
	line("maxmemory_human", "0B")
	line("maxmemory_policy", "noeviction")
	line("mem_fragmentation_ratio", fmt.Sprintf("%.2f", float64(rss)/float64(max(used, 1))))
	line("mem_allocator", "go")
	line("ordo_go_heap_alloc", ms.HeapAlloc)
	line("ordo_go_heap_sys", ms.HeapSys)
	line("ordo_go_heap_objects", ms.HeapObjects)
	line("ordo_go_sys", ms.Sys)
	line("ordo_go_gc_cycles", ms.NumGC)
	line("ordo_go_gc_pause_total_us", ms.PauseTotalNs/1000)
	line("ordo_goroutines", runtime.NumGoroutine())
}

// bytesToHuman is Redis's: 1023B, 1.00K, 12.50M, 2.00G ...
func bytesToHuman(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	d := float64(n)
	for _, u := range []string{"K", "M", "G", "T", "P"} {
		d /= 1024
		if d < 1024 || u == "P" {
			return fmt.Sprintf("%.2f%s", d, u)
		}
	}
	return ""
}

func cpuSection(b *strings.Builder) {
	line := func(k string, sec, usec int64) { fmt.Fprintf(b, "%s:%d.%06d\r\n", k, sec, usec) }
	self, children := cpuTimes()
	b.WriteString("# CPU\r\n")
	line("used_cpu_sys", self[0], self[1])
	line("used_cpu_user", self[2], self[3])
	line("used_cpu_sys_children", children[0], children[1])
	line("used_cpu_user_children", children[2], children[3])
}
