package cluster

import "fmt"

// Send delivers msg one-way to the virtual actor (kind, identity), looking
// up (or activating) its owner. Nothing confirms delivery: use it only for
// messages whose loss is harmless, like typing indicators.
func (n *Node) Send(kind, identity string, msg any) error {
	owner := n.router.owner(kind, identity, nil)
	if owner == "" {
		return fmt.Errorf("cluster: send %s/%s: %w", kind, identity, ErrUnavailable)
	}
	pid, err := n.activate(owner, kind, identity, n.cfg.LookupTimeout)
	if err != nil {
		return fmt.Errorf("cluster: send %s/%s: %w: %w", kind, identity, ErrUnavailable, err)
	}
	n.System.Root.Send(pid, msg)
	return nil
}
