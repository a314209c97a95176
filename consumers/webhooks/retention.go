package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/consumers/journal"
)

// Retention: webhook_deliveries gets one row per (event, matching
// webhook) and nothing else ever deletes them, so the active deliverer
// does (only it, so that two nodes never delete the same rows against each
// other): those of deleted webhooks (Endpoints.Delete leaves them, recorded
// in webhooks_deleted), and delivered and failed ones past their
// retention.
//
// Only pending rows take part in delivery: a queue's head is its lowest
// pending version, the fan-out's "nothing pending" test and the refills
// read pending rows only. Delivered and failed rows are history — the
// deliveries list shows failed ones and the retry endpoint resends them —
// so deleting them never changes what is sent next, and needs none of the
// queues' locks. Re-fanning out an event whose row is gone cannot happen
// either: the journal cursor moves in the transaction that writes the
// rows, long before any of them is old enough to go.
//
// Each statement deletes at most Config.PurgeBatch rows, oldest first, by
// an index walk (migration 00013), skipping rows another transaction holds
// (a retry in progress): it holds its row locks for milliseconds and never
// waits on delivery. Full batches follow each other with a pause as long as
// the last one took, so a backlog of old rows (a first deploy, a long
// outage) is worked off at up to half of one connection, and the next
// round starts after Config.PurgeInterval.

// purgeDeliveredSQL deletes delivered rows delivered before $1 seconds ago.
const purgeDeliveredSQL = `
DELETE FROM webhook_deliveries d USING (
	SELECT webhook_id, event_id FROM webhook_deliveries
	WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => $1)
	ORDER BY delivered_at LIMIT $2
	FOR UPDATE SKIP LOCKED) old
WHERE d.webhook_id = old.webhook_id AND d.event_id = old.event_id`

// purgeFailedSQL deletes failed rows first attempted (or retried through
// the API, which resets both times) before $1 seconds ago. A delivery fails
// at most Config.Horizon after its first attempt, so the caller adds the
// horizon: a failed row stays listed and retryable for at least
// FailedRetention. A row is first attempted after it was queued, so the
// created_at bound is implied, and keeps the scan on the failed rows' index.
const purgeFailedSQL = `
DELETE FROM webhook_deliveries d USING (
	SELECT webhook_id, event_id FROM webhook_deliveries
	WHERE status = 'failed' AND created_at < now() - make_interval(secs => $1)
		AND coalesce(first_attempt_at, created_at) < now() - make_interval(secs => $1)
	ORDER BY created_at LIMIT $2
	FOR UPDATE SKIP LOCKED) old
WHERE d.webhook_id = old.webhook_id AND d.event_id = old.event_id`

// purgeOrphanedSQL deletes at most $2 rows of the deleted webhook $1, by
// the primary key's prefix. A row an outcome's recording holds is skipped
// and taken in a later batch.
const purgeOrphanedSQL = `
DELETE FROM webhook_deliveries d USING (
	SELECT webhook_id, event_id FROM webhook_deliveries WHERE webhook_id = $1
	LIMIT $2 FOR UPDATE SKIP LOCKED) old
WHERE d.webhook_id = old.webhook_id AND d.event_id = old.event_id`

// forgetDeletedSQL drops a deleted webhook's record once none of its rows
// is left. None can be added after its delete committed: the fan-out
// key-share locks the webhooks it writes rows for.
const forgetDeletedSQL = `
DELETE FROM webhooks_deleted w WHERE id = $1
	AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.webhook_id = w.id)`

// purgeLoop purges every Config.PurgeInterval while this node leads.
func (d *Deliverer) purgeLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.PurgeInterval)
	defer t.Stop()
	for {
		if err := d.purge(ctx); err != nil && ctx.Err() == nil {
			// The next round tries again; rows only wait longer.
			d.log.Warn("webhooks: purging old deliveries failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// purge deletes the rows of deleted webhooks, then every delivered and
// failed row past its retention, in batches. It returns once a batch of
// each kind came back short.
func (d *Deliverer) purge(ctx context.Context) error {
	if err := d.purgeDeleted(ctx); err != nil {
		return err
	}
	for _, p := range []struct {
		status string
		sql    string
		keep   time.Duration
	}{
		{"delivered", purgeDeliveredSQL, d.cfg.Retention},
		{"failed", purgeFailedSQL, d.cfg.Horizon + d.cfg.FailedRetention},
	} {
		for {
			start := time.Now()
			tag, err := d.pool.Exec(ctx, p.sql, p.keep.Seconds(), d.cfg.PurgeBatch)
			if err != nil {
				return fmt.Errorf("webhooks: purge %s deliveries: %w", p.status, err)
			}
			if d.purged(ctx, p.status, tag.RowsAffected(), time.Since(start)) {
				break
			}
		}
	}
	return nil
}

// purgeDeleted deletes the delivery rows of deleted webhooks, a batch at a
// time, and each webhook's record once its rows are gone.
func (d *Deliverer) purgeDeleted(ctx context.Context) error {
	rows, err := d.pool.Query(ctx, `SELECT id FROM webhooks_deleted ORDER BY deleted_at`)
	if err != nil {
		return fmt.Errorf("webhooks: read deleted webhooks: %w", err)
	}
	hooks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("webhooks: read deleted webhooks: %w", err)
	}
	for _, hook := range hooks {
		for {
			start := time.Now()
			tag, err := d.pool.Exec(ctx, purgeOrphanedSQL, hook, d.cfg.PurgeBatch)
			if err != nil {
				return fmt.Errorf("webhooks: purge deliveries of deleted webhook %s: %w", hook, err)
			}
			if d.purged(ctx, "orphaned", tag.RowsAffected(), time.Since(start)) {
				break
			}
		}
		// Rows skipped as locked keep the record for the next round.
		if _, err := d.pool.Exec(ctx, forgetDeletedSQL, hook); err != nil {
			return fmt.Errorf("webhooks: forget deleted webhook %s: %w", hook, err)
		}
	}
	return nil
}

// purged accounts for one purge statement that deleted n rows in took and
// says whether its kind is done (a short batch). After a full batch it
// pauses as long as the batch took, so that a backlog is worked off at up
// to half of one connection; a cancelled pause is done too (the next
// statement then fails on the context).
func (d *Deliverer) purged(ctx context.Context, status string, n int64, took time.Duration) bool {
	d.m.purgeBatch.Observe(took.Seconds())
	d.m.purged.WithLabelValues(status).Add(float64(n))
	return n < int64(d.cfg.PurgeBatch) || journal.Sleep(ctx, took) != nil
}
