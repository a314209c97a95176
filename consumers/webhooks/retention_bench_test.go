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
