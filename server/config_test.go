package server

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/gateway"
)

func TestGatewayCacheSize(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		env["SWITCHBOARD_DATABASE_URL"] = "postgres://localhost/x"
		return LoadConfig("test", nil, func(k string) string { return env[k] })
	}
	c, err := load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.GatewayCacheSize != gateway.DefaultCacheSize {
		t.Fatalf("default %d, want gateway.DefaultCacheSize %d", c.GatewayCacheSize, gateway.DefaultCacheSize)
	}
	if c, err = load(map[string]string{"SWITCHBOARD_GATEWAY_CACHE_SIZE": "500"}); err != nil || c.GatewayCacheSize != 500 {
		t.Fatalf("set to 500: %d, %v", c.GatewayCacheSize, err)
	}
	for _, bad := range []string{"0", "-1", "lots"} {
		if _, err := load(map[string]string{"SWITCHBOARD_GATEWAY_CACHE_SIZE": bad}); err == nil || !strings.Contains(err.Error(), "GATEWAY_CACHE_SIZE") {
			t.Errorf("%q: err %v, want one naming SWITCHBOARD_GATEWAY_CACHE_SIZE", bad, err)
		}
	}
}

func TestGCSettings(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		env["SWITCHBOARD_DATABASE_URL"] = "postgres://localhost/x"
		return LoadConfig("test", nil, func(k string) string { return env[k] })
	}
	c, err := load(map[string]string{})
	if err != nil || c.GCPercent != 400 || c.MemoryLimitMB != 0 {
		t.Fatalf("defaults: %d %d %v", c.GCPercent, c.MemoryLimitMB, err)
	}
	if c, err = load(map[string]string{"SWITCHBOARD_GC_PERCENT": "150", "SWITCHBOARD_MEMORY_LIMIT_MB": "2048"}); err != nil || c.GCPercent != 150 || c.MemoryLimitMB != 2048 {
		t.Fatalf("set: %d %d %v", c.GCPercent, c.MemoryLimitMB, err)
	}
	for _, bad := range []map[string]string{{"SWITCHBOARD_GC_PERCENT": "0"}, {"SWITCHBOARD_MEMORY_LIMIT_MB": "-5"}, {"SWITCHBOARD_GC_PERCENT": "off"}} {
		if _, err := load(bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

func TestClusterSuspectAfter(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		env["SWITCHBOARD_DATABASE_URL"] = "postgres://localhost/x"
		return LoadConfig("test", nil, func(k string) string { return env[k] })
	}
	c, err := load(map[string]string{})
	if err != nil || c.ClusterSuspectAfter != 2*time.Second {
		t.Fatalf("default %s, %v; want 2s", c.ClusterSuspectAfter, err)
	}
	if c, err = load(map[string]string{"SWITCHBOARD_CLUSTER_SUSPECT_AFTER": "3s"}); err != nil || c.ClusterSuspectAfter != 3*time.Second {
		t.Fatalf("set to 3s: %s, %v", c.ClusterSuspectAfter, err)
	}
	for _, bad := range []string{"0s", "50ms", "-1s", "soon"} {
		if _, err := load(map[string]string{"SWITCHBOARD_CLUSTER_SUSPECT_AFTER": bad}); err == nil || !strings.Contains(err.Error(), "CLUSTER_SUSPECT_AFTER") {
			t.Errorf("%q: err %v, want one naming SWITCHBOARD_CLUSTER_SUSPECT_AFTER", bad, err)
		}
	}
}
