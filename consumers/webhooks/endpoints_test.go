package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// TestDeleteOutlivesADeadlock: a delete whose deliveries' row locks cross
// another transaction's (as the deliverer's recording of outcomes may) is
// the side PostgreSQL fails, having waited first; it is run again and
// succeeds once the other side committed.
func TestDeleteOutlivesADeadlock(t *testing.T) {
	ctx := context.Background()
	pool, sealer, hook, _ := newHookDB(t, "Deadlock", "https://hooks.example.com/in")
	eps := NewEndpoints(pool, sealer, Config{})
	for _, ev := range []string{"evt_a", "evt_b"} {
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type,
	payload, committed_at) VALUES ($1, $2, 'acc_1', 'c1', 1, 'message.created', '{}', now())`, hook.ID, ev); err != nil {
			t.Fatal(err)
		}
	}
	touch := `UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE webhook_id = $1 AND event_id = $2`
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback(ctx) }()
	// The delete, in primary-key order, takes evt_a and waits for evt_b.
	if _, err := other.Exec(ctx, touch, hook.ID, "evt_b"); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- eps.Delete(ctx, "acc_1", hook.ID) }()
	poll.Until(t, time.Minute, "the delete to wait for evt_b", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM webhooks%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	// Waiting for evt_a closes the cycle; the delete, waiting longer, is
	// failed, which lets this update through.
	if _, err := other.Exec(ctx, touch, hook.ID, "evt_a"); err != nil {
		t.Fatalf("the other side lost the deadlock: %v", err)
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, hook.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d deliveries left", left)
	}
}
