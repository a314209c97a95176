package actors

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// Summaries an inbox did not acknowledge are delivered again once it can
// take them: after an injected delivery outage the inbox's list converges to
// the read model, and its closed count stays exact although one
// conversation's version 1 never reached it.
func TestInboxConvergesAfterDeliveryFailure(t *testing.T) {
	n, tn, ctx, run := soloNode(t, Config{ClosedKept: 1}, "Stale")
	replyTo := func(phone, body string) *actorpb.ConversationCommand {
		return &actorpb.ConversationCommand{ConversationId: convID(tn.inbox, phone), AccountId: tn.account, InboxId: tn.inbox,
			Command: &actorpb.ConversationCommand_Reply{Reply: &actorpb.Reply{Body: body}}}
	}
	// Two closed conversations, one of them evicted (ClosedKept 1), and
	// one open: the inbox holds x2 and c1 and counts x1 as not held.
	for _, p := range []string{"+14155550001", "+14155550002"} {
		run(inboundCmd(tn, p, "hi", ""))
		run(closeCmd(tn, p))
	}
	const c1, c2 = "+14155550011", "+14155550012"
	run(inboundCmd(tn, c1, "hello", ""))
	held := func() map[string]int64 {
		convs, _ := n.list(ctx, t, tn, inbox.Query{Statuses: []conversation.Status{conversation.StatusNew, conversation.StatusOpen, conversation.StatusPending, conversation.StatusClosed}, Limit: 200})
		out := map[string]int64{}
		for _, c := range convs {
			out[c.ID] = c.Version
		}
		return out
	}
	// The conversation answers first and then tells its inbox.
	poll.Until(t, 10*time.Second, "the inbox to hold c1 at version 1 before the outage", func() bool {
		return held()[convID(tn.inbox, c1)] == 1
	})

	// The outage: every delivery fails. c1 gets a reply (v2); c2 is new and
	// its version 1 is superseded by version 2 before the inbox sees either.
	var failing atomic.Bool
	failing.Store(true)
	fault := func(*actorpb.SummaryChanged) error {
		if failing.Load() {
			return errors.New("injected: inbox unreachable")
		}
		return nil
	}
	n.deps.deliveryFault.Store(&fault)
	failedBefore := testutil.ToFloat64(n.deps.Metrics.InboxDelivery.WithLabelValues("failed"))
	run(replyTo(c1, "on it"))
	run(inboundCmd(tn, c2, "anyone?", ""))
	run(replyTo(c2, "yes"))
	poll.Until(t, 10*time.Second, "redeliveries to fail while the fault lasts", func() bool {
		return testutil.ToFloat64(n.deps.Metrics.InboxDelivery.WithLabelValues("failed")) >= failedBefore+5
	})
	if h := held(); h[convID(tn.inbox, c1)] != 1 || h[convID(tn.inbox, c2)] != 0 {
		t.Fatalf("during the outage the inbox holds %v: the fault did not hold deliveries back", h)
	}

	// Recovery: the inbox converges to the read model with no further
	// event of either conversation.
	failing.Store(false)
	recovered := time.Now()
	readModel := func() map[string]int64 {
		rows, err := n.store.Pool().Query(ctx, `SELECT id, version FROM conversations WHERE inbox_id = $1`, tn.inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			out[id] = v
		}
		return out
	}
	want := readModel()
	poll.Until(t, 10*time.Second, "the inbox to converge to the read model", func() bool {
		h := held()
		for id, v := range want {
			if hv, ok := h[id]; !ok || hv != v {
				return false // x1 (closed, evicted) is listed from the read model
			}
		}
		return true
	})
	t.Logf("converged %v after the fault cleared", time.Since(recovered).Round(time.Millisecond))
	raw, _, _, err := n.engine.Counts(ctx, tn.account, tn.inbox, "")
	if err != nil {
		t.Fatal(err)
	}
	var counts struct{ Open, Closed int }
	if err := json.Unmarshal(raw, &counts); err != nil {
		t.Fatal(err)
	}
	if counts.Open != 2 || counts.Closed != 2 {
		t.Fatalf("counts %s, want open 2 (c1, c2) and closed 2 (x1 not held, x2)", raw)
	}
}

// An activation that stops with a summary its inbox never acknowledged (its
// node lost, say) leaves the repair to the next activation: its first
// command, whatever it is, sends the restored summary to the inbox.
func TestNewActivationAnnouncesItsSummary(t *testing.T) {
	n, tn, ctx, _ := soloNode(t, Config{}, "Announce")
	const phone = "+14155550021"
	id := convID(tn.inbox, phone)
	if _, err := n.engine.command(ctx, inboundCmd(tn, phone, "first", "")); err != nil {
		t.Fatal(err)
	}
	inboxVersion := func() int64 {
		convs, _ := n.list(ctx, t, tn, inbox.Query{})
		for _, c := range convs {
			if c.ID == id {
				return c.Version
			}
		}
		return 0
	}
	// The conversation answers first and then tells its inbox.
	poll.Until(t, 10*time.Second, "the inbox to hold version 1", func() bool { return inboxVersion() == 1 })

	fault := func(*actorpb.SummaryChanged) error { return errors.New("injected: inbox unreachable") }
	n.deps.deliveryFault.Store(&fault)
	if _, err := n.engine.command(ctx, inboundCmd(tn, phone, "second", "")); err != nil {
		t.Fatal(err)
	}
	// The activation goes away with version 2 undelivered (its last attempt
	// fails too), as if its node had died.
	pid := n.node.Cluster.Get(id, KindConversation)
	if err := n.node.System.Root.PoisonFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	n.deps.deliveryFault.Store(nil)
	if v := inboxVersion(); v != 1 {
		t.Fatalf("inbox holds version %d before the repair, want 1 (the fault held version 2 back)", v)
	}
	// A read is enough: the new activation announces what it restored.
	if _, err := n.engine.command(ctx, getCmd(tn, id)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the inbox to receive version 2", func() bool { return inboxVersion() == 2 })
}
