package cluster

import (
	"fmt"
	"strings"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
)

// Heartbeat is what a member last said about itself in its gossip
// heartbeat: its live activations per kind.
type Heartbeat struct {
	// Activations counts the member's live activations by kind name. The
	// library counts them in its placement actor (one more per spawn, one
	// less per terminated activation), which is where every activation of
	// ours starts, whether through Request or the library's own lookup.
	Activations map[string]int64
	// Age is how long ago this node last merged a newer heartbeat of the
	// member: members publish one every gossip interval (300 ms), so an
	// age of seconds means the numbers are stale.
	Age time.Duration
}

// Heartbeats returns, by member id (as Members names them), the latest
// heartbeat this node has from every other current member it has heard
// from. This node's own is left out: the gossip actor rewrites it in place
// while a reader may hold it, and the node knows its own counts first-hand.
// Gossip carries it anyway, so reading it costs one local request to the
// gossip actor and nothing on the wire; the price is that a count is up to
// about one gossip interval (plus a hop per member in between) old.
func (n *Node) Heartbeats() (map[string]Heartbeat, error) {
	state, err := n.Cluster.Gossip.GetState(protocluster.HeartbeatKey)
	if err != nil {
		return nil, fmt.Errorf("cluster: read gossip heartbeats: %w", err)
	}
	now := time.Now()
	out := map[string]Heartbeat{}
	for _, m := range n.Cluster.MemberList.Members().Members() {
		key := gossipKey(m.Id)
		if key == n.System.ID {
			continue
		}
		kv := state[key]
		if kv == nil || kv.Value == nil {
			continue // joined a moment ago: nothing heard yet
		}
		var hb protocluster.MemberHeartbeat
		if err := kv.Value.UnmarshalTo(&hb); err != nil {
			return nil, fmt.Errorf("cluster: heartbeat of %s: %w", m.Id, err)
		}
		counts := map[string]int64{}
		for kind, c := range hb.GetActorStatistics().GetActorCount() {
			counts[kind] = c
		}
		out[m.Id] = Heartbeat{
			Activations: counts,
			Age:         max(0, now.Sub(time.UnixMilli(kv.LocalTimestampUnixMilliseconds))),
		}
	}
	return out, nil
}

// gossipKey is the key gossip files a member's state under: its actor
// system id, which some providers (etcd) prefix with "<cluster>@" to name
// the member.
func gossipKey(memberID string) string {
	return memberID[strings.LastIndex(memberID, "@")+1:]
}

// Self is this node as the member list names it, and false before it has
// joined. Its id carries the provider's "<cluster>@" prefix where there is
// one, unlike ID.
func (n *Node) Self() (Member, bool) {
	for _, m := range n.Members() {
		if gossipKey(m.ID) == n.System.ID || m.Address == n.Address() {
			return m, true
		}
	}
	return Member{}, false
}

// NotifyHeartbeats signals ch each time this node merges a newer heartbeat
// of another member, until stop is called; like NotifyTopology, the send
// never blocks and pending signals coalesce. Heartbeats reflects the update
// when the signal arrives (the gossip actor publishes after merging).
func (n *Node) NotifyHeartbeats(ch chan<- struct{}) (stop func()) {
	sub := n.System.EventStream.Subscribe(func(ev any) {
		if u, ok := ev.(*protocluster.GossipUpdate); !ok || u.Key != protocluster.HeartbeatKey {
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	return func() { n.System.EventStream.Unsubscribe(sub) }
}
