package cluster

import (
	"fmt"
	"testing"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A member whose connection closes is routed around at once, to where the
// cluster moves its identities when it leaves, and back when it connects.
func TestRouterRoutesAroundALostMember(t *testing.T) {
	var members []*protocluster.Member
	var addrs []string
	for i := range 3 {
		m := &protocluster.Member{Id: fmt.Sprint("m", i), Host: "127.0.0.1", Port: int32(42000 + i), Kinds: []string{"conversation"}}
		members = append(members, m)
		addrs = append(addrs, m.Address())
	}
	r := newRouter()
	if got := r.owner("conversation", "x", nil); got != "" {
		t.Fatalf("owner before any topology = %q", got)
	}
	r.observe(&protocluster.ClusterTopology{Members: members})
	// An identity owned by the member that will be lost.
	var id string
	for i := 0; id == ""; i++ {
		if c := fmt.Sprint("cv_", i); Owner(c, addrs) == addrs[0] {
			id = c
		}
	}
	if got := r.owner("conversation", id, nil); got != addrs[0] {
		t.Fatalf("owner = %s, want %s", got, addrs[0])
	}
	if got := r.owner("inbox", id, nil); got != "" {
		t.Fatalf("owner of a kind no member hosts = %q", got)
	}
	next := Owner(id, addrs[1:])
	if got := r.owner("conversation", id, []string{addrs[0]}); got != next {
		t.Fatalf("owner skipping %s = %s, want %s", addrs[0], got, next)
	}

	waiting := r.lostSignal(addrs[0])
	other := r.lostSignal(addrs[1])
	r.observe(&remote.EndpointTerminatedEvent{Address: addrs[0]})
	if !closed(waiting) || closed(other) {
		t.Fatalf("after the loss of %s: its signal closed %v, another member's %v", addrs[0], closed(waiting), closed(other))
	}
	if !closed(r.lostSignal(addrs[0])) {
		t.Fatal("a wait that starts after the loss is not told")
	}
	if got := r.owner("conversation", id, nil); got != next {
		t.Fatalf("owner after the loss = %s, want %s (where the cluster moves it)", got, next)
	}
	r.observe(&remote.EndpointTerminatedEvent{Address: addrs[0]}) // reported twice: harmless

	r.observe(&remote.EndpointConnectedEvent{Address: addrs[0]})
	if got := r.owner("conversation", id, nil); got != addrs[0] {
		t.Fatalf("owner after reconnecting = %s, want %s", got, addrs[0])
	}
	if closed(r.lostSignal(addrs[0])) {
		t.Fatal("a reconnected member's new signal is closed")
	}

	// Leaving the membership ends every wait on the member.
	waiting = r.lostSignal(addrs[1])
	r.observe(&protocluster.ClusterTopology{Members: []*protocluster.Member{members[0], members[2]}})
	if !closed(waiting) {
		t.Fatal("a member that left: its waiters are not told")
	}
	if got, want := r.owner("conversation", id, nil), Owner(id, []string{addrs[0], addrs[2]}); got != want {
		t.Fatalf("owner after a leave = %s, want %s", got, want)
	}
}
