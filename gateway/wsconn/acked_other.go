//go:build !linux

package wsconn

import "net"

// TCPAcked is nil where TCP_INFO is not read: the keepalive then hears
// from a peer by its frames and pongs alone.
func TCPAcked(net.Conn) func() uint64 { return nil }
