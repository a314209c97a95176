-- +goose Up

-- While an endpoint's circuit is open, the deliverer holds its retries
-- (past the first) until the circuit cools down, later than the
-- next_attempt_at their backoff stored. The leader keeps the circuit in
-- memory; it writes here when the circuit opens, moves on or closes, so
-- that any node listing deliveries shows when the next attempt can really
-- start. A new leader starts with every circuit closed, and clears it.
ALTER TABLE webhooks ADD COLUMN circuit_open_until timestamptz;

-- +goose Down
ALTER TABLE webhooks DROP COLUMN circuit_open_until;
