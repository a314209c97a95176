package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// TestClosedListBeyondMemory: an inbox that keeps two closed conversations
// in memory lists all of its closed ones, paging from memory into the read
// model, in every sort — the order and set the read model itself gives.
func TestClosedListBeyondMemory(t *testing.T) {
	n, tn, ctx, run := soloNode(t, Config{ClosedKept: 2}, "ClosedBeyond")
	for i := range 7 {
		phone := fmt.Sprintf("+1415555%04d", 100+i)
		run(inboundCmd(tn, phone, "hi", ""))
		if i != 3 { // one stays open
			run(closeCmd(tn, phone))
		}
	}
	truth := func(order, where string) []string {
		rows, err := n.store.Pool().Query(ctx, `SELECT id FROM conversations WHERE inbox_id = $1 AND `+where+` ORDER BY `+order, tn.inbox)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	list := func(q inbox.Query) []string {
		t.Helper()
		var ids []string
		for range 20 {
			convs, next := n.list(ctx, t, tn, q)
			for _, c := range convs {
				ids = append(ids, c.ID)
			}
			if next == "" {
				return ids
			}
			q.Cursor = next
		}
		t.Fatalf("%+v: no end after 20 pages", q)
		return nil
	}
	// The inbox sees the last close once the summary arrives.
	onlyClosed := []conversation.Status{conversation.StatusClosed}
	awaitClosed(ctx, t, n, tn, 6)

	recent := truth(`last_activity_at DESC, id COLLATE "C"`, `status = 'closed'`)
	if len(recent) != 6 {
		t.Fatalf("read model has %d closed conversations, want 6", len(recent))
	}
	if got := list(inbox.Query{Statuses: onlyClosed, Limit: 2}); !slices.Equal(got, recent) {
		t.Fatalf("closed, recent, by 2:\n got  %v\n want %v", got, recent)
	}
	oldest := truth(`last_activity_at, id COLLATE "C"`, `true`)
	all := []conversation.Status{conversation.StatusNew, conversation.StatusOpen, conversation.StatusPending, conversation.StatusClosed}
	if got := list(inbox.Query{Statuses: all, Sort: inbox.SortOldest, Limit: 3}); !slices.Equal(got, oldest) {
		t.Fatalf("all, oldest, by 3:\n got  %v\n want %v", got, oldest)
	}
	wait := truth(`waiting_since NULLS LAST, id COLLATE "C"`, `true`)
	if got := list(inbox.Query{Statuses: all, Sort: inbox.SortLongestWait, Limit: 4}); !slices.Equal(got, wait) {
		t.Fatalf("all, longest_wait, by 4:\n got  %v\n want %v", got, wait)
	}
	// The default list (no closed) is served from memory alone, unchanged.
	if got := list(inbox.Query{}); !slices.Equal(got, truth(`id`, `status <> 'closed'`)) {
		t.Fatalf("default list %v", got)
	}
}

// TestClosedListRowsReadBeforeAClose: the read model's rows read for the
// inbox's read_closed answer, then a close the inbox applies before it gets
// them (an idle conversation, closed with its old activity, is evicted at
// once, so the rows lack it): the inbox refuses them, and the engine's
// list, which reads again, has it.
func TestClosedListRowsReadBeforeAClose(t *testing.T) {
	n, tn, ctx, run := soloNode(t, Config{ClosedKept: 1}, "ClosedWhileRead")
	x, b, a := "+14155550001", "+14155550002", "+14155550003"
	run(inboundCmd(tn, x, "hi", "")) // stays open for now: the oldest activity
	run(inboundCmd(tn, b, "hi", ""))
	run(closeCmd(tn, b))
	run(inboundCmd(tn, a, "hi", ""))
	run(closeCmd(tn, a)) // a held, b evicted
	awaitClosed(ctx, t, n, tn, 2)
	q := inbox.Query{Statuses: []conversation.Status{conversation.StatusClosed}}
	ask := func(rows *actorpb.ClosedRows) *actorpb.ConversationPage {
		t.Helper()
		p, err := request[*actorpb.ConversationPage](ctx, n.deps, KindInbox, tn.inbox,
			&actorpb.ListConversations{AccountId: tn.account, InboxId: tn.inbox, Filter: filterPB(q), Closed: rows})
		if err != nil || p.Error != nil {
			t.Fatal(err, p.Error)
		}
		return p
	}
	first := ask(nil)
	if !first.ReadClosed {
		t.Fatalf("an inbox holding 1 of 2 closed conversations answered without them: %+v", first)
	}
	rows, err := n.engine.closedRows(ctx, tn.account, tn.inbox, "", q, 0, first.Epoch, first.Seq) // a, b
	if err != nil {
		t.Fatal(err)
	}
	run(closeCmd(tn, x))
	awaitClosed(ctx, t, n, tn, 3)
	if p := ask(rows); !p.ReadClosed {
		t.Fatalf("rows read before x closed were taken: %s at seq %d", p.ConversationsJson, p.Seq)
	}
	convs, _ := n.list(ctx, t, tn, q)
	if len(convs) != 3 || !slices.ContainsFunc(convs, func(s conversation.Summary) bool { return s.ID == convID(tn.inbox, x) }) {
		t.Fatalf("the engine's list: %+v, want a, x, b", convs)
	}
}

// awaitClosed waits for the inbox to count want closed conversations: the
// conversation answers first and then tells its inbox.
func awaitClosed(ctx context.Context, t *testing.T, n *tnode, tn tenantIDs, want int) {
	t.Helper()
	poll.Until(t, 10*time.Second, fmt.Sprintf("the inbox to count %d closed", want), func() bool {
		raw, _, _, err := n.engine.Counts(ctx, tn.account, tn.inbox, "")
		var c struct{ Closed int }
		return err == nil && json.Unmarshal(raw, &c) == nil && c.Closed == want
	})
}
