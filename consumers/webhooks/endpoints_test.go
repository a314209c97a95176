package webhooks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
)

// TestDeleteLeavesDeliveriesToThePurge: deleting a webhook removes the
// webhook alone, however many deliveries it has and whoever holds their
// row locks (the deliverer recording an outcome); its deliveries are no
// longer listed, and the leader's purge deletes them in batches, the
// locked one in a later round, and then forgets the webhook.
func TestDeleteLeavesDeliveriesToThePurge(t *testing.T) {
	ctx := context.Background()
	pool, sealer, hook, _ := newHookDB(t, "Delete", "https://hooks.example.com/in")
	kept, _, err := NewEndpoints(pool, sealer, Config{}).Create(ctx, "acc_1", "https://hooks.example.com/kept", Types, "kept")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{hook.ID, kept.ID} {
		for i := range 7 {
			if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type,
	payload, committed_at) VALUES ($1, $2, 'acc_1', 'c1', $3, 'message.created', '{}', now())`, h, fmt.Sprintf("evt_%d", i), i+1); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An outcome being recorded holds one row's lock until it commits.
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback(ctx) }()
	if _, err := other.Exec(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE webhook_id = $1 AND event_id = 'evt_3'`, hook.ID); err != nil {
		t.Fatal(err)
	}

	eps := NewEndpoints(pool, sealer, Config{})
	// Waiting for that lock would end at the context's deadline.
	deleteCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := eps.Delete(deleteCtx, "acc_1", hook.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := eps.Deliveries(ctx, "acc_1", hook.ID, "", 100, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deliveries of the deleted webhook: %v, want ErrNotFound", err)
	}
	if err := eps.Delete(ctx, "acc_1", hook.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}

	d := New(pool, listentest.Run(t, pool), sealer, Config{PurgeBatch: 3}, nil, prometheus.NewRegistry())
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rowsOf := func(id string) int {
		return count(`SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, id)
	}
	recorded := func() int { return count(`SELECT count(*) FROM webhooks_deleted WHERE id = $1`, hook.ID) }
	if rowsOf(hook.ID) != 7 || recorded() != 1 {
		t.Fatalf("after the delete: %d rows, %d records; want 7 rows left for the purge and the webhook recorded", rowsOf(hook.ID), recorded())
	}

	if err := d.purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rowsOf(hook.ID); n != 1 || recorded() != 1 {
		t.Fatalf("after a round beside the lock: %d rows, %d records; want the locked row and the record kept", n, recorded())
	}
	// 6 rows at 3 a statement: 3, 3 and an empty one; then one each for
	// delivered and failed rows.
	if got := histogramCount(t, d.m.purgeBatch); got != 5 {
		t.Errorf("%d purge statements, want 5 (batches of at most 3)", got)
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rowsOf(hook.ID); n != 0 || recorded() != 0 {
		t.Fatalf("after the lock was let go: %d rows, %d records; want none", n, recorded())
	}
	if got := testutil.ToFloat64(d.m.purged.WithLabelValues("orphaned")); got != 7 {
		t.Errorf("purged %v orphaned rows, want 7", got)
	}
	if n := rowsOf(kept.ID); n != 7 {
		t.Errorf("the other webhook has %d deliveries left, want its 7", n)
	}
}

// Deliveries pages through every pending and failed delivery once, oldest
// first, ties in queue order, with a cursor that ends at the last page;
// a cursor it did not make is refused.
func TestDeliveriesPages(t *testing.T) {
	ctx := context.Background()
	pool, sealer, hook, _ := newHookDB(t, "Pages", "https://hooks.example.com/in")
	// Eight rows: three share a created_at, one is delivered (never listed).
	for i, r := range []struct {
		conv, status, age string
	}{
		{"c1", "pending", "5 minutes"}, {"c2", "failed", "5 minutes"}, {"c3", "pending", "5 minutes"},
		{"c1", "failed", "4 minutes"}, {"c2", "delivered", "3 minutes"}, {"c4", "pending", "2 minutes"},
		{"c5", "failed", "1 minute"}, {"c1", "pending", "0 minutes"},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type,
	payload, status, committed_at, created_at) VALUES ($1, $2, 'acc_1', $3, $4, 'message.created', '{}', $5,
	date_trunc('second', now()) - $6::interval, date_trunc('second', now()) - $6::interval)`,
			hook.ID, fmt.Sprintf("evt_%d", i), r.conv, i+1, r.status, r.age); err != nil {
			t.Fatal(err)
		}
	}
	eps := NewEndpoints(pool, sealer, Config{})
	walk := func(status string, limit int) (events []string, pages int) {
		t.Helper()
		cursor := ""
		for {
			page, err := eps.Deliveries(ctx, "acc_1", hook.ID, status, limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page.Deliveries) > limit || page.NextCursor != "" && len(page.Deliveries) != limit {
				t.Fatalf("page %d: %d deliveries of at most %d, next %q", pages, len(page.Deliveries), limit, page.NextCursor)
			}
			for _, d := range page.Deliveries {
				events = append(events, d.EventID)
			}
			if cursor = page.NextCursor; cursor == "" {
				return events, pages
			}
		}
	}
	all := []string{"evt_0", "evt_1", "evt_2", "evt_3", "evt_5", "evt_6", "evt_7"}
	for _, limit := range []int{1, 2, 3, 7, 100} {
		got, pages := walk("", limit)
		if !slices.Equal(got, all) || pages != max(1, (len(all)+limit-1)/limit) {
			t.Errorf("limit %d: %v in %d pages, want %v", limit, got, pages, all)
		}
	}
	if got, _ := walk("failed", 1); !slices.Equal(got, []string{"evt_1", "evt_3", "evt_6"}) {
		t.Errorf("failed: %v", got)
	}
	for _, bad := range []string{"x", "bm90LWEtY3Vyc29y", base64.RawURLEncoding.EncodeToString([]byte("12.x.c1"))} {
		if _, err := eps.Deliveries(ctx, "acc_1", hook.ID, "", 10, bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", bad, err)
		}
	}
}
