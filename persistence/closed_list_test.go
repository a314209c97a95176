package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
)

// TestClosedConversationsOrderLikeTheInbox: for every sort and filter, the
// read model's closed conversations after any page's cursor are exactly
// what an inbox holding all of them lists next — same order, ties by id
// bytewise (ids whose order differs under a language collation included),
// times to the microsecond. The inbox is the oracle: its order is the API's.
func TestClosedConversationsOrderLikeTheInbox(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := []string{"a", "B", "b-c", "bc", "b_c", "Z", "z", "é", "e", "a b", "a-b", "ab"}
	for i := range 60 {
		ids = append(ids, fmt.Sprintf("cv_%02d", i))
	}
	var all []conversation.Summary
	for _, id := range ids {
		sum := testAppend(id, 1, 1, nil).Summary
		sum.Status = conversation.StatusClosed
		sum.Tags = []string{}
		// Few distinct times, so ties are common; microseconds kept.
		sum.LastActivityAt = base.Add(time.Duration(rng.IntN(6))*time.Minute + time.Duration(rng.IntN(2))*time.Microsecond)
		if rng.IntN(3) == 0 {
			w := base.Add(time.Duration(rng.IntN(3)) * time.Minute)
			sum.WaitingSince = &w
		}
		if rng.IntN(3) == 0 {
			d := base.Add(time.Duration(rng.IntN(3))*time.Hour + 7*time.Microsecond)
			sum.SLADueAt = &d
		}
		if rng.IntN(2) == 0 {
			a := fmt.Sprintf("ag_%d", rng.IntN(2))
			sum.AssigneeID = &a
		}
		if rng.IntN(2) == 0 {
			sum.Tags = []string{"vip"}
		}
		sum.Addressed = rng.IntN(2) == 0
		if rng.IntN(2) == 0 {
			sum.Channel = conversation.ChannelSMS
		}
		if _, err := s.ApplySummary(ctx, sum, "handle:"+id); err != nil {
			t.Fatal(err)
		}
		all = append(all, sum)
	}
	// Another inbox's and another account's closed conversations, and an
	// open one: never listed.
	for i, ib := range []string{"ib_other", "ib_t", "ib_t"} {
		sum := testAppend(fmt.Sprintf("cv_x%d", i), 1, 1, nil).Summary
		sum.InboxID, sum.Status = ib, conversation.StatusClosed
		if i == 1 {
			sum.AccountID = "acc_other"
		}
		if i == 2 {
			sum.Status = conversation.StatusOpen
		}
		if _, err := s.ApplySummary(ctx, sum, "handle:"+sum.ID); err != nil {
			t.Fatal(err)
		}
	}
	oracle := inbox.New("ib_t", "e1", inbox.Config{ClosedKept: len(all)})
	oracle.Load(nil, all, len(all))

	yes := true
	closed := []conversation.Status{conversation.StatusClosed}
	for _, sort := range []inbox.Sort{inbox.SortRecent, inbox.SortOldest, inbox.SortLongestWait, inbox.SortSLADue} {
		for _, q := range []inbox.Query{
			{Statuses: closed},
			{Statuses: closed, Tag: "vip", Channel: conversation.ChannelSMS},
			{Statuses: closed, Assignee: inbox.AssigneeNone, Addressed: &yes},
			{Statuses: closed, Assignee: "ag_1"},
		} {
			q.Sort, q.Limit = sort, 7
			for page := 0; ; page++ {
				cq, ok, err := q.ClosedQuery("")
				if err != nil || !ok {
					t.Fatalf("%+v: closed query %v %v", q, ok, err)
				}
				raw, n, err := s.ClosedConversations(ctx, "acc_t", "ib_t", cq)
				if err != nil {
					t.Fatal(err)
				}
				var got []conversation.Summary
				if err := json.Unmarshal(raw, &got); err != nil || len(got) != n {
					t.Fatalf("rows %s (%d): %v", raw, n, err)
				}
				f, so, limit, cur, _ := q.Resolve("")
				want, err := oracle.List(f, so, limit, cur, nil)
				if err != nil {
					t.Fatal(err)
				}
				gotIDs, wantIDs := summaryIDs(got), summaryIDs(want.Conversations)
				if len(gotIDs) > limit {
					gotIDs = gotIDs[:limit] // the extra row shows there is more
				}
				if !slices.Equal(gotIDs, wantIDs) || (n > limit) != (want.NextCursor != "") {
					t.Fatalf("%s %+v page %d:\n read model %v (%d rows)\n inbox      %v (next %q)", sort, q, page, gotIDs, n, wantIDs, want.NextCursor)
				}
				if want.NextCursor == "" {
					break
				}
				q.Cursor = want.NextCursor
			}
		}
	}
}

func summaryIDs(sums []conversation.Summary) []string {
	out := make([]string, len(sums))
	for i, s := range sums {
		out[i] = s.ID
	}
	return out
}
