package e2e

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/server"
)

// TestAutomanagedFromTheContractSettings: two nodes configured with the
// contract's settings alone — the provider, their node addresses and each
// other's as seeds — form one cluster (mutual TLS from the database's CA)
// and serve each other's conversations.
func TestAutomanagedFromTheContractSettings(t *testing.T) {
	url := pgtest.NewDatabase(t)
	addrA, addrB := addrWithNextFree(t), addrWithNextFree(t)
	member := func(self, other string) *server.Node {
		n, _ := nodeOn(t, url, func(c *server.Config) {
			c.ClusterProvider, c.NodeAddr, c.Seeds = "automanaged", self, []string{other}
		})
		return n
	}
	a, b := member(addrA, addrB), member(addrB, addrA)
	for _, n := range []*server.Node{a, b} {
		poll.Until(t, 20*time.Second, "two members, ready", func() bool {
			res, err := http.Get(n.URL() + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 200 && len(n.Member().Members()) == 2
		})
	}
	ca, cb := api{t: t, base: a.URL()}, api{t: t, base: b.URL()}
	tn := newTenant(t, ca, "Automanaged")
	var convs []string
	for i := range 8 { // some owned by each member
		convs = append(convs, str(t, ca.with(tn.key).must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
			obj{"contact": phoneContact(i), "body": fmt.Sprint("hello ", i)}), "conversation_id"))
	}
	for _, id := range convs {
		if v := num(t, cb.with(tn.key).must(200, "GET", "/v1/conversations/"+id, nil), "version"); v != 1 {
			t.Fatalf("%s through the other member: version %d", id, v)
		}
	}
	if a.Member().RefusedConnections() != 0 || b.Member().RefusedConnections() != 0 {
		t.Fatalf("members refused each other: %d, %d", a.Member().RefusedConnections(), b.Member().RefusedConnections())
	}
	// Remoting takes TLS only: a plain connection is refused in the handshake.
	conn, err := net.Dial("tcp", addrA)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	poll.Until(t, 10*time.Second, "a plain connection refused", func() bool { return a.Member().RefusedConnections() > 0 })
	conn.Close()
}

// addrWithNextFree is a loopback address whose port and the next are free:
// an automanaged member listens on both.
func addrWithNextFree(t *testing.T) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		ln.Close()
		if err == nil {
			next.Close()
			return fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
	t.Fatal("no two free ports in a row")
	return ""
}
