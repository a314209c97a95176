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

// TestSettingsAsTheContractNamesThem: a flag of the variable's own name
// overrides it like the short flag, and values that cannot work are
// refused at start with the setting named.
func TestSettingsAsTheContractNamesThem(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{"SWITCHBOARD_DATABASE_URL": "postgres://localhost/x"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := LoadConfig("test", []string{"--SWITCHBOARD_HTTP_ADDR=127.0.0.1:9999", "-rate-key", "7"}, env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:1"))
	if err != nil || c.HTTPAddr != "127.0.0.1:9999" || c.Limits.KeyRate != 7 {
		t.Fatalf("flags: %q %v, %v", c.HTTPAddr, c.Limits.KeyRate, err)
	}
	// A stray word is no setting: refused, not ignored.
	if _, err := LoadConfig("test", []string{"-rate-key", "7", "extra"}, env()); err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("a stray argument: %v, want it named", err)
	}
	for _, bad := range []struct {
		env   []string
		names string
	}{
		{[]string{"SWITCHBOARD_RATE_AGENT", "NaN"}, "RATE_AGENT"},
		{[]string{"SWITCHBOARD_RATE_KEY", "+Inf"}, "RATE_KEY"},
		{[]string{"SWITCHBOARD_SEARCH", "typesense", "SWITCHBOARD_TYPESENSE_URL", "not a url"}, "TYPESENSE_URL"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "automanaged", "SWITCHBOARD_NODE_ADDR", "127.0.0.1:7001", "SWITCHBOARD_SEEDS", "notahostport"}, "SEEDS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "automanaged", "SWITCHBOARD_SEEDS", "h:7001,:7000"}, "SEEDS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "automanaged", "SWITCHBOARD_SEEDS", "h:99999"}, "SEEDS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "automanaged", "SWITCHBOARD_SEEDS", "h:abc"}, "SEEDS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "etcd"}, "ETCD_ENDPOINTS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "etcd", "SWITCHBOARD_ETCD_ENDPOINTS", "::bad::"}, "ETCD_ENDPOINTS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "etcd", "SWITCHBOARD_ETCD_ENDPOINTS", "127.0.0.1:2379,ftp://e:2379"}, "ETCD_ENDPOINTS"},
		{[]string{"SWITCHBOARD_CLUSTER_PROVIDER", "etcd", "SWITCHBOARD_ETCD_ENDPOINTS", "http://e"}, "ETCD_ENDPOINTS"},
	} {
		if _, err := LoadConfig("test", nil, env(bad.env...)); err == nil || !strings.Contains(err.Error(), bad.names) {
			t.Errorf("%q: err %v, want one naming %s", bad.env, err, bad.names)
		}
	}
	eps := "127.0.0.1:2379,etcd-1:2379,http://etcd-2:2379,https://[::1]:2379/"
	if c, err := LoadConfig("test", nil, env("SWITCHBOARD_CLUSTER_PROVIDER", "etcd", "SWITCHBOARD_ETCD_ENDPOINTS", eps)); err != nil || len(c.EtcdEndpoints) != 4 {
		t.Errorf("etcd endpoints %s: %v (%v)", eps, err, c.EtcdEndpoints)
	}
}
