package server

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/certs"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
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
		{"automanaged, insecure on purpose", with(nil, "SWITCHBOARD_CLUSTER_PROVIDER", "automanaged", "SWITCHBOARD_CLUSTER_INSECURE", "true"), ""},
		{"a key missing", with(all, "SWITCHBOARD_NODE_KEY", ""), "go together"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := load(c.env)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				m, err := cfg.clusterTLS(context.Background(), nil) // no database needed
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
	if _, err := cfg.clusterTLS(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_CLUSTER_CA") {
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

// TestClusterTLSFromTheDatabase: nodes of several without certificate files
// sign their own with the CA their database keeps, made once: two members
// of one database complete a mutual TLS handshake, and a member of another
// database is refused.
func TestClusterTLSFromTheDatabase(t *testing.T) {
	ctx := context.Background()
	member := func(url string) *cluster.MutualTLS {
		t.Helper()
		if err := persistence.Migrate(ctx, url); err != nil {
			t.Fatal(err)
		}
		store, err := persistence.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		cfg, err := LoadConfig("test", nil, func(k string) string {
			return map[string]string{"SWITCHBOARD_DATABASE_URL": url, "SWITCHBOARD_CLUSTER_PROVIDER": "etcd", "SWITCHBOARD_ETCD_ENDPOINTS": "127.0.0.1:2379",
				"SWITCHBOARD_NODE_ADDR": "127.0.0.1:0"}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		m, err := cfg.clusterTLS(ctx, store)
		if err != nil || m == nil {
			t.Fatalf("cluster TLS from the database: %v, %v", m, err)
		}
		return m
	}
	url := pgtest.NewDatabase(t)
	a, b := member(url), member(url)
	if err := handshake(a, b); err != nil {
		t.Fatalf("two members of one database: %v", err)
	}
	if err := handshake(b, a); err != nil {
		t.Fatalf("two members of one database, the other way: %v", err)
	}
	stranger := member(pgtest.NewDatabase(t))
	if err := handshake(a, stranger); err == nil {
		t.Fatal("a member of another database was accepted")
	}
	if err := handshake(stranger, a); err == nil {
		t.Fatal("a member accepted another database's server")
	}
}

// handshake runs a TLS handshake between server and client as members
// dial each other (at 127.0.0.1).
func handshake(server, client *cluster.MutualTLS) error {
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	errs := make(chan error, 1)
	go func() {
		c := tls.Server(sc, server.ServerConfig())
		err := c.Handshake()
		if err == nil {
			_, err = c.Read(make([]byte, 1)) // a refused client certificate surfaces here in TLS 1.3
		}
		errs <- err
		sc.Close()
	}()
	c := tls.Client(cc, client.ClientConfig("127.0.0.1"))
	err := c.Handshake()
	if err == nil {
		_, err = c.Write([]byte{1})
	}
	if serr := <-errs; err == nil {
		err = serr
	}
	return err
}
