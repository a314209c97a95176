-- +goose Up
-- The search indexer is a consumer of package consumers/journal like the
-- webhook deliverer and the timer scanner, so its position moves from its
-- own table (search_cursor, 00002) to journal_cursors (00005). The two
-- tables have the same columns; the indexer's row "default" becomes the
-- consumer "search" (indexer.DefaultCursorName), any other row
-- "search:<name>". The copy runs in the migration's transaction, so the
-- indexer resumes exactly where it was: nothing indexed again from the
-- start, nothing skipped.
--
-- search_cursor is dropped rather than kept: nothing reads it any more, and
-- a stale copy of a position invites an operator's query or a later change
-- to trust it. A node still running the old code during a rolling upgrade
-- fails its indexer session (and retries) instead of moving a cursor that no
-- longer counts; one indexer is active per cluster, so a new node's takes
-- over. Down restores the table from journal_cursors.
INSERT INTO journal_cursors (name, txid, conversation_id, version, updated_at)
SELECT CASE WHEN name = 'default' THEN 'search' ELSE 'search:' || name END,
       txid, conversation_id, version, updated_at
FROM search_cursor
ON CONFLICT (name) DO NOTHING;

DROP TABLE search_cursor;

-- +goose Down
CREATE TABLE search_cursor (
    name             text PRIMARY KEY,
    txid             xid8 NOT NULL DEFAULT '0',
    conversation_id  text NOT NULL DEFAULT '',
    version          bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO search_cursor (name, txid, conversation_id, version, updated_at)
SELECT CASE WHEN name = 'search' THEN 'default' ELSE substr(name, length('search:') + 1) END,
       txid, conversation_id, version, updated_at
FROM journal_cursors
WHERE name = 'search' OR name LIKE 'search:%';
DELETE FROM journal_cursors WHERE name = 'search' OR name LIKE 'search:%';
