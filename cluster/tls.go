package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TLSFiles names the PEM files of a member's mutual TLS: the cluster CA
// that signs every member, and this node's certificate and key.
type TLSFiles struct {
	CA, Cert, Key string
}

// MutualTLS is what a member needs to accept and dial the others: every
// connection between members is TLS 1.3, and both ends present a
// certificate the cluster CA signed. A node's certificate must name the host
// the others dial it at (the host of its node address).
type MutualTLS struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// LoadMutualTLS reads the files and checks that the node's certificate is
// one the cluster CA signed for both ends of a connection, so a mistake is
// reported at start and not as refused connections later.
func LoadMutualTLS(f TLSFiles) (*MutualTLS, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return NewMutualTLS(caPEM, certPEM, keyPEM)
}

// NewMutualTLS is LoadMutualTLS on PEM already read.
func NewMutualTLS(caPEM, certPEM, keyPEM []byte) (*MutualTLS, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cluster CA: no PEM certificate in it")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate and key: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("node certificate: %w", err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			return nil, fmt.Errorf("node certificate is not one the cluster CA signed for server and client use: %w", err)
		}
	}
	return &MutualTLS{cert: cert, pool: pool}, nil
}

// ServerConfig accepts only clients with a certificate from the cluster CA.
func (m *MutualTLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    m.pool,
	}
}

// ClientConfig presents this node's certificate and accepts only a server
// whose certificate the cluster CA signed for the host dialled. serverName
// is that host; gRPC fills it in from the address it dials when empty.
func (m *MutualTLS) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.pool,
		ServerName:   serverName,
	}
}

// handshakeTimeout bounds a connection's TLS handshake on the remoting
// port (gRPC's default is two minutes, long enough to hold many sockets).
const handshakeTimeout = 10 * time.Second

// remoteOptions are the gRPC credentials of actor remoting. onRefused hears
// of every connection the server refused during the handshake.
func (m *MutualTLS) remoteOptions(onRefused func(net.Addr, error)) ([]grpc.ServerOption, grpc.DialOption) {
	server := refusals{credentials.NewTLS(m.ServerConfig()), onRefused}
	return []grpc.ServerOption{grpc.Creds(server), grpc.ConnectionTimeout(handshakeTimeout)},
		grpc.WithTransportCredentials(credentials.NewTLS(m.ClientConfig("")))
}

// dialTLS dials addr and completes the handshake: the automanaged provider
// speaks plain HTTP over whatever connection its transport returns.
func (m *MutualTLS) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, m.ClientConfig(host))
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return conn, nil
}

// refusals reports the server handshakes that failed: the library's gRPC
// logging is discarded, and a refused peer is worth a warning.
type refusals struct {
	credentials.TransportCredentials
	onRefused func(net.Addr, error)
}

func (r refusals) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := r.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		r.onRefused(conn.RemoteAddr(), err)
	}
	return c, info, err
}

func (r refusals) Clone() credentials.TransportCredentials {
	return refusals{r.TransportCredentials.Clone(), r.onRefused}
}

// refusalCounter counts and logs refused handshakes of one node.
type refusalCounter struct {
	n   atomic.Int64
	log *slog.Logger
}

func (c *refusalCounter) refused(from net.Addr, err error) {
	c.n.Add(1)
	c.log.Warn("refused a node-to-node connection: no valid certificate from the cluster CA", "from", from.String(), "err", err)
}
