package e2e

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// TestWSCrossNode: sessions on node A subscribe to an inbox and watch a
// conversation whose actors live on node B, so every new actor message
// (SubscribeInbox, Ack, InboxSubscribed, InboxUpdate, UnsubscribeInbox,
// WatchConversation, ConversationWatched, Typing, ConversationEvent,
// UnwatchConversation) crosses nodes as protobuf.
func TestWSCrossNode(t *testing.T) {
	agent := test.NewInMemAgent()
	a := testNode(t, func(c *server.Config) { c.ClusterAgent = agent })
	b := testNode(t, func(c *server.Config) { c.ClusterAgent = agent; c.DatabaseURL = a.Config().DatabaseURL })
	joined := make(chan struct{}, 1)
	defer a.Member().NotifyTopology(joined)()
	defer b.Member().NotifyTopology(joined)()
	poll.UntilSignaled(t, 20*time.Second, "the nodes to see each other", joined, func() bool {
		return len(a.Member().Members()) >= 2 && len(b.Member().Members()) >= 2
	})
	ca := api{t: t, base: a.URL()}
	tn := newTenant(t, ca, "Acme")
	k := ca.with(tn.key)
	onB := func(kind, id string) bool {
		pid := a.Member().Cluster.Get(id, kind)
		return pid != nil && pid.Address == b.Member().Address()
	}
	// An inbox owned by node B.
	inboxID := tn.inbox
	for i := 0; !onB(actors.KindInbox, inboxID); i++ {
		if i > 50 {
			t.Fatal("no inbox landed on node B")
		}
		inboxID = k.must(201, "POST", "/v1/inboxes", map[string]any{"name": "try"})["id"].(string)
	}
	// A conversation of it owned by node B.
	var convID string
	for i := 0; ; i++ {
		r := inbound(k, inboxID, phoneN(i), "hello")
		if convID = r["conversation_id"].(string); onB(actors.KindConversation, convID) {
			break
		}
		if i > 50 {
			t.Fatal("no conversation landed on node B")
		}
	}

	ag := k.must(201, "POST", "/v1/agents", map[string]any{"name": "B agent", "email": "b@example.com", "inbox_ids": []string{inboxID}})
	ws := mustWS(t, a.URL(), wsOpts{token: ag["token"].(string)})
	sub, snap := ws.subscribe(inboxID, nil)
	if snap == nil || snap.num("total") < 1 {
		t.Fatalf("snapshot %v", snap)
	}
	inbound(k, inboxID, phoneN(999), "across")
	if f := ws.expect("update"); f.num("seq") != sub.num("seq")+1 || f.str("inbox_id") != inboxID {
		t.Fatalf("update %v", f.m)
	}

	other := mustWS(t, b.URL(), wsOpts{token: tn.key})
	for _, c := range []*wsClient{ws, other} {
		c.send(map[string]any{"type": "watch", "id": "w", "conversation_id": convID})
		c.expect("watching")
		c.expectPresence(convID, ag["agent"].(map[string]any)["id"].(string))
	}
	k.must(201, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"body": "reply"})
	if f := ws.until(10*time.Second, func(f wsFrame) bool { return f.typ() == "item" }); f.obj("item")["body"] != "reply" {
		t.Fatalf("item %v", f.m)
	}
	other.expect("item")
	ws.send(map[string]any{"type": "typing", "conversation_id": convID})
	if f := other.expect("typing"); f.str("conversation_id") != convID {
		t.Fatalf("typing %v", f.m)
	}

	// Unsubscribe and unwatch: nothing more arrives.
	ws.send(map[string]any{"type": "unsubscribe", "inbox_id": inboxID})
	ws.send(map[string]any{"type": "unwatch", "conversation_id": convID})
	ws.ping("p")
	ws.until(10*time.Second, func(f wsFrame) bool { return f.typ() == "pong" }) // drains the update of the reply
	k.must(201, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"body": "unseen"})
	other.until(10*time.Second, func(f wsFrame) bool { return f.typ() == "item" })
	ws.ping("q")
	if f := ws.expect("pong"); f.str("ref") != "q" {
		t.Fatalf("frame after unsubscribe: %v", f.m)
	}
}
