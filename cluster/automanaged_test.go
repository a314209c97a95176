package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// The automanaged membership endpoint listens on the node's host only, not
// on every interface: on Linux the whole of 127.0.0.0/8 is loopback, so a
// listener on 0.0.0.0 would answer on 127.0.0.2 too.
func TestAutomanagedBindsToNodeHost(t *testing.T) {
	port := freePort(t)
	seeds := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	n := startNode(t, Config{Provider: ProviderAutomanaged, NodeAddr: "127.0.0.1:0", AutomanagedPort: port, Seeds: seeds})
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/_health", port))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var node struct {
		ID      string `json:"id"`
		Address string `json:"address"`
		Port    int    `json:"port"`
	}
	if err := json.NewDecoder(res.Body).Decode(&node); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/_health: status %d, %v", res.StatusCode, err)
	}
	if got := fmt.Sprintf("%s:%d", node.Address, node.Port); got != n.Address() || node.ID != n.System.ID {
		t.Fatalf("/_health describes %s (%s), want this node %s (%s)", got, node.ID, n.Address(), n.System.ID)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.2:%d", port), 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("the automanaged endpoint answers on 127.0.0.2:%d: it is not bound to the node's host", port)
	}
}
