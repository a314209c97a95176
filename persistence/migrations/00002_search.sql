-- +goose Up

-- Search: the embedded full-text index, the indexer's cursor and its record
-- of documents it had to skip (DESIGN.md invariant 9).

-- btree_gin lets one GIN index hold the account id next to the words, so a
-- search scoped to one tenant intersects the tenant's entry with the words'
-- entries inside the index instead of visiting every row that contains a
-- common word in any tenant. It is a trusted extension: the database owner
-- may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- One row per message or note. It is derived data: the journal is the truth
-- and the indexer can rebuild the table by resetting its cursor.
CREATE TABLE search_messages (
    message_id       text PRIMARY KEY,
    account_id       text NOT NULL,
    inbox_id         text NOT NULL,
    conversation_id  text NOT NULL,
    seq              bigint NOT NULL,
    direction        text NOT NULL,
    kind             text NOT NULL,
    body             text NOT NULL,
    created_at       timestamptz NOT NULL,
    -- 'simple' (lower-casing, no stemming, no stop words): tenants write in
    -- any language, and every word, however common, stays searchable.
    tsv              tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);

-- fastupdate = off: with the pending list on, every search scans the whole
-- unsorted list and the insert that overflows it pays for merging all of it,
-- which shows as latency spikes on both sides. At the ingest rates we target
-- (thousands of messages/s, far below the ~28,000 rows/s a GIN sustains)
-- paying the index update on each indexer batch is the steadier trade.
CREATE INDEX search_messages_account_tsv ON search_messages
    USING gin (account_id, tsv) WITH (fastupdate = off);

-- The indexer's position in the journal, in the journal's (txid,
-- conversation_id, version) order. One row per indexer ("default").
CREATE TABLE search_cursor (
    name             text PRIMARY KEY,
    txid             xid8 NOT NULL DEFAULT '0',
    conversation_id  text NOT NULL DEFAULT '',
    version          bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Journal entries the indexer could not index and skipped (poison
-- documents), for an operator to inspect and replay.
CREATE TABLE search_failures (
    conversation_id  text NOT NULL,
    version          bigint NOT NULL,
    account_id       text NOT NULL,
    message_id       text NOT NULL DEFAULT '',
    reason           text NOT NULL,
    failed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, version)
);

-- +goose Down
DROP TABLE search_failures, search_cursor, search_messages;
