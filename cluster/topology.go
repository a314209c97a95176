package cluster

import (
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
)

// NotifyTopology signals ch after each membership change this node applies,
// until stop is called. Members already reflects the change when the signal
// arrives (the library publishes the topology after updating its member
// list). The send never blocks: give ch a buffer of one and changes that
// arrive while a signal is pending coalesce into it, so a slow reader never
// holds up the event stream. One channel may serve several nodes.
func (n *Node) NotifyTopology(ch chan<- struct{}) (stop func()) {
	sub := n.System.EventStream.Subscribe(func(ev any) {
		if _, ok := ev.(*protocluster.ClusterTopology); !ok {
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	return func() { n.System.EventStream.Unsubscribe(sub) }
}

// NotifyMemberLost signals ch each time this node loses another member: its
// connection closes (a dead member's, at once) or it leaves the membership
// (when its lease expires). Either can mean a member died with work it had
// committed and not yet announced. Like NotifyTopology, the send never
// blocks and signals coalesce.
func (n *Node) NotifyMemberLost(ch chan<- struct{}) (stop func()) {
	sub := n.System.EventStream.Subscribe(func(ev any) {
		switch ev := ev.(type) {
		case *remote.EndpointTerminatedEvent:
		case *protocluster.ClusterTopology:
			if len(ev.Left) == 0 {
				return
			}
		default:
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	return func() { n.System.EventStream.Unsubscribe(sub) }
}
