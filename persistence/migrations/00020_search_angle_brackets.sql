-- +goose Up

-- PostgreSQL's text-search parser reads anything between < and > as an
-- HTML tag and leaves it out of the tsvector: "<ticket 5521>" and the words
-- of "if x<y or a>b" could not be found. The brackets are now read as
-- separators (the single guillemets, which the parser takes for blanks, one
-- character each, so positions and the snippet's text stay the body's; see
-- search/pgsearch). Rebuilding the column rewrites the search table and its
-- index once, under an exclusive lock: searches and the indexer wait,
-- nothing else does. The table is derived data (the journal is the truth).
ALTER TABLE search_messages DROP COLUMN tsv;
ALTER TABLE search_messages ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', translate(body, '<>', '‹›'))) STORED;
CREATE INDEX search_messages_account_tsv ON search_messages
    USING gin (account_id, tsv) WITH (fastupdate = off);

-- +goose Down
ALTER TABLE search_messages DROP COLUMN tsv;
ALTER TABLE search_messages ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX search_messages_account_tsv ON search_messages
    USING gin (account_id, tsv) WITH (fastupdate = off);
