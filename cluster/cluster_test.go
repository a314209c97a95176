package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchboard-dev/switchboard/internal/etcdtest"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// echoKind answers a StringValue with "<node address>:<identity>:<value>",
// so a test can tell which node served an identity.
func echoKind() *protocluster.Kind {
	return protocluster.NewKind("echo", actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			ctx.Respond(wrapperspb.String(ctx.ActorSystem().Address() + "|" + m.Value))
		}
	}))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePortPair is a free port whose next one is free too: an automanaged
// member listens on both.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		if l, err := net.Listen("tcp", fmt.Sprintf(":%d", p+1)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no two free ports in a row")
	return 0
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.RequestTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg, echoKind())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// awaitMembers waits until every node sees want members, re-checking on
// each topology change any of them applies.
func awaitMembers(t *testing.T, want int, nodes ...*Node) {
	t.Helper()
	wake := make(chan struct{}, 1)
	for _, n := range nodes {
		defer n.NotifyTopology(wake)()
	}
	converged := func() bool {
		for _, n := range nodes {
			if len(n.Members()) != want {
				return false
			}
		}
		return true
	}
	defer func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s sees %v", n.Address(), n.Members())
			}
		}
	}()
	poll.UntilSignaled(t, 30*time.Second, fmt.Sprintf("members to converge to %d", want), wake, converged)
}

// crossNode finds an identity owned by the other node and shows that a
// request from a reaches it and comes back: the message crossed the wire.
func crossNode(t *testing.T, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 200; i++ {
		id := "id-" + strconv.Itoa(i)
		res, err := a.Request(ctx, "echo", id, wrapperspb.String(id))
		if err != nil {
			t.Fatalf("request %s: %v", id, err)
		}
		got := res.(*wrapperspb.StringValue).Value
		if got == b.Address()+"|"+id {
			return
		}
		if got != a.Address()+"|"+id {
			t.Fatalf("unexpected answer %q", got)
		}
	}
	t.Fatal("no identity of 200 was placed on the other node")
}

func TestSingleProviderTwoNodesShareAnAgent(t *testing.T) {
	agent := test.NewInMemAgent()
	a := startNode(t, Config{Provider: ProviderSingle, Agent: agent})
	b := startNode(t, Config{Provider: ProviderSingle, Agent: agent})
	awaitMembers(t, 2, a, b)
	crossNode(t, a, b)
	if !a.IsMember() || !b.IsMember() {
		t.Fatal("IsMember false for a started node")
	}
}

// A member that joins is not a loss; one that stops is.
func TestNotifyMemberLost(t *testing.T) {
	agent := test.NewInMemAgent()
	a := startNode(t, Config{Provider: ProviderSingle, Agent: agent})
	lost := make(chan struct{}, 1)
	defer a.NotifyMemberLost(lost)()
	b := startNode(t, Config{Provider: ProviderSingle, Agent: agent})
	awaitMembers(t, 2, a, b)
	crossNode(t, a, b) // a connection to b exists, to be lost
	select {
	case <-lost:
		t.Fatal("signaled for a member that joined")
	default:
	}
	b.Stop()
	select {
	case <-lost:
	case <-time.After(30 * time.Second):
		t.Fatal("no signal within 30 s of a member stopping")
	}
}

func TestAutomanagedProvider(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	seeds := []string{fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)}
	a := startNode(t, Config{Provider: ProviderAutomanaged, AutomanagedPort: pa, Seeds: seeds})
	b := startNode(t, Config{Provider: ProviderAutomanaged, AutomanagedPort: pb, Seeds: seeds})
	awaitMembers(t, 2, a, b)
	crossNode(t, a, b)
}

// TestAutomanagedByNodeAddresses: each node names only the others, by their
// node addresses, as SWITCHBOARD_SEEDS does; membership endpoints sit next
// to remoting.
func TestAutomanagedByNodeAddresses(t *testing.T) {
	addrA, addrB := fmt.Sprintf("127.0.0.1:%d", freePortPair(t)), fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	a := startNode(t, Config{Provider: ProviderAutomanaged, NodeAddr: addrA, Seeds: []string{addrB}})
	b := startNode(t, Config{Provider: ProviderAutomanaged, NodeAddr: addrB, Seeds: []string{addrA}})
	awaitMembers(t, 2, a, b)
	crossNode(t, a, b)
}

// TestNodesOnAllInterfaces: members listening on 0.0.0.0 announce an
// address the others can dial, not the listener's "[::]".
func TestNodesOnAllInterfaces(t *testing.T) {
	pa, pb := freePortPair(t), freePortPair(t)
	a := startNode(t, Config{Provider: ProviderAutomanaged, NodeAddr: fmt.Sprintf("0.0.0.0:%d", pa), Seeds: []string{fmt.Sprintf("127.0.0.1:%d", pb)}})
	b := startNode(t, Config{Provider: ProviderAutomanaged, NodeAddr: fmt.Sprintf("0.0.0.0:%d", pb), Seeds: []string{fmt.Sprintf("127.0.0.1:%d", pa)}})
	awaitMembers(t, 2, a, b)
	for _, m := range a.Members() {
		if h, _, _ := net.SplitHostPort(m.Address); net.ParseIP(h) == nil || net.ParseIP(h).IsUnspecified() {
			t.Fatalf("a member announced as %q", m.Address)
		}
	}
	crossNode(t, a, b)
}

func TestAutomanagedAddrs(t *testing.T) {
	port, seeds, err := automanagedAddrs("10.0.0.1", 7001, 0, []string{"10.0.0.2:7001", "10.0.0.1:7001", "node3:7005"})
	if err != nil || port != 7002 || !slices.Equal(seeds, []string{"10.0.0.1:7002", "10.0.0.2:7002", "node3:7006"}) {
		t.Fatalf("derived: %d %v %v", port, seeds, err)
	}
	port, seeds, err = automanagedAddrs("10.0.0.1", 0, 6330, []string{"10.0.0.2:6330"})
	if err != nil || port != 6330 || !slices.Equal(seeds, []string{"10.0.0.1:6330", "10.0.0.2:6330"}) {
		t.Fatalf("explicit: %d %v %v", port, seeds, err)
	}
	for _, bad := range [][]string{{"notahostport"}, {"h:0"}, {"h:65535"}, {"h:x"}} {
		if _, _, err := automanagedAddrs("10.0.0.1", 7001, 0, bad); err == nil {
			t.Errorf("seeds %q accepted", bad)
		}
	}
	if _, _, err := automanagedAddrs("127.0.0.1", 0, 0, nil); err == nil {
		t.Error("no port to derive from, and none given: accepted")
	}
}

// Over etcd the members talk mutual TLS, as docker-compose runs them.
func TestEtcdProvider(t *testing.T) {
	endpoint := etcdtest.Start(t)
	name := "etcdtest" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ca, dir := newCA(t, "cluster CA"), t.TempDir()
	a := startNode(t, Config{Provider: ProviderEtcd, Name: name, EtcdEndpoints: []string{endpoint}, TLS: loadTLS(t, memberFiles(t, ca, dir, "a"))})
	b := startNode(t, Config{Provider: ProviderEtcd, Name: name, EtcdEndpoints: []string{endpoint}, TLS: loadTLS(t, memberFiles(t, ca, dir, "b"))})
	awaitMembers(t, 2, a, b)
	crossNode(t, a, b)
}

func TestStartRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{Provider: "zookeeper"},
		{Provider: ProviderAutomanaged},
		{Provider: ProviderEtcd},
		{NodeAddr: "no-port"},
	} {
		if _, err := Start(ctx, cfg); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}
