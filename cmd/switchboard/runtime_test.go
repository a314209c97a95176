package main

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/switchboard-dev/switchboard/server"
)

func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := m[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
}

func TestAvailableMemory(t *testing.T) {
	meminfo := "MemTotal:       24684180 kB\nMemFree:        21077688 kB\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine", map[string]string{"/proc/meminfo": meminfo}, 24684180 << 10},
		{"cgroup v2 without limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24684180 << 10},
		{"cgroup v2 limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "2147483648\n"}, 2 << 30},
		{"cgroup v1 limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n"}, 1 << 30},
		{"cgroup v1 without limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 24684180 << 10},
		{"nothing readable", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := availableMemory(files(tc.files)); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPlanGC(t *testing.T) {
	cfg := server.Config{GCPercent: 400}
	mem := files(map[string]string{"/sys/fs/cgroup/memory.max": "4294967296"})
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := planGC(cfg, env(nil), mem); got != (gcSettings{percent: 400, limit: 2 << 30}) {
		t.Fatalf("defaults: %+v", got)
	}
	cfg.MemoryLimitMB = 512
	if got := planGC(cfg, env(nil), mem); got.limit != 512<<20 {
		t.Fatalf("SWITCHBOARD_MEMORY_LIMIT_MB: %+v", got)
	}
	// Go's own variables win: the runtime has applied them already.
	if got := planGC(cfg, env(map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}), mem); got != (gcSettings{}) {
		t.Fatalf("with GOGC and GOMEMLIMIT: %+v", got)
	}
	if got := planGC(server.Config{GCPercent: 400}, env(nil), func(string) ([]byte, error) { return nil, errors.New("no") }); got.limit != 0 {
		t.Fatalf("no memory readable: %+v, want no limit", got)
	}
}
