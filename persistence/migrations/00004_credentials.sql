-- +goose Up
-- Credentials get public ids: an API key is listed and deleted by its id, and
-- both kinds are rate limited and counted (websockets) by it. Ids of rows that
-- predate this migration derive from their hashes, which are not secret.
ALTER TABLE api_keys ADD COLUMN id text;
UPDATE api_keys SET id = 'key_' || encode(substring(key_hash FROM 1 FOR 16), 'hex');
ALTER TABLE api_keys ALTER COLUMN id SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_id_key UNIQUE (id);
CREATE INDEX api_keys_account ON api_keys (account_id, created_at, id);

ALTER TABLE agent_tokens ADD COLUMN id text;
UPDATE agent_tokens SET id = 'tok_' || encode(substring(token_hash FROM 1 FOR 16), 'hex');
ALTER TABLE agent_tokens ALTER COLUMN id SET NOT NULL;
ALTER TABLE agent_tokens ADD CONSTRAINT agent_tokens_id_key UNIQUE (id);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

-- A deleted agent keeps its row: conversations may still name it as their
-- assignee. Its tokens and inbox memberships are removed with it.
ALTER TABLE agents ADD COLUMN deleted_at timestamptz;

-- +goose Down
ALTER TABLE agents DROP COLUMN deleted_at;
DROP INDEX agent_tokens_agent;
ALTER TABLE agent_tokens DROP COLUMN id;
DROP INDEX api_keys_account;
ALTER TABLE api_keys DROP COLUMN id;
