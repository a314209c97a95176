package cluster

import (
	"fmt"
	"testing"

	protocluster "github.com/asynkron/protoactor-go/cluster"
)

// Owner must agree with the library's placement, or a request would ask a
// member that is not the identity's owner to activate it.
func TestOwnerAgreesWithDisthash(t *testing.T) {
	var members protocluster.Members
	var addrs []string
	for i, port := range []int{41001, 41002, 41003, 52999} {
		m := &protocluster.Member{Id: fmt.Sprint("m", i), Host: "127.0.0.1", Port: int32(port), Kinds: []string{"conversation", "inbox"}}
		members = append(members, m)
		addrs = append(addrs, m.Address())
	}
	rdv := protocluster.NewRendezvous()
	rdv.UpdateMembers(members)
	seen := map[string]bool{}
	for i := range 2000 {
		id := fmt.Sprintf("cv_%x", i*7919)
		want := rdv.GetByClusterIdentity(protocluster.NewClusterIdentity(id, "conversation"))
		if got := Owner(id, addrs); got != want {
			t.Fatalf("Owner(%s) = %s, disthash places it on %s", id, got, want)
		}
		seen[want] = true
	}
	if len(seen) != len(addrs) {
		t.Fatalf("2000 identities landed on %d of %d members", len(seen), len(addrs))
	}
	// Without a member, its identities move to the next in rank.
	rest := protocluster.NewRendezvous()
	rest.UpdateMembers(members[1:])
	for i := range 500 {
		id := fmt.Sprintf("ib_%d", i)
		if got, want := Owner(id, addrs[1:]), rest.GetByClusterIdentity(protocluster.NewClusterIdentity(id, "inbox")); got != want {
			t.Fatalf("without %s: Owner(%s) = %s, disthash %s", addrs[0], id, got, want)
		}
	}
}
