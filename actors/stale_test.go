package actors

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// staleSummary is a conversation summary at a version, whose other fields
// differ by version so that a stale overwrite would show.
func staleSummary(tn tenantIDs, id string, version int64, status conversation.Status, body string) conversation.Summary {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(version) * time.Minute)
	return conversation.Summary{
		ID: id, AccountID: tn.account, InboxID: tn.inbox,
		Contact: conversation.Contact{ID: "ct_x", Phone: "+14155550199"},
		Status:  status, Channel: conversation.ChannelSMS, Tags: []string{},
		LastMessage:    &conversation.LastMessage{ID: "msg_" + body, Seq: version, Direction: conversation.Inbound, Kind: conversation.KindMessage, Body: body, CreatedAt: at},
		LastActivityAt: at, WaitingSince: &at, Version: version,
	}
}

func summaryChanged(t *testing.T, s conversation.Summary) *actorpb.SummaryChanged {
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return &actorpb.SummaryChanged{AccountId: s.AccountID, InboxId: s.InboxID, ConversationId: s.ID, Version: s.Version, SummaryJson: raw,
		Summary: summaryFields(&s)}
}

// TestStaleNeverOverwritesFresh delivers a conversation's summaries out of
// order to the inbox actor and to the read model: both keep the higher
// version (docs/architecture.md, invariant 5).
func TestStaleNeverOverwritesFresh(t *testing.T) {
	url := newDatabase(t)
	n := startNode(t, url, nil, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	list := func(tn tenantIDs) []conversation.Summary {
		t.Helper()
		res, err := n.node.Request(ctx, KindInbox, tn.inbox, &actorpb.ListConversations{AccountId: tn.account, InboxId: tn.inbox, Filter: &actorpb.ListFilter{Statuses: []string{"new", "open", "pending", "closed"}}})
		if err != nil {
			t.Fatal(err)
		}
		page := res.(*actorpb.ConversationPage)
		if page.Error != nil {
			t.Fatalf("list: %v", page.Error)
		}
		var out []conversation.Summary
		if err := json.Unmarshal(page.ConversationsJson, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	deliver := func(s conversation.Summary) *actorpb.SummaryAck {
		t.Helper()
		res, err := n.node.Request(ctx, KindInbox, s.InboxID, summaryChanged(t, s))
		if err != nil {
			t.Fatal(err)
		}
		return res.(*actorpb.SummaryAck)
	}

	t.Run("inbox actor", func(t *testing.T) {
		tn := newTenantIDs(t, n.store, "StaleInbox")
		id := "cv_stale_inbox"
		v5 := staleSummary(tn, id, 5, conversation.StatusOpen, "fresh")
		v3 := staleSummary(tn, id, 3, conversation.StatusNew, "stale")
		ack5 := deliver(v5)
		if !ack5.Applied || ack5.Seq != 1 {
			t.Fatalf("v5: %v, want applied at seq 1", ack5)
		}
		for _, s := range []conversation.Summary{v3, v5} { // older, then the same again
			if ack := deliver(s); ack.Applied || ack.Seq != 0 {
				t.Fatalf("v%d after v5: %v, want not applied", s.Version, ack)
			}
		}
		got := list(tn)
		if len(got) != 1 || got[0].Version != 5 || got[0].Status != conversation.StatusOpen || got[0].LastMessage.Body != "fresh" {
			t.Fatalf("list after v5, v3: %+v", got)
		}
		res, err := n.node.Request(ctx, KindInbox, tn.inbox, &actorpb.GetCounts{AccountId: tn.account, InboxId: tn.inbox})
		if err != nil {
			t.Fatal(err)
		}
		counts := res.(*actorpb.InboxCounts)
		var c map[string]int64
		if err := json.Unmarshal(counts.CountsJson, &c); err != nil {
			t.Fatal(err)
		}
		if c["open"] != 1 || c["new"] != 0 || counts.Seq != 1 {
			t.Fatalf("counts after v5, v3: %s seq %d", counts.CountsJson, counts.Seq)
		}
	})

	t.Run("inbox actor rebuilt from the read model", func(t *testing.T) {
		// The read model holds v5 before the inbox activates; a late v3 is
		// the first message the activation sees.
		tn := newTenantIDs(t, n.store, "StaleRebuild")
		id := "cv_stale_rebuild"
		v5 := staleSummary(tn, id, 5, conversation.StatusPending, "fresh")
		if ok, err := n.store.ApplySummary(ctx, v5, "phone:+14155550199"); err != nil || !ok {
			t.Fatalf("read model v5: %v %v", ok, err)
		}
		if ack := deliver(staleSummary(tn, id, 3, conversation.StatusNew, "stale")); ack.Applied {
			t.Fatalf("late v3 applied over the rebuilt v5: %v", ack)
		}
		if got := list(tn); len(got) != 1 || got[0].Version != 5 || got[0].Status != conversation.StatusPending {
			t.Fatalf("list: %+v", got)
		}
	})

	t.Run("read model", func(t *testing.T) {
		tn := newTenantIDs(t, n.store, "StaleReadModel")
		id := "cv_stale_model"
		v5 := staleSummary(tn, id, 5, conversation.StatusOpen, "fresh")
		if ok, err := n.store.ApplySummary(ctx, v5, "phone:+14155550199"); err != nil || !ok {
			t.Fatalf("v5: applied %v, %v", ok, err)
		}
		var before []byte
		if err := n.store.Pool().QueryRow(ctx, `SELECT row_to_json(c)::text FROM conversations c WHERE id = $1`, id).Scan(&before); err != nil {
			t.Fatal(err)
		}
		for _, s := range []conversation.Summary{staleSummary(tn, id, 3, conversation.StatusClosed, "stale"), v5} {
			ok, err := n.store.ApplySummary(ctx, s, "phone:+14155550199")
			if err != nil || ok {
				t.Fatalf("v%d after v5: applied %v, %v; want not applied", s.Version, ok, err)
			}
		}
		var after []byte
		if err := n.store.Pool().QueryRow(ctx, `SELECT row_to_json(c)::text FROM conversations c WHERE id = $1`, id).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if string(after) != string(before) {
			t.Fatalf("row changed by a stale summary:\nbefore %s\nafter  %s", before, after)
		}
		got, err := n.store.GetSummary(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 5 || got.Status != conversation.StatusOpen || got.LastMessage.Body != "fresh" {
			t.Fatalf("read model summary: %+v", got)
		}
	})
}
