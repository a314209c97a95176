package cluster

import (
	"slices"
	"sync"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
)

// router is this node's view of where identities live, ahead of the
// membership. A SIGKILLed member's connections close at once, but the
// membership drops it only when its etcd lease (3 s) expires, and the
// library's lookup asks the dead owner for 5 s meanwhile. The router hears
// the connection close (remote's EndpointTerminatedEvent) and places the
// member's identities where the cluster will move them anyway: the next
// owner in rendezvous rank. Fencing in PostgreSQL keeps that safe if the
// member was alive after all (its activation is fenced, the request is
// retried), and hearing the member connect again puts it back.
type router struct {
	mu      sync.Mutex
	members []*protocluster.Member // the latest topology
	links   map[string]*link       // by member address; absent: up, none waited on
}

// link is one connection's life: lost closes when it ends.
type link struct {
	lost chan struct{}
	down bool
}

func newRouter() *router {
	return &router{links: map[string]*link{}}
}

// observe applies an event of the actor system's event stream.
func (r *router) observe(ev any) {
	switch ev := ev.(type) {
	case *protocluster.ClusterTopology:
		r.setMembers(ev.Members)
	case *remote.EndpointTerminatedEvent:
		r.lost(ev.Address)
	case *remote.EndpointConnectedEvent:
		r.connected(ev.Address)
	}
}

func (r *router) setMembers(members []*protocluster.Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = members
	// A member that left is lost to whoever still waits on it; forgetting
	// it lets a member that joins on the same address start up.
	for addr, l := range r.links {
		if !slices.ContainsFunc(members, func(m *protocluster.Member) bool { return m.Address() == addr }) {
			if !l.down {
				close(l.lost)
			}
			delete(r.links, addr)
		}
	}
}

// lost marks addr down; it reports false when it already was.
func (r *router) lost(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.links[addr]
	switch {
	case l == nil:
		l = &link{lost: make(chan struct{})}
		r.links[addr] = l
	case l.down:
		return false
	}
	close(l.lost)
	l.down = true
	return true
}

func (r *router) connected(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.links[addr]; l != nil && l.down {
		delete(r.links, addr)
	}
}

// lostSignal is closed once the connection to addr is lost (at once if it
// is down now).
func (r *router) lostSignal(addr string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.links[addr]
	if l == nil {
		l = &link{lost: make(chan struct{})}
		r.links[addr] = l
	}
	return l.lost
}

// peers are the addresses of the members other than self.
func (r *router) peers(self string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.members))
	for _, m := range r.members {
		if a := m.Address(); a != self {
			out = append(out, a)
		}
	}
	return out
}

// owner is the address to activate (kind, identity) on: the rendezvous
// owner among the members of that kind whose connection is up, leaving out
// the addresses in skip. "" when there is none.
func (r *router) owner(kind, identity string, skip []string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, bestScore := "", uint32(0)
	for _, m := range r.members {
		if !m.HasKind(kind) {
			continue
		}
		addr := m.Address()
		if l := r.links[addr]; (l != nil && l.down) || slices.Contains(skip, addr) {
			continue
		}
		if s := score(identity, addr); best == "" || s > bestScore {
			best, bestScore = addr, s
		}
	}
	return best
}
