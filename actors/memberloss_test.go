package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// A member that dies between a conversation's commit and the delivery of
// its summary, with no caller retrying, leaves the inbox (on another node)
// one version behind. The inbox's node catches up with the read model when
// it loses the member: the list, the counts and a live subscriber all get
// the missing version, with no further command to the conversation.
func TestInboxCatchesUpAfterMemberLoss(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An inbox on A, a conversation of it on B.
	var tn tenantIDs
	for i := 0; tn.inbox == ""; i++ {
		if i > 64 {
			t.Fatal("could not place an inbox on A")
		}
		if c := newTenantIDs(t, a.store, fmt.Sprintf("Loss%d", i)); a.owner(KindInbox, c.inbox) == a.node.Address() {
			tn = c
		}
	}
	phone := ""
	for i := 0; phone == ""; i++ {
		if i > 64 {
			t.Fatal("could not place a conversation on B")
		}
		if p := fmt.Sprintf("+1415555%04d", 4000+i); a.owner(KindConversation, convID(tn.inbox, p)) == b.node.Address() {
			phone = p
		}
	}
	id := convID(tn.inbox, phone)
	a.must(ctx, t, inboundCmd(tn, phone, "hello", ""))
	held := func() conversation.Summary {
		convs, _ := a.list(ctx, t, tn, inbox.Query{Statuses: []conversation.Status{conversation.StatusNew,
			conversation.StatusOpen, conversation.StatusPending, conversation.StatusClosed}})
		for _, c := range convs {
			if c.ID == id {
				return c
			}
		}
		return conversation.Summary{}
	}
	poll.Until(t, 10*time.Second, "the inbox to hold version 1", func() bool { return held().Version == 1 })

	// A subscriber on A.
	type update struct {
		*actorpb.InboxUpdate
		at time.Time
	}
	got := make(chan update, 16)
	session, err := a.node.System.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if u, ok := c.Message().(*actorpb.InboxUpdate); ok {
			got <- update{u, time.Now()}
		}
	}), "loss-session")
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.node.Request(ctx, KindInbox, tn.inbox, &actorpb.SubscribeInbox{AccountId: tn.account, InboxId: tn.inbox,
		AgentId: "ag_1", Subscriber: pbPID(session), SubscriptionId: 1, Filter: &actorpb.ListFilter{}})
	if err != nil || res.(*actorpb.Ack).Error != nil {
		t.Fatalf("subscribe: %v %v", err, res)
	}

	// B commits the close and never tells the inbox: every delivery fails,
	// the last attempt as B stops too.
	fault := func(*actorpb.SummaryChanged) error { return errors.New("injected: node dying") }
	b.deps.deliveryFault.Store(&fault)
	a.must(ctx, t, closeCmd(tn, phone))
	if s := held(); s.Version != 1 || s.Status == conversation.StatusClosed {
		t.Fatalf("before B stops the inbox holds v%d %s: the fault did not hold the close back", s.Version, s.Status)
	}
	repairedBefore := testutil.ToFloat64(a.deps.Metrics.InboxRepairs)
	stopping := time.Now()
	b.node.Stop()
	stopped := time.Since(stopping)

	select {
	case u := <-got:
		t.Logf("repaired %v after B began to stop (its stop took %v)",
			u.at.Sub(stopping).Round(time.Millisecond), stopped.Round(time.Millisecond))
		if u.ConversationId != id || u.Version != 2 || !strings.Contains(string(u.FrameJson), `"status":"closed"`) {
			t.Fatalf("the subscriber's update: %v", u)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no update reached the subscriber within 30 s of B stopping")
	}
	if s := held(); s.Version != 2 || s.Status != conversation.StatusClosed {
		t.Fatalf("after the catch-up the inbox holds v%d %s, want v2 closed", s.Version, s.Status)
	}
	raw, _, _, err := a.engine.Counts(ctx, tn.account, tn.inbox, "")
	if err != nil {
		t.Fatal(err)
	}
	var counts inbox.Counts
	if err := json.Unmarshal(raw, &counts); err != nil {
		t.Fatal(err)
	}
	if counts.New+counts.Open+counts.Pending != 0 || counts.Closed != 1 {
		t.Fatalf("counts after the catch-up: %s, want only closed 1", raw)
	}
	if n := testutil.ToFloat64(a.deps.Metrics.InboxRepairs) - repairedBefore; n != 1 {
		t.Fatalf("repairs counted: %v, want 1", n)
	}
}
