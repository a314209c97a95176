-- +goose Up

CREATE TABLE accounts (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Credentials are stored as SHA-256 of the secret: the secrets are random
-- 256-bit values, so a slow password hash would add nothing but latency.
CREATE TABLE api_keys (
    key_hash    bytea PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts(id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inboxes (
    id            text PRIMARY KEY,
    account_id    text NOT NULL REFERENCES accounts(id),
    name          text NOT NULL,
    phone_number  text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inboxes_account ON inboxes (account_id, created_at, id);

CREATE TABLE agents (
    id          text PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts(id),
    name        text NOT NULL,
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_account ON agents (account_id, created_at, id);

CREATE TABLE agent_inboxes (
    agent_id  text NOT NULL REFERENCES agents(id),
    inbox_id  text NOT NULL REFERENCES inboxes(id),
    PRIMARY KEY (agent_id, inbox_id)
);

CREATE TABLE agent_tokens (
    token_hash  bytea PRIMARY KEY,
    agent_id    text NOT NULL REFERENCES agents(id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The fencing row of a conversation (docs/architecture.md, invariant 4). Every
-- activation bumps epoch; every append is conditional on (epoch, version-1).
CREATE TABLE conversation_heads (
    conversation_id  text PRIMARY KEY,
    epoch            bigint NOT NULL,
    version          bigint NOT NULL
);

-- The journal: one row per conversation event, keyed (conversation_id, version).
-- txid is the writing transaction's id; the indexer orders by it and only reads
-- below the oldest running transaction, so a late commit is never skipped.
CREATE TABLE journal (
    conversation_id  text NOT NULL,
    version          bigint NOT NULL,
    account_id       text NOT NULL,
    inbox_id         text NOT NULL,
    event_type       text NOT NULL,
    event            jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    txid             xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (conversation_id, version)
);
CREATE INDEX journal_txid ON journal (txid, conversation_id, version);

-- Timeline items (messages, notes, calls) as the API shows them. A call is
-- one item updated in place; seq is the version it was first appended at.
CREATE TABLE items (
    conversation_id  text NOT NULL,
    seq              bigint NOT NULL,
    account_id       text NOT NULL,
    item             jsonb NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- state is opaque to persistence (the actor's encoding), hence bytea: it is
-- returned byte for byte and never parsed on the write path.
CREATE TABLE snapshots (
    conversation_id  text PRIMARY KEY,
    version          bigint NOT NULL,
    state            bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- The conversations read model: one row per conversation, written in the
-- same transaction as the journal append and only by a higher version.
CREATE TABLE conversations (
    id                text PRIMARY KEY,
    account_id        text NOT NULL,
    inbox_id          text NOT NULL,
    contact_key       text NOT NULL,
    version           bigint NOT NULL,
    status            text NOT NULL,
    addressed         boolean NOT NULL,
    assignee_id       text,
    channel           text NOT NULL,
    tags              text[] NOT NULL DEFAULT '{}',
    last_activity_at  timestamptz NOT NULL,
    waiting_since     timestamptz,
    summary           jsonb NOT NULL,
    UNIQUE (inbox_id, contact_key)
);
CREATE INDEX conversations_inbox_recent ON conversations (inbox_id, status, last_activity_at DESC, id);
CREATE INDEX conversations_inbox_wait ON conversations (inbox_id, status, waiting_since, id);

-- Client-supplied idempotency keys that must survive restarts:
-- scope 'ext:<inbox_id>' for inbound external_id, 'client:<conversation_id>'
-- for reply client_id.
CREATE TABLE idempotency_keys (
    scope            text NOT NULL,
    key              text NOT NULL,
    account_id       text NOT NULL,
    conversation_id  text NOT NULL,
    version          bigint NOT NULL,
    PRIMARY KEY (scope, key)
);

-- +goose Down
DROP TABLE idempotency_keys, conversations, snapshots, items, journal,
    conversation_heads, agent_tokens, agent_inboxes, agents, inboxes, api_keys, accounts;
