package cluster

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchboard-dev/switchboard/internal/etcdtest"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// TestHeartbeatsCountEveryMembersActivations: three members activate known
// numbers of a hand-written kind; every member's view of every other
// member's count converges to the true number, up as identities activate
// and down as they stop.
func TestHeartbeatsCountEveryMembersActivations(t *testing.T) {
	agent := test.NewInMemAgent()
	nodes := []*Node{
		startNode(t, Config{Agent: agent}),
		startNode(t, Config{Agent: agent}),
		startNode(t, Config{Agent: agent}),
	}
	awaitMembers(t, 3, nodes...)
	countActivations(t, nodes)
}

// Over etcd member ids carry a "<cluster>@" prefix that gossip keys lack,
// and the members talk mutual TLS, as docker-compose runs them.
func TestHeartbeatsOverEtcd(t *testing.T) {
	endpoint := etcdtest.Start(t)
	name := "etcdbeat" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ca, dir := newCA(t, "cluster CA"), t.TempDir()
	a := startNode(t, Config{Provider: ProviderEtcd, Name: name, EtcdEndpoints: []string{endpoint}, TLS: loadTLS(t, memberFiles(t, ca, dir, "a"))})
	b := startNode(t, Config{Provider: ProviderEtcd, Name: name, EtcdEndpoints: []string{endpoint}, TLS: loadTLS(t, memberFiles(t, ca, dir, "b"))})
	nodes := []*Node{a, b}
	awaitMembers(t, 2, nodes...)
	for _, n := range nodes {
		if me, ok := n.Self(); !ok || !strings.HasPrefix(me.ID, name+"@") {
			t.Fatalf("%s: self %+v, %v", n.Address(), me, ok)
		}
	}
	countActivations(t, nodes)
}

// countActivations activates known numbers of echo identities on the
// nodes, then stops some, and waits each time for every node's view of the
// others to match.
func countActivations(t *testing.T, nodes []*Node) {
	t.Helper()
	// owner[id] is the address that serves it: the echo says so.
	owner := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 30 {
		id := fmt.Sprintf("e-%d", i)
		res, err := nodes[i%len(nodes)].Request(ctx, "echo", id, wrapperspb.String(id))
		if err != nil {
			t.Fatal(err)
		}
		addr, _, _ := strings.Cut(res.(*wrapperspb.StringValue).Value, "|")
		owner[id] = addr
	}
	awaitCounts(t, nodes, owner)

	// Stop a third of them: the counts must come down too.
	for i := 0; i < 30; i += 3 {
		id := fmt.Sprintf("e-%d", i)
		pid := nodes[0].Cluster.Get(id, "echo")
		if pid == nil {
			t.Fatalf("no activation of %s", id)
		}
		if err := nodes[0].System.Root.PoisonFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
		delete(owner, id)
	}
	awaitCounts(t, nodes, owner)
}

// awaitCounts waits until every node's heartbeats of the others carry the
// number of activations each owns, checking on each heartbeat merged.
func awaitCounts(t *testing.T, nodes []*Node, owner map[string]string) {
	t.Helper()
	want := map[string]int64{}
	for _, addr := range owner {
		want[addr]++
	}
	wake := make(chan struct{}, 1)
	for _, n := range nodes {
		defer n.NotifyHeartbeats(wake)()
	}
	var last string
	defer func() {
		if t.Failed() {
			t.Log(last)
		}
	}()
	poll.UntilSignaled(t, 20*time.Second, "every member's heartbeat counts", wake, func() bool {
		for _, n := range nodes {
			// Its own count, which a node does not gossip to itself, is
			// the library's counter that its heartbeat publishes.
			if own := int64(n.Cluster.GetClusterKind("echo").Count()); own != want[n.Address()] {
				last = fmt.Sprintf("%s counts %d of its own, owns %d", n.Address(), own, want[n.Address()])
				return false
			}
			beats, err := n.Heartbeats()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for id, hb := range beats {
				if hb.Age < 0 {
					t.Fatalf("heartbeat of %s aged %s", id, hb.Age)
				}
				got[addressOf(t, n, id)] = hb.Activations["echo"]
			}
			expect := maps.Clone(want)
			delete(expect, n.Address())
			for _, m := range nodes {
				if _, ok := expect[m.Address()]; !ok && m != n {
					expect[m.Address()] = 0
				}
			}
			if !maps.Equal(got, expect) {
				last = fmt.Sprintf("%s sees %v, want %v", n.Address(), got, expect)
				return false
			}
		}
		return true
	})
}

func addressOf(t *testing.T, n *Node, memberID string) string {
	t.Helper()
	for _, m := range n.Members() {
		if m.ID == memberID {
			return m.Address
		}
	}
	t.Fatalf("heartbeat of %s, not a member", memberID)
	return ""
}

func TestGossipKeyDropsTheClusterPrefix(t *testing.T) {
	for id, want := range map[string]string{"abc": "abc", "switchboard@abc": "abc", "a@b@abc": "abc"} {
		if got := gossipKey(id); got != want {
			t.Errorf("gossipKey(%q) = %q, want %q", id, got, want)
		}
	}
}

// BenchmarkHeartbeats is the cost of the admin page's numbers for the other
// members of a three-node cluster: one local request to the gossip actor.
func BenchmarkHeartbeats(b *testing.B) {
	agent := test.NewInMemAgent()
	var nodes []*Node
	for range 3 {
		n, err := Start(context.Background(), Config{Agent: agent}, echoKind())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(n.Stop)
		nodes = append(nodes, n)
	}
	wake := make(chan struct{}, 1)
	defer nodes[0].NotifyHeartbeats(wake)()
	poll.UntilSignaled(b, 20*time.Second, "heartbeats of both others", wake, func() bool {
		beats, err := nodes[0].Heartbeats()
		return err == nil && len(beats) == 2
	})
	b.Run("gossip", func(b *testing.B) {
		for b.Loop() {
			if _, err := nodes[0].Heartbeats(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The alternative: asking each other member over a request, here one
	// echo round trip to an activation on each.
	ids := map[string]string{} // address -> an identity it owns
	ctx := context.Background()
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("b-%d", i)
		res, err := nodes[0].Request(ctx, "echo", id, wrapperspb.String(id))
		if err != nil {
			b.Fatal(err)
		}
		if addr, _, _ := strings.Cut(res.(*wrapperspb.StringValue).Value, "|"); addr != nodes[0].Address() {
			ids[addr] = id
		}
	}
	b.Run("ask-each-member", func(b *testing.B) {
		for b.Loop() {
			for _, id := range ids {
				if _, err := nodes[0].Request(ctx, "echo", id, wrapperspb.String(id)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
