package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/journal"
)

// Retention: webhook_deliveries gets one row per (event, matching
// webhook) and nothing else ever deletes them, so the active deliverer
// does (only it, so that two nodes never delete the same rows against each
// other).
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

// purge deletes every delivered and failed row past its retention, in
// batches. It returns once a batch of each kind came back short.
func (d *Deliverer) purge(ctx context.Context) error {
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
			took := time.Since(start)
			d.m.purgeBatch.Observe(took.Seconds())
			d.m.purged.WithLabelValues(p.status).Add(float64(tag.RowsAffected()))
			if tag.RowsAffected() < int64(d.cfg.PurgeBatch) {
				break
			}
			if err := journal.Sleep(ctx, took); err != nil {
				return nil
			}
		}
	}
	return nil
}
