-- +goose Up

-- A delivery's retry horizon (24 h) runs from its first attempt, not from
-- when its event was queued: a delivery waits, unattempted, behind the
-- earlier ones of its conversation, and a receiver down for a day would
-- otherwise see that whole backlog failed within seconds of the first
-- failing for good. NULL until the first attempt is recorded. Adding a
-- nullable column rewrites nothing.
ALTER TABLE webhook_deliveries ADD COLUMN first_attempt_at timestamptz;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN first_attempt_at;
