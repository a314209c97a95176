package cluster

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-dev/switchboard/cluster/suspicion"
)

// watchActorName is the actor every member runs for the others' pings. It
// does nothing: the actor runtime answers a Touch with Touched for any
// actor. Its own mailbox keeps the pings out of the placement actor's, so
// a burst of activations does not read as silence.
const watchActorName = "switchboard-watch"

type watchActor struct{}

func (watchActor) Receive(actor.Context) {}

// watchMembers pings every other member four times per SuspectAfter and
// routes around one that has not answered for SuspectAfter, until it
// answers again. A member that dies closes its connections and is routed
// around at once without this; one that freezes closes nothing, and would
// otherwise hold its identities until the membership's lease expires.
// Fencing keeps a wrong suspicion safe: the suspected member's activations
// are taken over and fail their next append.
func (n *Node) watchMembers(stop <-chan struct{}) {
	every := n.cfg.SuspectAfter / 4
	d := suspicion.New(n.cfg.SuspectAfter, every)
	var mu sync.Mutex // d, pinging
	pinging := map[string]bool{}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		peers := n.router.peers(n.System.Address())
		var ping []string
		mu.Lock()
		d.Watch(peers, now)
		suspects := d.Check(now)
		for _, p := range peers {
			if !pinging[p] { // one ping at a time: a frozen member's pile up otherwise
				pinging[p] = true
				ping = append(ping, p)
			}
		}
		mu.Unlock()
		for _, addr := range suspects {
			if n.router.lost(addr) { // not when its connection closed already
				n.log.Warn("cluster member silent: its identities go to the next member until it answers",
					"member", addr, "silent_for", n.cfg.SuspectAfter)
			}
		}
		for _, addr := range ping {
			f := n.System.Root.RequestFuture(actor.NewPID(addr, watchActorName), &actor.Touch{}, n.cfg.SuspectAfter)
			go func() {
				// Any answer, a dead letter's too (a member without the
				// watch actor), shows the member's runtime is running.
				_, err := f.Result()
				mu.Lock()
				delete(pinging, addr)
				recovered := err == nil && d.Answered(addr, time.Now())
				mu.Unlock()
				if recovered {
					n.log.Info("cluster member answers again", "member", addr)
					n.router.connected(addr)
				}
			}()
		}
	}
}
