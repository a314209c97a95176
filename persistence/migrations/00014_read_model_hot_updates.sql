-- +goose Up

-- The read model's row of a conversation is rewritten by every append. An
-- index over a column that changes (last_activity_at changes with every
-- message) makes each rewrite a new tuple plus an entry in every index of the
-- table (pkey, contact, lists, due): about half of the write-ahead log an
-- append produced for this table. With no changing column indexed, the
-- rewrite is a heap-only tuple (HOT) on the same page, and no index is
-- touched. So the lists index what does not change while a conversation is
-- open:
--
--   - open conversations by (inbox, id): the inbox actor's rebuild reads
--     them all (it orders in memory), and re-arming pages through them;
--   - closed ones by closed_activity_at, a column that is NULL while a
--     conversation is open, for the rebuild's most recent closed page.
--
-- fillfactor leaves room on each page for the new versions. Adding a stored
-- generated column rewrites the table once, under an exclusive lock: on a
-- large installation run this migration in a maintenance window.
ALTER TABLE conversations ADD COLUMN closed_activity_at timestamptz
    GENERATED ALWAYS AS (CASE WHEN status = 'closed' THEN last_activity_at END) STORED;
ALTER TABLE conversations SET (fillfactor = 70);
CREATE INDEX conversations_inbox_open ON conversations (inbox_id, id) WHERE status <> 'closed';
CREATE INDEX conversations_inbox_closed_recent ON conversations (inbox_id, closed_activity_at DESC, id DESC)
    WHERE status = 'closed';
DROP INDEX conversations_inbox_recent;
DROP INDEX conversations_inbox_open_recent;

-- +goose Down
CREATE INDEX conversations_inbox_recent ON conversations (inbox_id, status, last_activity_at DESC, id);
CREATE INDEX conversations_inbox_open_recent ON conversations (inbox_id, last_activity_at DESC, id)
    WHERE status <> 'closed';
DROP INDEX conversations_inbox_closed_recent;
DROP INDEX conversations_inbox_open;
ALTER TABLE conversations RESET (fillfactor);
ALTER TABLE conversations DROP COLUMN closed_activity_at;
