package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
)

// TestClosedConversationsOrderLikeTheInbox: for every sort and filter, the
// read model's closed conversations after any page's cursor are exactly
// what an inbox holding all of them lists next — same order, ties by id
// bytewise (ids whose order differs under a language collation included),
// times to the microsecond. The inbox is the oracle: its order is the API's.
// A cursor from a list that also holds conversations not closed (a due
// time, none) starts the closed ones where they belong.
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
		// A closed conversation keeps waiting_since but never has an SLA
		// due time (closing clears it): sla_due lists closed ones by id.
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
				raw, count, err := s.ClosedConversations(ctx, "acc_t", "ib_t", cq)
				if err != nil {
					t.Fatal(err)
				}
				got, n := decodeRows(t, raw), len(raw)
				f, so, limit, cur, _ := q.Resolve("")
				want, err := oracle.List(f, so, limit, cur, &inbox.ClosedRows{Complete: true})
				if err != nil {
					t.Fatal(err)
				}
				// The count a filter beyond statuses needs for the total.
				if plain := q.Addressed == nil && q.Assignee == "" && q.Channel == "" && q.Tag == ""; cq.Count == plain || (cq.Count && count != want.Total) {
					t.Fatalf("%+v: counted %v: %d, the inbox totals %d", q, cq.Count, count, want.Total)
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

// TestClosedConversationsAfterAnOpenOne: a list of open and closed
// conversations whose cursor stands on an open one with a time the closed
// ones may not have (a due time, a wait) continues with the closed ones in
// their place: for sla_due every closed one (none has a due time), for
// longest_wait those waiting since later, then those not waiting, by id.
func TestClosedConversationsAfterAnOpenOne(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var closed []conversation.Summary
	for i := range 12 {
		sum := testAppend(fmt.Sprintf("cv_%02d", i), 1, 1, nil).Summary
		sum.Status, sum.LastActivityAt = conversation.StatusClosed, base
		if i%3 != 0 {
			w := base.Add(time.Duration(i%4) * time.Minute)
			sum.WaitingSince = &w
		}
		if _, err := s.ApplySummary(ctx, sum, "handle:"+sum.ID); err != nil {
			t.Fatal(err)
		}
		closed = append(closed, sum)
	}
	read := func(sort inbox.Sort, after inbox.Position) []string {
		t.Helper()
		raw, _, err := s.ClosedConversations(ctx, "acc_t", "ib_t", inbox.ClosedQuery{Sort: sort, After: &after, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return summaryIDs(decodeRows(t, raw))
	}
	all := summaryIDs(closed) // by id already
	if got := read(inbox.SortSLADue, inbox.Position{Key: base.UnixNano(), ID: "zz"}); !slices.Equal(got, all) {
		t.Fatalf("sla_due after a due time: %v, want %v", got, all)
	}
	pivot := base.Add(2 * time.Minute)
	var want, none []string
	for m := 2; m < 4; m++ {
		for _, c := range closed {
			if c.WaitingSince != nil && c.WaitingSince.Equal(base.Add(time.Duration(m)*time.Minute)) && (m > 2 || c.ID > "cv_05") {
				want = append(want, c.ID)
			}
		}
	}
	for _, c := range closed {
		if c.WaitingSince == nil {
			none = append(none, c.ID)
		}
	}
	want = append(want, none...)
	if got := read(inbox.SortLongestWait, inbox.Position{Key: pivot.UnixNano(), ID: "cv_05"}); !slices.Equal(got, want) {
		t.Fatalf("longest_wait after (2 min, cv_05): %v, want %v", got, want)
	}
	if got := read(inbox.SortLongestWait, inbox.Position{Key: inbox.NoKey, ID: "cv_03"}); !slices.Equal(got, none[2:]) {
		t.Fatalf("longest_wait after (none, cv_03): %v, want %v", got, none[2:])
	}
}

func decodeRows(t *testing.T, rows []json.RawMessage) []conversation.Summary {
	t.Helper()
	out := make([]conversation.Summary, len(rows))
	for i, raw := range rows {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatalf("row %s: %v", raw, err)
		}
	}
	return out
}

func summaryIDs(sums []conversation.Summary) []string {
	out := make([]string, len(sums))
	for i, s := range sums {
		out[i] = s.ID
	}
	return out
}

// BenchmarkClosedConversations reads one page (51 rows, a list of 50) of
// an inbox with 100,000 closed conversations from the read model, the way
// a list that includes closed ones does, at the start and deep into the
// order; each form walks an index of closed rows. Use a fresh database:
// the rows are added to it.
func BenchmarkClosedConversations(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	const inboxID, n = "ib_bench_closed", 100_000
	// Committed durably (the test server commits asynchronously), so that
	// VACUUM can mark the pages all-visible, as an archive's are.
	if err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
		INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed, channel,
			last_activity_at, waiting_since, summary)
		SELECT 'cv_bc_' || i, 'acc_bench', $1, 'phone:' || i, 1, 'closed', i % 2 = 0, 'sms', t,
			CASE WHEN i % 3 = 0 THEN t END,
			jsonb_build_object('id', 'cv_bc_' || i, 'account_id', 'acc_bench', 'inbox_id', $1::text, 'status', 'closed',
				'channel', 'sms', 'tags', '[]'::jsonb, 'version', 1, 'last_activity_at', t,
				'contact', jsonb_build_object('id', 'ct_' || i, 'phone', '+1415' || lpad(i::text, 7, '0')),
				'last_message', jsonb_build_object('body', repeat('x', 120)))
		FROM generate_series(1, $2::int) i, LATERAL (SELECT timestamptz '2026-01-01' + i * interval '1 second' AS t) ts
		ON CONFLICT DO NOTHING`, inboxID, n)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM (ANALYZE) conversations`); err != nil {
		b.Fatal(err)
	}
	yes := true
	deep := func(sort inbox.Sort, at int64) *inbox.Position {
		return &inbox.Position{Key: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(at) * time.Second).UnixNano(), ID: fmt.Sprintf("cv_bc_%d", at)}
	}
	for _, c := range []struct {
		name string
		q    inbox.ClosedQuery
	}{
		{"recent/first", inbox.ClosedQuery{Sort: inbox.SortRecent}},
		{"recent/deep", inbox.ClosedQuery{Sort: inbox.SortRecent, After: deep(inbox.SortRecent, n-60_000)}},
		{"oldest/deep", inbox.ClosedQuery{Sort: inbox.SortOldest, After: deep(inbox.SortOldest, 60_000)}},
		{"longest_wait/first", inbox.ClosedQuery{Sort: inbox.SortLongestWait}},
		{"longest_wait/deep", inbox.ClosedQuery{Sort: inbox.SortLongestWait, After: deep(inbox.SortLongestWait, 60_000)}},
		{"sla_due/deep", inbox.ClosedQuery{Sort: inbox.SortSLADue, After: &inbox.Position{Key: inbox.NoKey, ID: "cv_bc_60000"}}},
		// A filter beyond statuses: the page alone, then with the count of
		// every closed conversation it matches (half of them), for the total.
		{"recent/first/addressed", inbox.ClosedQuery{Sort: inbox.SortRecent, Filter: inbox.Filter{Addressed: &yes}}},
		{"recent/first/addressed/counted", inbox.ClosedQuery{Sort: inbox.SortRecent, Filter: inbox.Filter{Addressed: &yes}, Count: true}},
		{"recent/first/unassigned/counted", inbox.ClosedQuery{Sort: inbox.SortRecent, Filter: inbox.Filter{Assignee: inbox.AssigneeNone}, Count: true}},
		// By channel, which the count's index does not hold: every closed
		// row of the inbox visited.
		{"recent/first/channel/counted", inbox.ClosedQuery{Sort: inbox.SortRecent, Filter: inbox.Filter{Channel: conversation.ChannelSMS}, Count: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.q.Limit = 51
			for b.Loop() {
				got, count, err := s.ClosedConversations(ctx, "acc_bench", inboxID, c.q)
				if err != nil || len(got) != 51 || (c.q.Count && count < n/2) {
					b.Fatalf("%d rows, counted %d, %v", len(got), count, err)
				}
			}
		})
	}
}
