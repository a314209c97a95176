package server

import (
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/cluster"
)

// validateClusterTLS refuses a half-configured mutual TLS, and a cluster of
// several nodes without it unless SWITCHBOARD_CLUSTER_INSECURE says that is
// meant: any process that reaches a member's remoting port could otherwise
// send any actor message for any account. A single node keeps working
// without certificates (its remoting listens on loopback by default).
func (c *Config) validateClusterTLS() error {
	f := c.ClusterTLS
	set := 0
	for _, v := range []string{f.CA, f.Cert, f.Key} {
		if v != "" {
			set++
		}
	}
	switch {
	case set != 0 && set != 3:
		return errors.New("SWITCHBOARD_CLUSTER_CA, SWITCHBOARD_NODE_CERT and SWITCHBOARD_NODE_KEY go together: set all three or none")
	case set == 0 && c.ClusterProvider != "single" && !c.ClusterInsecure:
		return fmt.Errorf("SWITCHBOARD_CLUSTER_PROVIDER=%s needs mutual TLS between nodes: set SWITCHBOARD_CLUSTER_CA, SWITCHBOARD_NODE_CERT and SWITCHBOARD_NODE_KEY (`switchboard certs` makes them), or SWITCHBOARD_CLUSTER_INSECURE=true on a network only members reach", c.ClusterProvider)
	}
	return nil
}

// clusterTLS loads the member's certificates, or nil when none are set.
func (c *Config) clusterTLS() (*cluster.MutualTLS, error) {
	if c.ClusterTLS == (cluster.TLSFiles{}) {
		return nil, nil
	}
	m, err := cluster.LoadMutualTLS(c.ClusterTLS)
	if err != nil {
		return nil, fmt.Errorf("cluster TLS (SWITCHBOARD_CLUSTER_CA, SWITCHBOARD_NODE_CERT, SWITCHBOARD_NODE_KEY): %w", err)
	}
	return m, nil
}
