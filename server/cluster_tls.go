package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/certs"
	"github.com/switchboard-dev/switchboard/persistence"
)

// validateClusterTLS refuses a half-configured mutual TLS.
func (c *Config) validateClusterTLS() error {
	f := c.ClusterTLS
	set := 0
	for _, v := range []string{f.CA, f.Cert, f.Key} {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("SWITCHBOARD_CLUSTER_CA, SWITCHBOARD_NODE_CERT and SWITCHBOARD_NODE_KEY go together: set all three or none")
	}
	return nil
}

// Validity of what a node makes for itself: the database's CA, and the
// certificate each node signs with it at every start.
const (
	clusterCAValidity   = 20 * 365 * 24 * time.Hour
	nodeCertValidity    = 2 * 365 * 24 * time.Hour
	clusterCACommonName = "Switchboard cluster CA"
)

// clusterTLS is the member's mutual TLS. From the files when they are set.
// Otherwise a cluster of several nodes uses the CA its database keeps (the
// first node makes it) and a certificate each node signs for itself at
// start: members are authenticated and encrypted with no set-up beyond the
// shared database, whose credentials already give everything the cluster
// holds. nil for a single node, or when CLUSTER_INSECURE asks for plain
// connections.
func (c *Config) clusterTLS(ctx context.Context, store *persistence.Store) (*cluster.MutualTLS, error) {
	if c.ClusterTLS != (cluster.TLSFiles{}) {
		m, err := cluster.LoadMutualTLS(c.ClusterTLS)
		if err != nil {
			return nil, fmt.Errorf("cluster TLS (SWITCHBOARD_CLUSTER_CA, SWITCHBOARD_NODE_CERT, SWITCHBOARD_NODE_KEY): %w", err)
		}
		return m, nil
	}
	if c.ClusterProvider == "single" || c.ClusterInsecure {
		return nil, nil
	}
	caPEM, caKey, err := store.ClusterCA(ctx, func() ([]byte, []byte, error) {
		ca, err := certs.NewCA(clusterCACommonName, clusterCAValidity)
		if err != nil {
			return nil, nil, err
		}
		return ca.CertPEM, ca.KeyPEM, nil
	})
	if err != nil {
		return nil, err
	}
	ca, err := certs.LoadCA(caPEM, caKey)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: the database's CA: %w", err)
	}
	pair, err := ca.Issue("Switchboard node", nodeHosts(c.NodeAddr), nodeCertValidity)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: %w", err)
	}
	return cluster.NewMutualTLS(caPEM, pair.CertPEM, pair.KeyPEM)
}

// nodeHosts are the names a node's own certificate is good for: the host
// of its node address, loopback, the machine's name and every address of
// its interfaces (a node listening on all of them is dialled at one).
func nodeHosts(nodeAddr string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(nodeAddr); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}
