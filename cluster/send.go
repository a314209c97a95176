package cluster

import "fmt"

// Send delivers msg one-way to the virtual actor (kind, identity), looking
// up (or activating) its owner. Nothing confirms delivery: use it only for
// messages whose loss is harmless, like typing indicators.
func (n *Node) Send(kind, identity string, msg any) error {
	pid := n.Cluster.Get(identity, kind)
	if pid == nil {
		return fmt.Errorf("cluster: send %s/%s: %w", kind, identity, ErrUnavailable)
	}
	n.System.Root.Send(pid, msg)
	return nil
}
