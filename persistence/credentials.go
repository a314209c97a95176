package persistence

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/persistence/listen"
)

// RevocationChannel is the PostgreSQL NOTIFY channel on which a revocation is
// announced, in the transaction that revokes: every node forgets the
// credentials it cached and closes the websockets of those it names.
const RevocationChannel = "credentials_revoked"

// Revocation names what stopped working: one credential (CredentialID), or
// every credential of an agent (AgentID).
type Revocation struct {
	// ID tells the revoking node its own notice when it comes back.
	ID           string `json:"id,omitempty"`
	AccountID    string `json:"account_id"`
	AgentID      string `json:"agent_id,omitempty"`
	CredentialID string `json:"credential_id,omitempty"`
}

// APIKey is a listed API key (its secret is shown only when created).
type APIKey struct {
	ID        string
	CreatedAt time.Time
}

// ListAgents returns the account's agents that are not deleted, oldest first;
// with agentID set, only that one. AccountID is left empty: the agents are
// rendered as they are, and the caller knows its account.
func (s *Store) ListAgents(ctx context.Context, accountID, agentID string) ([]Agent, error) {
	return s.agents(ctx, `$2 = '' OR a.id = $2`, accountID, agentID)
}

// InboxAgents returns the live agents who belong to an inbox of the
// account, oldest first: the colleagues an agent of that inbox works with.
func (s *Store) InboxAgents(ctx context.Context, accountID, inboxID string) ([]Agent, error) {
	return s.agents(ctx, `EXISTS (SELECT 1 FROM agent_inboxes m WHERE m.agent_id = a.id AND m.inbox_id = $2)`, accountID, inboxID)
}

// agents lists the account's live agents that also meet where, a condition
// on a and the second argument.
func (s *Store) agents(ctx context.Context, where, accountID, arg string) ([]Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.name, a.email, a.status,
			coalesce(array_agg(ai.inbox_id ORDER BY ai.inbox_id) FILTER (WHERE ai.inbox_id IS NOT NULL), '{}')
		FROM agents a LEFT JOIN agent_inboxes ai ON ai.agent_id = a.id
		WHERE a.account_id = $1 AND a.deleted_at IS NULL AND (`+where+`)
		GROUP BY a.id ORDER BY a.created_at, a.id`, accountID, arg)
	if err != nil {
		return nil, fmt.Errorf("persistence: list agents of %s: %w", accountID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Agent, error) {
		var ag Agent
		err := r.Scan(&ag.ID, &ag.Name, &ag.Email, &ag.Status, &ag.InboxIDs)
		return ag, err
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: list agents of %s: %w", accountID, err)
	}
	return out, nil
}

// DeleteAgent deletes an agent of the account: its tokens and inbox
// memberships go, the row stays (conversations keep it as their assignee).
// ErrNotFound when there is no such live agent in the account.
func (s *Store) DeleteAgent(ctx context.Context, accountID, agentID string) error {
	err := s.revoke(ctx, Revocation{AccountID: accountID, AgentID: agentID}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE agents SET deleted_at = now() WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL`,
			agentID, accountID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("agent %s: %w", agentID, ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM agent_tokens WHERE agent_id = $1`, agentID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM agent_inboxes WHERE agent_id = $1`, agentID)
		return err
	})
	if err != nil {
		return fmt.Errorf("persistence: delete agent: %w", err)
	}
	return nil
}

