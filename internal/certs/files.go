package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files names the PEM files of a CA and of one node it signed.
type Files struct {
	CA, CAKey, Cert, Key string
}

// In names the files EnsureFiles keeps in dir.
func In(dir string) Files {
	return Files{
		CA:    filepath.Join(dir, "ca.pem"),
		CAKey: filepath.Join(dir, "ca-key.pem"),
		Cert:  filepath.Join(dir, "node.pem"),
		Key:   filepath.Join(dir, "node-key.pem"),
	}
}

// Lifetimes of what EnsureFiles makes; a node certificate is re-issued
// once less than renewBefore of it is left.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	nodeValidity = 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// EnsureFiles keeps a CA and a node certificate for hosts in dir: the CA is
// made once and kept (nodes it signed stay members), the node certificate
// is made again when missing, expiring, or not naming every host.
func EnsureFiles(dir string, hosts []string) (Files, error) {
	f := In(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("certs: %w", err)
	}
	ca, err := ensureCA(f)
	if err != nil {
		return f, err
	}
	if nodeCertGood(f, ca, hosts) {
		return f, nil
	}
	return f, issueFiles(ca, "switchboard node", hosts, f.Cert, f.Key)
}

// IssueFiles signs a node certificate for hosts with the CA kept in dir
// (made there if missing) and writes it to certFile and keyFile.
func IssueFiles(dir, name string, hosts []string, certFile, keyFile string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	ca, err := ensureCA(In(dir))
	if err != nil {
		return err
	}
	return issueFiles(ca, name, hosts, certFile, keyFile)
}

func issueFiles(ca *CA, name string, hosts []string, certFile, keyFile string) error {
	p, err := ca.Issue(name, hosts, nodeValidity)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, p.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.WriteFile(certFile, p.CertPEM, 0o644); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func ensureCA(f Files) (*CA, error) {
	certPEM, errC := os.ReadFile(f.CA)
	keyPEM, errK := os.ReadFile(f.CAKey)
	switch {
	case errC == nil && errK == nil:
		return LoadCA(certPEM, keyPEM)
	case errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist):
	default:
		// Half a CA is somebody's mistake; making a new one would silently
		// split the cluster, so say so instead.
		return nil, fmt.Errorf("certs: %s and %s must both exist or both be absent (%v, %v)", f.CA, f.CAKey, errC, errK)
	}
	ca, err := NewCA("switchboard cluster CA", caValidity)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.CAKey, ca.KeyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	if err := os.WriteFile(f.CA, ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return ca, nil
}

func nodeCertGood(f Files, ca *CA, hosts []string) bool {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return false
	}
	if _, err := os.Stat(f.Key); err != nil {
		return false
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !bytes.Equal(cert.RawIssuer, ca.Cert.RawSubject) || cert.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	if time.Until(cert.NotAfter) < renewBefore {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}
