package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/labstack/echo"
)

// automanagedProvider is protoactor's automanaged provider with its
// membership endpoint bound to the node's host. The library listens on
// 0.0.0.0 whatever the node address says, which would publish the member
// list on every interface of the machine; handing it an echo server whose
// listener is already bound is the one way in (echo serves on a listener it
// is given), and that path of the library ("testing") leaves the /_health
// route to us. It answers what the library's own route does. *c must be set
// before the member starts. With mTLS the endpoint serves only members and
// the provider asks only members (see protectAutomanaged).
func automanagedProvider(host string, port int, seeds []string, mtls *MutualTLS, c **cluster.Cluster, log *slog.Logger) (*automanaged.AutoManagedProvider, net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: automanaged endpoint: %w", err)
	}
	var served net.Listener = l
	if mtls != nil {
		served = tls.NewListener(l, mtls.ServerConfig())
	}
	e := echo.New()
	e.HideBanner, e.HidePort, e.Listener = true, true, served
	// A peer gets a few seconds for its handshake and request, not forever.
	e.Server.ReadHeaderTimeout = 5 * time.Second
	// A refused handshake (no certificate, another CA, plain HTTP) is a
	// warning like the remoting port's, not a bare line on stderr.
	e.StdLogger = slog.NewLogLogger(log.With("component", "membership endpoint").Handler(), slog.LevelWarn)
	e.GET("/_health", func(ec echo.Context) error {
		cl := *c
		h, memberPort, err := cl.ActorSystem.GetHostPort()
		if err != nil {
			return ec.NoContent(http.StatusServiceUnavailable)
		}
		return ec.JSON(http.StatusOK, automanaged.NewNode(cl.Config.Name, cl.ActorSystem.ID, h, memberPort, port, cl.GetClusterKinds()))
	})
	p := automanaged.NewWithTesting(2*time.Second, port, e, seeds...)
	if mtls != nil {
		if err := protectAutomanaged(p, mtls); err != nil {
			_ = l.Close()
			return nil, nil, err
		}
	}
	return p, l, nil
}

// protectAutomanaged makes the provider's health checks of the seeds mutual
// TLS. The library asks "http://<seed>/_health" with an HTTP client it keeps
// unexported and never lets a caller configure; its transport is replaced
// here with one whose connections are TLS from the cluster CA (plain HTTP
// over them). Reflection reaches the field: when a library upgrade renames
// or retypes it, this fails the start rather than leaving membership
// unprotected.
func protectAutomanaged(p *automanaged.AutoManagedProvider, mtls *MutualTLS) error {
	f := reflect.ValueOf(p).Elem().FieldByName("httpClient")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*http.Client]() || f.IsNil() {
		return errors.New("cluster: cannot put the automanaged provider's health checks under TLS: protoactor-go changed; use the etcd provider or fix cluster/automanaged.go")
	}
	client := (*http.Client)(f.UnsafePointer())
	client.Transport = &http.Transport{
		DialContext:         mtls.dialTLS,
		MaxIdleConns:        10,
		MaxConnsPerHost:     10,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return nil
}
