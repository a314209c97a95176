-- +goose Up

-- Delivery status reports name a message by id: one index probe instead of
-- a scan of the conversation's items.
CREATE INDEX items_item_id ON items (conversation_id, (item->>'id'));

-- Webhook endpoints. The signing secret must be kept (it signs every
-- delivery), so it is stored sealed with AES-256-GCM under
-- SWITCHBOARD_SECRET_KEY, never in clear. created_snapshot is the snapshot
-- of the creating transaction: exactly the journal entries not visible in
-- it were committed after the webhook was created, and only those are
-- delivered to it.
CREATE TABLE webhooks (
    id                text PRIMARY KEY,
    account_id        text NOT NULL REFERENCES accounts(id),
    url               text NOT NULL,
    events            text[] NOT NULL,
    description       text NOT NULL DEFAULT '',
    secret_sealed     bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_snapshot  pg_snapshot NOT NULL DEFAULT pg_current_snapshot()
);
CREATE INDEX webhooks_account ON webhooks (account_id, created_at, id);

-- One row per (webhook, journal event): written by the deliverer in the same
-- transaction that moves its journal cursor, so nothing is fanned out twice
-- or skipped. next_attempt_at is set only on the head of each (webhook,
-- conversation) queue (its lowest pending version): the next one is promoted
-- when the head is delivered or fails for good, which is what keeps one
-- conversation's events in version order.
CREATE TABLE webhook_deliveries (
    webhook_id       text NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         text NOT NULL,
    account_id       text NOT NULL,
    conversation_id  text NOT NULL,
    version          bigint NOT NULL,
    type             text NOT NULL,
    payload          text NOT NULL,
    status           text NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    next_attempt_at  timestamptz,
    committed_at     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, conversation_id, version)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (webhook_id, status, created_at)
    WHERE status <> 'delivered';

-- Positions of journal consumers in the journal's (txid, conversation_id,
-- version) order, by consumer name (consumers/journal).
CREATE TABLE journal_cursors (
    name             text PRIMARY KEY,
    txid             xid8 NOT NULL DEFAULT '0',
    conversation_id  text NOT NULL DEFAULT '',
    version          bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE journal_cursors, webhook_deliveries, webhooks;
DROP INDEX IF EXISTS items_item_id;
