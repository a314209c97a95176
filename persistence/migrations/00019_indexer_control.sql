-- +goose Up

-- An operator's pause of search indexing (POST /v1/admin/indexer/pause):
-- kept here, it holds across restarts and follows the search actor to
-- whichever node runs it next, until an operator resumes. One row at most.
CREATE TABLE indexer_control (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    paused      boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE indexer_control;
