-- +goose Up

-- Search: the embedded full-text index, the indexer's cursor and its record
-- of documents it had to skip (docs/architecture.md, invariant 9).

-- btree_gin lets one GIN index hold the account id next to the words, so a
-- search scoped to one tenant intersects the tenant's entry with the words'
-- entries inside the index instead of visiting every row that contains a
-- common word in any tenant. It is a trusted extension: the database owner
-- may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- One row per message or note. It is derived data: the journal is the truth
-- and the indexer can rebuild the table by resetting its cursor.
--
-- Hash-partitioned by account so that one tenant's rows share their
-- partition with few others: a search for a word in most messages must visit
-- every match to rank it, and with 64 partitions both the word's posting
-- list that the index walks and the heap pages holding the tenant's matches
-- are a small fraction of the whole. Measured on 2,000,000 messages over
-- 1,000 accounts (BenchmarkSearch in search/pgsearch): a one-word search
-- matching ~1,800 of a tenant's 2,000 messages took 45 ms p50 / 190 ms p99
-- unpartitioned, 7–10 ms p50 / 12–17 ms p99 with 64 partitions. The key
-- includes the account, as partitioning requires, which also keeps two
-- tenants' ids apart.
CREATE TABLE search_messages (
    message_id       text NOT NULL,
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
    tsv              tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
    PRIMARY KEY (account_id, message_id)
) PARTITION BY HASH (account_id);

-- +goose StatementBegin
DO $$
BEGIN
    FOR i IN 0..63 LOOP
        EXECUTE format('CREATE TABLE search_messages_p%s PARTITION OF search_messages FOR VALUES WITH (MODULUS 64, REMAINDER %s)',
            lpad(i::text, 2, '0'), i);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- fastupdate = off: with the pending list on, every search scans the whole
-- unsorted list and the insert that overflows it pays for merging all of it,
-- which shows as latency spikes on both sides. At the ingest rates we target
-- (1,000 messages/s; bulk loading measured ~14,000 rows/s with it off)
-- paying the index update in each indexer batch is the steadier trade.
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
