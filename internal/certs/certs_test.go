package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssuedCertificateVerifiesAgainstItsCAOnly(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := NewCA("foreign CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Issue("node", []string{"127.0.0.1", "node1.internal"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	leaf := parse(t, p.CertPEM)
	own, other := x509.NewCertPool(), x509.NewCertPool()
	own.AddCert(ca.Cert)
	other.AddCert(foreign.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, host := range []string{"127.0.0.1", "node1.internal"} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: own, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("usage %v host %s: %v", usage, host, err)
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: other, KeyUsages: []x509.ExtKeyUsage{usage}}); err == nil {
			t.Error("a foreign CA verifies the node certificate")
		}
	}
	if err := leaf.VerifyHostname("127.0.0.2"); err == nil {
		t.Error("the certificate names a host it was not issued for")
	}
	if _, err := ca.Issue("node", nil, time.Hour); err == nil {
		t.Error("issued a certificate naming no host")
	}
}

func TestLoadCARoundTripsAndRejectsMismatch(t *testing.T) {
	a, _ := NewCA("a", time.Hour)
	b, _ := NewCA("b", time.Hour)
	back, err := LoadCA(a.CertPEM, a.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p, err := back.Issue("n", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := parse(t, p.CertPEM).CheckSignatureFrom(a.Cert); err != nil {
		t.Fatalf("a certificate of the loaded CA is not signed by the original: %v", err)
	}
	if _, err := LoadCA(a.CertPEM, b.KeyPEM); err == nil {
		t.Error("LoadCA accepted a key of another CA")
	}
	if _, err := LoadCA([]byte("junk"), a.KeyPEM); err == nil {
		t.Error("LoadCA accepted junk")
	}
}

func TestEnsureFilesKeepsTheCAAndReissuesForNewHosts(t *testing.T) {
	dir := t.TempDir()
	f, err := EnsureFiles(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ca1, node1 := read(f.CA), read(f.Cert)
	if st, _ := os.Stat(f.Key); st.Mode().Perm() != 0o600 {
		t.Errorf("node key mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(f.CAKey); st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := EnsureFiles(dir, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if string(read(f.CA)) != string(ca1) || string(read(f.Cert)) != string(node1) {
		t.Fatal("a second run with the same hosts replaced the CA or the node certificate")
	}
	if _, err := EnsureFiles(dir, []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatal(err)
	}
	if string(read(f.CA)) != string(ca1) {
		t.Fatal("the CA was replaced")
	}
	if err := parse(t, read(f.Cert)).VerifyHostname("localhost"); err != nil {
		t.Fatalf("the node certificate was not re-issued for the new host: %v", err)
	}
	// Half a CA is refused, not silently replaced.
	if err := os.Remove(f.CAKey); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureFiles(dir, []string{"127.0.0.1"}); err == nil {
		t.Fatal("EnsureFiles made a new CA beside an existing certificate")
	}
	other := filepath.Join(t.TempDir(), "c")
	if err := IssueFiles(other, "n2", []string{"node2"}, filepath.Join(other, "n2.pem"), filepath.Join(other, "n2-key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := parse(t, read(filepath.Join(other, "n2.pem"))).VerifyHostname("node2"); err != nil {
		t.Fatal(err)
	}
}
