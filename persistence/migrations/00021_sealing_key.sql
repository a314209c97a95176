-- +goose Up

-- The key sealing webhook secrets when SWITCHBOARD_SECRET_KEY is not set,
-- made by the first node that needs it: every node of the cluster then
-- opens what another sealed. Kept beside the data it protects, it guards
-- nothing against whoever reads the database (who could already read
-- everything else); setting SWITCHBOARD_SECRET_KEY keeps the key apart, and
-- secrets sealed under this one still open. One row at most.
CREATE TABLE sealing_key (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_b64     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sealing_key;
