package wsconn

import (
	"net"

	"golang.org/x/sys/unix"
)

// TCPAcked returns a function reporting how many bytes the peer of c has
// acknowledged (TCP_INFO's bytes_acked), or nil when c is not a TCP
// connection. It is what Keepalive's Acked takes.
func TCPAcked(c net.Conn) func() uint64 {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() uint64 {
		var n uint64
		_ = raw.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				n = info.Bytes_acked
			}
		})
		return n
	}
}
