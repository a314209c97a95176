-- +goose Up
-- Automation (issue 12): inbox settings, agent availability, the round-robin
-- position, and the conversations' next due time for the timer scanner.

-- NULL durations are off. settings_version grows with every change, so a
-- conversation actor can tell a cached copy from a newer one (ticks carry it).
ALTER TABLE inboxes
    ADD COLUMN auto_close_after_s   integer CHECK (auto_close_after_s >= 1),
    ADD COLUMN sla_first_response_s integer CHECK (sla_first_response_s >= 1),
    ADD COLUMN auto_assign          text NOT NULL DEFAULT 'none' CHECK (auto_assign IN ('none', 'round_robin')),
    ADD COLUMN settings_version     bigint NOT NULL DEFAULT 0,
    -- The agent the rotation assigned last: the next is the first available
    -- agent after it in id order. Owned by the inbox actor.
    ADD COLUMN rr_last_agent        text;

ALTER TABLE agents
    ADD COLUMN status text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'away'));

-- The earliest time the conversation's state machine has something to
-- decide (auto-close, snooze wake, SLA breach), written in the same
-- statement as the journal append; NULL when nothing is armed. The partial
-- index holds only armed rows, so the scanner's poll is an index range scan
-- however many conversations exist.
ALTER TABLE conversations ADD COLUMN due_at timestamptz;
CREATE INDEX conversations_due ON conversations (due_at) WHERE due_at IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS conversations_due;
ALTER TABLE conversations DROP COLUMN due_at;
ALTER TABLE agents DROP COLUMN status;
ALTER TABLE inboxes DROP COLUMN auto_close_after_s, DROP COLUMN sla_first_response_s,
    DROP COLUMN auto_assign, DROP COLUMN settings_version, DROP COLUMN rr_last_agent;
