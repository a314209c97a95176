-- +goose Up

-- Each member of a cluster publishes its view of the membership here about
-- every second: the members it routes to and those it has blocked. A
-- member that another, on the larger side, has blocked must restart to
-- rejoin under a new id (cluster/eviction); the database is where both
-- sides of a split can still read each other.
CREATE TABLE cluster_views (
    cluster     text NOT NULL,
    member_id   text NOT NULL,
    members     text[] NOT NULL,
    blocked     text[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster, member_id)
);

-- +goose Down
DROP TABLE cluster_views;
