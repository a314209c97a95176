package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
)

// BenchmarkPurge measures one retention statement on a table of 1M
// deliveries (600k delivered past retention, 300k recent, 100k pending,
// over 1,000 conversations): a full batch of Config.PurgeBatch rows, then
// the steady state's statement that finds nothing, with the index of
// migration 00013 before and after a vacuum, and without the index. Run it with a fixed count, since each
// full batch consumes rows:
//
//	go test -run '^$' -bench BenchmarkPurge -benchtime 20x ./consumers/webhooks/
func BenchmarkPurge(b *testing.B) {
	ctx := context.Background()
	pool, sealer, hook, _ := newHookDB(b, "Bench", "https://example.com/hook")
	start := time.Now()
	// Rows in the order the deliverer writes them: old ones first.
	if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type,
	payload, status, committed_at, created_at, delivered_at, next_attempt_at)
SELECT $1, 'evt_' || i, 'acc_1', 'conv_' || (i % 1000), i / 1000 + 1, 'message.created', repeat('x', 600),
	CASE WHEN i < 900000 THEN 'delivered' ELSE 'pending' END,
	now() - make_interval(secs => 1000000 - i), now() - make_interval(secs => 1000000 - i),
	CASE WHEN i < 600000 THEN now() - interval '2 days' WHEN i < 900000 THEN now() - interval '1 hour' END,
	CASE WHEN i >= 900000 AND i < 901000 THEN now() END
FROM generate_series(0, 999999) AS i`, hook.ID); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE webhook_deliveries`); err != nil {
		b.Fatal(err)
	}
	b.Logf("1M rows written and analyzed in %v", time.Since(start).Round(time.Millisecond))
	d := New(pool, listentest.Run(b, pool), sealer, Config{}, nil, nil)
	purge := func(b *testing.B, want int64) {
		tag, err := pool.Exec(ctx, purgeDeliveredSQL, d.cfg.Retention.Seconds(), d.cfg.PurgeBatch)
		if err != nil {
			b.Fatal(err)
		}
		if want >= 0 && tag.RowsAffected() != want {
			b.Fatalf("purged %d rows, want %d", tag.RowsAffected(), want)
		}
	}
	b.Run("full batch", func(b *testing.B) {
		for b.Loop() {
			purge(b, int64(d.cfg.PurgeBatch))
		}
	})
	// The rest of the expired rows go, as rounds of full batches would.
	for {
		tag, err := pool.Exec(ctx, purgeDeliveredSQL, d.cfg.Retention.Seconds(), 100000)
		if err != nil {
			b.Fatal(err)
		}
		if tag.RowsAffected() == 0 {
			break
		}
	}
	b.Run("nothing expired", func(b *testing.B) {
		for b.Loop() {
			purge(b, 0)
		}
	})
	// The index entries of the deleted rows stay until a vacuum removes
	// them; until then each statement steps over them.
	if _, err := pool.Exec(ctx, `VACUUM webhook_deliveries`); err != nil {
		b.Fatal(err)
	}
	b.Run("nothing expired, vacuumed", func(b *testing.B) {
		for b.Loop() {
			purge(b, 0)
		}
	})
	if _, err := pool.Exec(ctx, `DROP INDEX webhook_deliveries_delivered_at`); err != nil {
		b.Fatal(err)
	}
	b.Run("nothing expired, no index", func(b *testing.B) {
		for b.Loop() {
			purge(b, 0)
		}
	})
}

// BenchmarkDeleteWebhookWithBacklog deletes a webhook with 1M pending
// deliveries (600-byte payloads, 1,000 conversations) two ways in one run:
// as the foreign key's cascade did before migration 00025, deleting the
// rows in the request, and as Endpoints.Delete does now, leaving them to
// the purge, whose time for all of them is reported too. One iteration:
//
//	go test -run '^$' -bench BenchmarkDeleteWebhookWithBacklog -benchtime 1x ./consumers/webhooks/
func BenchmarkDeleteWebhookWithBacklog(b *testing.B) {
	ctx := context.Background()
	pool, sealer := newAccountDB(b, "DeleteBench")
	eps := NewEndpoints(pool, sealer, Config{})
	backlog := func(b *testing.B) Webhook {
		hook, _, err := eps.Create(ctx, "acc_1", "https://example.com/hook", Types, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type,
	payload, committed_at)
SELECT $1, 'evt_' || i, 'acc_1', 'conv_' || (i % 1000), i / 1000 + 1, 'message.created', repeat('x', 600), now()
FROM generate_series(0, 999999) AS i`, hook.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE webhook_deliveries`); err != nil {
			b.Fatal(err)
		}
		return hook
	}
	d := New(pool, listentest.Run(b, pool), sealer, Config{}, nil, nil)
	for b.Loop() {
		b.StopTimer()
		before := backlog(b)
		// The cascade as it was; NOT VALID skips checking the rows, not
		// the cascade.
		if _, err := pool.Exec(ctx, `ALTER TABLE webhook_deliveries ADD CONSTRAINT cascade_as_before
	FOREIGN KEY (webhook_id) REFERENCES webhooks(id) ON DELETE CASCADE NOT VALID`); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, before.ID); err != nil {
			b.Fatal(err)
		}
		cascade := time.Since(start)
		if _, err := pool.Exec(ctx, `ALTER TABLE webhook_deliveries DROP CONSTRAINT cascade_as_before`); err != nil {
			b.Fatal(err)
		}
		after := backlog(b)
		b.StartTimer()
		start = time.Now()
		if err := eps.Delete(ctx, "acc_1", after.ID); err != nil {
			b.Fatal(err)
		}
		deleted := time.Since(start)
		b.StopTimer()
		start = time.Now()
		if err := d.purgeDeleted(ctx); err != nil {
			b.Fatal(err)
		}
		purged := time.Since(start)
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&left); err != nil || left != 0 {
			b.Fatalf("%d rows left after the purge (%v)", left, err)
		}
		b.ReportMetric(float64(cascade.Milliseconds()), "cascade-ms")
		b.ReportMetric(float64(deleted.Microseconds())/1000, "delete-ms")
		b.ReportMetric(float64(purged.Milliseconds()), "purge-ms")
		b.StartTimer()
	}
}
