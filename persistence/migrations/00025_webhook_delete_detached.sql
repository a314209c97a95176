-- +goose Up

-- Deleting a webhook deleted its deliveries in the same statement (the
-- foreign key's cascade): a receiver that had been down for a day at high
-- rates left tens of millions of rows, and the DELETE ran into the
-- request's deadline holding their locks. The delete now removes the
-- webhook row and records it here, in one transaction; the deliverer's
-- retention purges the deliveries left behind in batches
-- (consumers/webhooks/retention.go) and then this row. Every read of
-- deliveries that sends or lists them joins the webhooks table, so those
-- rows are never attempted or shown meanwhile. The fan-out key-share
-- locks the webhooks it writes rows for, so none is written after a
-- delete committed.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_webhook_id_fkey;
CREATE TABLE webhooks_deleted (
    id          text PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DELETE FROM webhook_deliveries d WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_webhook_id_fkey
    FOREIGN KEY (webhook_id) REFERENCES webhooks(id) ON DELETE CASCADE;
DROP TABLE webhooks_deleted;
