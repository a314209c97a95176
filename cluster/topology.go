package cluster

import (
	protocluster "github.com/asynkron/protoactor-go/cluster"
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
