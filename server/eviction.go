package server

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/cluster/eviction"
	"github.com/switchboard-dev/switchboard/persistence"
)

// evictionEvery is how often a member publishes its view of the cluster
// and reads the others'; evictionFresh how recent a view must be to count
// (a stopped, killed or paused member's last view must not for long);
// evictionRounds how many rounds in a row a conflict must be found before
// the member leaves: views change one member at a time, and the members
// of a cluster notice a paused one a second or two apart. Rounds × Every
// exceeds Fresh, so that the last view of a member killed outright, which
// the others block while it still counts, expires before anyone acts on it.
const (
	evictionEvery  = time.Second
	evictionFresh  = 3 * time.Second
	evictionRounds = 5
)

// watchEviction publishes this member's view of the cluster every
// evictionEvery and fails the node once another member, on the larger side
// of a split, has blocked it (cluster/eviction): it can never rejoin under
// its id, and every read it served from then on could be stale. Failing
// makes `switchboard serve` stop gracefully and exit 1, for its supervisor
// to start it again, under a new id. A database that does not answer
// decides nothing: the next round asks again. It retracts the member's view
// when it returns.
func (n *Node) watchEviction(ctx context.Context) {
	t := time.NewTicker(evictionEvery)
	defer t.Stop()
	// On the way out (a stop, or this member leaving): the others block a
	// member that left, and its last view must not read as a split.
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.store.RetractClusterView(rctx, n.cfg.ClusterName, n.member.ID()); err != nil {
			n.log.Warn("could not retract this member's view of the cluster; it expires", "err", err)
		}
	}()
	detector := eviction.Detector{Rounds: evictionRounds}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		self := n.member.View()
		published, err := n.store.PublishClusterView(ctx, n.cfg.ClusterName,
			persistence.ClusterView{MemberID: self.ID, Members: self.Members, Blocked: self.Blocked}, evictionFresh)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("could not publish this member's view of the cluster; split detection waits for the database", "err", err)
			}
			continue
		}
		peers := make([]eviction.View, len(published))
		for i, p := range published {
			peers[i] = eviction.View{ID: p.MemberID, Members: p.Members, Blocked: p.Blocked}
		}
		if with, leave := detector.Observe(self, peers); leave {
			n.fail(fmt.Errorf("member %s of the cluster has blocked this member (%s) for good, after it missed its health checks or heartbeats (paused, or cut off), "+
				"and the cluster has split around it: it cannot rejoin under its id, so it stops; start it again (run it under a supervisor that restarts it)", with, self.ID))
			return
		}
	}
}
