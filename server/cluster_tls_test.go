package server

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/certs"
)

func TestClusterTLSSettings(t *testing.T) {
	load := func(env map[string]string) (Config, error) {
		env["SWITCHBOARD_DATABASE_URL"] = "postgres://localhost/x"
		return LoadConfig("test", nil, func(k string) string { return env[k] })
	}
	f, err := certs.EnsureFiles(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"SWITCHBOARD_CLUSTER_CA": f.CA, "SWITCHBOARD_NODE_CERT": f.Cert, "SWITCHBOARD_NODE_KEY": f.Key}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"single without certificates", map[string]string{}, ""},
		{"etcd with certificates", with(all, "SWITCHBOARD_CLUSTER_PROVIDER", "etcd", "SWITCHBOARD_ETCD_ENDPOINTS", "e:2379"), ""},
		{"etcd without certificates", with(nil, "SWITCHBOARD_CLUSTER_PROVIDER", "etcd"), "needs mutual TLS"},
		{"automanaged without certificates", with(nil, "SWITCHBOARD_CLUSTER_PROVIDER", "automanaged"), "needs mutual TLS"},
		{"automanaged, insecure on purpose", with(nil, "SWITCHBOARD_CLUSTER_PROVIDER", "automanaged", "SWITCHBOARD_CLUSTER_INSECURE", "true"), ""},
		{"a key missing", with(all, "SWITCHBOARD_NODE_KEY", ""), "go together"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := load(c.env)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				m, err := cfg.clusterTLS()
				if err != nil {
					t.Fatal(err)
				}
				if (m != nil) != (cfg.ClusterTLS.CA != "") {
					t.Fatalf("TLS loaded: %v, files %+v", m != nil, cfg.ClusterTLS)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, c.wantErr)
			}
		})
	}

	// A node certificate of another CA is refused when the node starts.
	other, err := certs.NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := load(with(all, "SWITCHBOARD_CLUSTER_CA", writeTemp(t, other.CertPEM)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.clusterTLS(); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_CLUSTER_CA") {
		t.Fatalf("err %v, want one naming the settings", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
