package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard/server"
)

// gcSettings is what tuneGC sets: a GC percent and a soft memory limit in
// bytes, each 0 when Go's own variable (GOGC, GOMEMLIMIT) decides.
type gcSettings struct {
	percent int
	limit   int64
}

// planGC decides the collector's settings. The live heap of a node is small
// against what it allocates per message (tens of MB, against ~23 KB per
// write), so at Go's default of 100% it collected several times a second
// under load, most of each collection's cost going to marking the same
// long-lived actors again; 400% collects a fourth as often
// (BenchmarkInboundCommand: node CPU per write −8 to −32% in four of seven
// pairs, the same in three). The soft limit keeps the larger heap from
// growing past half the memory there is: near it, the collector runs more
// often instead.
func planGC(cfg server.Config, getenv func(string) string, readFile func(string) ([]byte, error)) gcSettings {
	var s gcSettings
	if getenv("GOGC") == "" {
		s.percent = cfg.GCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		s.limit = int64(cfg.MemoryLimitMB) << 20
		if s.limit == 0 {
			s.limit = availableMemory(readFile) / 2
		}
	}
	return s
}

// tuneGC applies planGC's settings to the process and says what it did.
func tuneGC(cfg server.Config) string {
	s := planGC(cfg, os.Getenv, os.ReadFile)
	var said []string
	if s.percent > 0 {
		debug.SetGCPercent(s.percent)
		said = append(said, fmt.Sprintf("GC percent %d", s.percent))
	}
	if s.limit > 0 {
		debug.SetMemoryLimit(s.limit)
		said = append(said, fmt.Sprintf("soft memory limit %d MiB", s.limit>>20))
	}
	if len(said) == 0 {
		return "garbage collector: as GOGC and GOMEMLIMIT say"
	}
	return "garbage collector: " + strings.Join(said, ", ")
}

// availableMemory is the container's memory limit (cgroup v2, then v1) or
// else the machine's memory, in bytes; 0 if none can be read.
func availableMemory(readFile func(string) ([]byte, error)) int64 {
	total := int64(0)
	if b, err := readFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					total = kb << 10
				}
			}
		}
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := readFile(path)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			return n
		}
	}
	return total
}
