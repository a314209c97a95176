package actors

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/search"
	"github.com/switchboard-dev/switchboard/search/pgsearch"
)

// TestSearchActorOneIdentityAcrossNodes runs two nodes that both keep the
// search actor alive. Whichever node is asked, pause, resume and stats reach
// the one activation; when the node holding it stops, the other node's
// keep-alive activates it there and indexing goes on.
func TestSearchActorOneIdentityAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	keepCtx, stopKeeping := context.WithCancel(ctx)
	defer stopKeeping()
	sa, sb := NewSearch(a.deps), NewSearch(b.deps)
	go sa.KeepSearchActive(keepCtx, 100*time.Millisecond)
	go sb.KeepSearchActive(keepCtx, 100*time.Millisecond)

	poll.Until(t, 20*time.Second, "the search actor to hold the indexing lock", func() bool {
		st, err := sa.Stats(ctx)
		return err == nil && st.Active
	})
	tn := newTenantIDs(t, a.store, "Search actor")
	searchable := func(text string) bool {
		res, err := pgsearch.New(a.store.Pool()).Search(ctx, search.Query{AccountID: tn.account, InboxIDs: []string{tn.inbox}, Text: text})
		return err == nil && len(res.Hits) == 1
	}
	if _, err := a.engine.command(ctx, inboundCmd(tn, "+14155550101", "first zebra", "k-1")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the first message to be indexed", func() bool { return searchable("zebra") })

	// Paused through B, seen paused through A: one actor.
	if st, err := sb.Pause(ctx); err != nil || !st.Paused {
		t.Fatalf("pause through B: %+v %v", st, err)
	}
	if st, err := sa.Stats(ctx); err != nil || !st.Paused {
		t.Fatalf("stats through A after pausing through B: %+v %v", st, err)
	}
	if _, err := a.engine.command(ctx, inboundCmd(tn, "+14155550102", "second yak", "k-2")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the paused indexer to see a backlog", func() bool {
		st, err := sa.Stats(ctx)
		return err == nil && st.Backlog > 0
	})
	if searchable("yak") {
		t.Fatal("a paused search actor indexed")
	}
	if st, err := sa.Resume(ctx); err != nil || st.Paused {
		t.Fatalf("resume through A: %+v %v", st, err)
	}
	poll.Until(t, 20*time.Second, "the resumed indexer to catch up", func() bool { return searchable("yak") })

	// The node holding the actor leaves; the survivor's keep-alive brings
	// it back there.
	holder, survivor, survivorSearch := a, b, sb
	if pid := b.node.Cluster.Get(SearchIdentity, KindSearch); pid != nil && pid.Address == b.node.Address() {
		holder, survivor, survivorSearch = b, a, sa
	}
	holder.node.Stop()
	poll.Until(t, 30*time.Second, "the search actor to be active on the surviving node", func() bool {
		pid := survivor.node.Cluster.Get(SearchIdentity, KindSearch)
		st, err := survivorSearch.Stats(ctx)
		return pid != nil && pid.Address == survivor.node.Address() && err == nil && st.Active
	})
	if _, err := survivor.engine.command(ctx, inboundCmd(tn, "+14155550103", "third quokka", "k-3")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "indexing to go on after the handover", func() bool { return searchable("quokka") })
}
