package cluster

import (
	"fmt"
	"net"
	"net/http"
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
// before the member starts.
func automanagedProvider(host string, port int, seeds []string, c **cluster.Cluster) (*automanaged.AutoManagedProvider, net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: automanaged endpoint: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort, e.Listener = true, true, l
	e.GET("/_health", func(ec echo.Context) error {
		cl := *c
		h, memberPort, err := cl.ActorSystem.GetHostPort()
		if err != nil {
			return ec.NoContent(http.StatusServiceUnavailable)
		}
		return ec.JSON(http.StatusOK, automanaged.NewNode(cl.Config.Name, cl.ActorSystem.ID, h, memberPort, port, cl.GetClusterKinds()))
	})
	return automanaged.NewWithTesting(2*time.Second, port, e, seeds...), l, nil
}
