-- +goose NO TRANSACTION
-- +goose Up

-- Retention of webhook deliveries (consumers/webhooks/retention.go): the
-- active deliverer deletes delivered rows some time after delivery and
-- failed rows some time after they were queued, oldest first, a bounded
-- batch per statement. These partial indexes make each batch an index walk
-- from its oldest row, so a purge that finds nothing to delete costs one
-- probe instead of a scan of the whole table. The failed one stays tiny
-- (failed rows are rare); the delivered one costs one index entry per
-- delivery. CONCURRENTLY: the table may be large and is written all the
-- time; a build left invalid by an interrupted run is dropped first.
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_delivered_at;
CREATE INDEX CONCURRENTLY webhook_deliveries_delivered_at ON webhook_deliveries (delivered_at)
    WHERE status = 'delivered';
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_failed_created;
CREATE INDEX CONCURRENTLY webhook_deliveries_failed_created ON webhook_deliveries (created_at)
    WHERE status = 'failed';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_failed_created;
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_delivered_at;