// CreateAgentToken gives a live agent of the account a further token, returned
// once (only its hash is stored).
func (s *Store) CreateAgentToken(ctx context.Context, accountID, agentID string) (string, error) {
	token := newSecret(agentTokenPrefix)
	h := sha256.Sum256([]byte(token))
	tag, err := s.pool.Exec(ctx, `INSERT INTO agent_tokens (id, token_hash, agent_id)
		SELECT $1, $2, id FROM agents WHERE id = $3 AND account_id = $4 AND deleted_at IS NULL`,
		newID(tokenIDPrefix), h[:], agentID, accountID)
	if err != nil {
		return "", fmt.Errorf("persistence: create agent token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return "", fmt.Errorf("persistence: create agent token: agent %s: %w", agentID, ErrNotFound)
	}
	return token, nil
}

// RevokeAgentTokens deletes every token of a live agent of the account.
func (s *Store) RevokeAgentTokens(ctx context.Context, accountID, agentID string) error {
	err := s.revoke(ctx, Revocation{AccountID: accountID, AgentID: agentID}, func(tx pgx.Tx) error {
		var live bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL)`,
			agentID, accountID).Scan(&live)
		if err != nil {
			return err
		}
		if !live {
			return fmt.Errorf("agent %s: %w", agentID, ErrNotFound)
		}
		_, err = tx.Exec(ctx, `DELETE FROM agent_tokens WHERE agent_id = $1`, agentID)
		return err
	})
	if err != nil {
		return fmt.Errorf("persistence: revoke agent tokens: %w", err)
	}
	return nil
}

// CreateAPIKey adds an API key to the account; the secret is returned once.
func (s *Store) CreateAPIKey(ctx context.Context, accountID string) (APIKey, string, error) {
	key := newSecret(apiKeyPrefix)
	h := sha256.Sum256([]byte(key))
	k := APIKey{ID: newID(apiKeyIDPrefix)}
	err := s.pool.QueryRow(ctx, `INSERT INTO api_keys (id, key_hash, account_id) VALUES ($1, $2, $3) RETURNING created_at`,
		k.ID, h[:], accountID).Scan(&k.CreatedAt)
	if isForeignKeyViolation(err) {
		return APIKey{}, "", fmt.Errorf("persistence: create api key: account %s: %w", accountID, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, "", fmt.Errorf("persistence: create api key: %w", err)
	}
	return k, key, nil
}

// ListAPIKeys returns the account's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, accountID string) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at FROM api_keys WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("persistence: list api keys of %s: %w", accountID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[APIKey])
	if err != nil {
		return nil, fmt.Errorf("persistence: list api keys of %s: %w", accountID, err)
	}
	return out, nil
}

// DeleteAPIKey deletes a key of the account (ErrNotFound if it has none by
// that id). The account's last key may go too: that is the owner's call.
func (s *Store) DeleteAPIKey(ctx context.Context, accountID, keyID string) error {
	err := s.revoke(ctx, Revocation{AccountID: accountID, CredentialID: keyID}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE id = $1 AND account_id = $2`, keyID, accountID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("api key %s: %w", keyID, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("persistence: delete api key: %w", err)
	}
	return nil
}

// CredentialLive reports whether the key or token with this id still exists
// (and, for a token, its agent is not deleted).
func (s *Store) CredentialLive(ctx context.Context, credentialID string) (bool, error) {
	var live bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)
		OR EXISTS (SELECT 1 FROM agent_tokens t JOIN agents a ON a.id = t.agent_id WHERE t.id = $1 AND a.deleted_at IS NULL)`,
		credentialID).Scan(&live)
	if err != nil {
		return false, fmt.Errorf("persistence: credential %s: %w", credentialID, err)
	}
	return live, nil
}

// revocationWait bounds how long a revoking call waits for the nodes'
// acknowledgements: a stalled node acts when it resumes, within the cache's
// TTL at worst.
const revocationWait = 2 * time.Second

// RevocationAckChannel is the NOTIFY channel on which each node acknowledges
// a revocation it acted on (its payload is the revocation's ID).
const RevocationAckChannel = "credentials_revoked_ack"

// countNodesSQL counts the nodes following notices on this database: each
// holds one listen session (persistence/listen).
const countNodesSQL = `SELECT count(*) FROM pg_stat_activity
	WHERE datname = current_database() AND application_name = $1`

// revoke runs change and announces r in one transaction, then forgets this
// node's cached credentials. While this node follows revocations, it also
// waits until every node (counted in the transaction) acknowledges having
// acted on it: PostgreSQL signals every node at the same commit, but each
// acts on its own schedule, and "fails from the next request on" must hold
// on whichever node the caller's next request reaches.
func (s *Store) revoke(ctx context.Context, r Revocation, change func(pgx.Tx) error) error {
	r.ID = newID(revocationIDPrefix)
	acked := s.auth.expect(r.ID)
	defer s.auth.unexpect(r.ID)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		if acked != nil {
			var nodes int
			if err := tx.QueryRow(ctx, countNodesSQL, listen.ApplicationName).Scan(&nodes); err != nil {
				return err
			}
			s.auth.expectAcks(r.ID, nodes)
		}
		return notifyRevocation(ctx, tx, r)
	})
	// Also when the commit's outcome is unknown: forgetting is always safe.
	s.auth.revoked()
	if err != nil || acked == nil {
		return err
	}
	select {
	case <-acked:
	case <-ctx.Done():
	case <-time.After(revocationWait):
	}
	return nil
}

func notifyRevocation(ctx context.Context, tx pgx.Tx, r Revocation) error {
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, RevocationChannel, string(payload))
	return err
}

// FollowRevocations calls revoked for every revocation announced by any node
// until ctx ends, hearing them through the node's notice hub, and
// acknowledges each (RevocationAckChannel) once revoked has returned. A
// notification sent while the hub does not listen is lost, so whenever it
// (re)starts listening it calls resync: the caller re-checks what it holds
// (CredentialLive). Credentials are cached only while the hub listens. The
// returned error is ctx's.
func (s *Store) FollowRevocations(ctx context.Context, hub *listen.Hub, revoked func(Revocation), resync func(context.Context)) error {
	revocations, acks := hub.Subscribe(RevocationChannel), hub.Subscribe(RevocationAckChannel)
	defer revocations.Close()
	defer acks.Close()
	defer s.auth.reset(false)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-acks.Ready():
			for _, id := range acks.Take().Payloads {
				s.auth.ack(id)
			}
			continue
		case <-revocations.Ready():
		}
		n := revocations.Take()
		if n.Missed {
			// Whatever was announced while not listening is unknown: forget
			// it all, and cache again only while notices flow.
			s.auth.reset(n.Listening)
			if n.Listening {
				resync(ctx)
			}
		}
		for _, payload := range n.Payloads {
			s.auth.revoked()
			var r Revocation
			if json.Unmarshal([]byte(payload), &r) != nil {
				resync(ctx) // not ours to parse: re-check everything instead
				continue
			}
			revoked(r)
			// A lost acknowledgement costs the revoking call revocationWait.
			_, _ = s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, RevocationAckChannel, r.ID)
		}
	}
}
