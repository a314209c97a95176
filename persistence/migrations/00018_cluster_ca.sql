-- +goose Up

-- The cluster's certificate authority, made by the first node of a cluster
-- without certificate files: members that share this database sign their
-- own certificates with it at start and talk mutual TLS. Whoever can read
-- this row can join the cluster, and can already read and write everything
-- the cluster holds. One row at most.
CREATE TABLE cluster_ca (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    cert_pem    bytea NOT NULL,
    key_pem     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE cluster_ca;
