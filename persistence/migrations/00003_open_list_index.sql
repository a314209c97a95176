-- +goose Up
-- The read model's list index as an SQL-served inbox would have it: open
-- conversations of an inbox in activity order, so a first page is an index
-- walk (status first, as before, cannot give that order for status <> 'closed').
-- It also serves the inbox actor's rebuild. The waiting_since index had no
-- reader; dropping it keeps the write cost of the read model unchanged.
DROP INDEX IF EXISTS conversations_inbox_wait;
CREATE INDEX conversations_inbox_open_recent ON conversations (inbox_id, last_activity_at DESC, id)
    WHERE status <> 'closed';

-- +goose Down
DROP INDEX IF EXISTS conversations_inbox_open_recent;
CREATE INDEX conversations_inbox_wait ON conversations (inbox_id, status, waiting_since, id);
