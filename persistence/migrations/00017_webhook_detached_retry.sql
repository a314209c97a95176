-- +goose Up

-- A delivery retried through the API after it failed for good is detached
-- from its (webhook, conversation) queue: the events after it were already
-- sent without waiting for it, so it is a head of its own, and it never
-- becomes the head the queue's later events wait behind (which, failing
-- again, would hold them for its whole retry horizon). A constant default
-- rewrites nothing.
ALTER TABLE webhook_deliveries ADD COLUMN detached boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN detached;
