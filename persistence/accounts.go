package persistence

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Credential prefixes.
const (
	apiKeyPrefix     = "sk_"
	agentTokenPrefix = "at_"
	// Public ids of the credentials (not secret).
	apiKeyIDPrefix = "key_"
	tokenIDPrefix  = "tok_"
	// revocationIDPrefix names a revocation's notice (never stored).
	revocationIDPrefix = "rv_"
)

// Account is a tenant.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// APIKeyID is the id of the key CreateAccount made with the account.
	APIKeyID string `json:"-"`
}

// Inbox is one phone number / channel endpoint of an account.
type Inbox struct {
	ID          string `json:"id"`
	AccountID   string `json:"account_id,omitempty"`
	Name        string `json:"name"`
	PhoneNumber string `json:"phone_number"`
}

// Agent is a person working some inboxes of an account.
type Agent struct {
	ID        string   `json:"id"`
	AccountID string   `json:"account_id,omitempty"`
	Name      string   `json:"name"`
	Email     string   `json:"email"`
	InboxIDs  []string `json:"inbox_ids"`
	// Status is available or away (round-robin assigns available agents).
	Status string `json:"status"`
}

// Principal is who a credential authenticates. AgentID is "" for an account
// API key, which may use every inbox of the account; an agent may use only
// InboxIDs. CredentialID names the key or token itself (rate limits and
// revocation are per credential), never its secret.
type Principal struct {
	AccountID    string
	AgentID      string
	InboxIDs     []string
	CredentialID string
}

// CanUseInbox reports whether the principal may act on the inbox, given the
// inbox's account.
func (p Principal) CanUseInbox(accountID, inboxID string) bool {
	if p.AccountID != accountID {
		return false
	}
	return p.AgentID == "" || slices.Contains(p.InboxIDs, inboxID)
}

// CreateAccount creates an account and its API key. The key is returned once
// and only its hash is stored.
func (s *Store) CreateAccount(ctx context.Context, name string) (Account, string, error) {
	if strings.TrimSpace(name) == "" {
		return Account{}, "", fmt.Errorf("persistence: create account: empty name: %w", ErrInvalid)
	}
	a := Account{ID: newID("acc_"), Name: name, APIKeyID: newID(apiKeyIDPrefix)}
	key := newSecret(apiKeyPrefix)
	h := sha256.Sum256([]byte(key))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, name) VALUES ($1, $2)`, a.ID, a.Name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, key_hash, account_id) VALUES ($1, $2, $3)`, a.APIKeyID, h[:], a.ID)
		return err
	})
	if err != nil {
		return Account{}, "", fmt.Errorf("persistence: create account: %w", err)
	}
	return a, key, nil
}

// CreateInbox creates an inbox in an existing account (ErrNotFound otherwise).
func (s *Store) CreateInbox(ctx context.Context, accountID, name, phone string) (Inbox, error) {
	if strings.TrimSpace(name) == "" {
		return Inbox{}, fmt.Errorf("persistence: create inbox: empty name: %w", ErrInvalid)
	}
	in := Inbox{ID: newID("ib_"), AccountID: accountID, Name: name, PhoneNumber: phone}
	_, err := s.pool.Exec(ctx, `INSERT INTO inboxes (id, account_id, name, phone_number) VALUES ($1, $2, $3, NULLIF($4, ''))`,
		in.ID, accountID, name, phone)
	if isForeignKeyViolation(err) {
		return Inbox{}, fmt.Errorf("persistence: create inbox: account %s: %w", accountID, ErrNotFound)
	}
	if err != nil {
		return Inbox{}, fmt.Errorf("persistence: create inbox: %w", err)
	}
	return in, nil
}

// GetInbox returns an inbox by id; callers check its AccountID against the
// caller's principal.
func (s *Store) GetInbox(ctx context.Context, id string) (Inbox, error) {
	in := Inbox{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT account_id, name, coalesce(phone_number, '') FROM inboxes WHERE id = $1`, id).
		Scan(&in.AccountID, &in.Name, &in.PhoneNumber)
	if errors.Is(err, pgx.ErrNoRows) {
		return Inbox{}, fmt.Errorf("persistence: inbox %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Inbox{}, fmt.Errorf("persistence: get inbox %s: %w", id, err)
	}
	return in, nil
}

// ListInboxes returns the account's inboxes, oldest first.
func (s *Store) ListInboxes(ctx context.Context, accountID string) ([]Inbox, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, account_id, name, coalesce(phone_number, '') FROM inboxes
		WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("persistence: list inboxes of %s: %w", accountID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Inbox, error) {
		var in Inbox
		err := r.Scan(&in.ID, &in.AccountID, &in.Name, &in.PhoneNumber)
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: list inboxes of %s: %w", accountID, err)
	}
	return out, nil
}

// CreateAgent creates an agent with a token and its inbox memberships, all or
// nothing: an inbox that does not exist or belongs to another account is
// ErrNotFound (the caller must not learn which).
func (s *Store) CreateAgent(ctx context.Context, accountID, name, email string, inboxIDs []string) (Agent, string, error) {
	if strings.TrimSpace(name) == "" || strings.TrimSpace(email) == "" {
		return Agent{}, "", fmt.Errorf("persistence: create agent: empty name or email: %w", ErrInvalid)
	}
	ids := slices.Clone(inboxIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if ids == nil {
		ids = []string{}
	}
	ag := Agent{ID: newID("ag_"), AccountID: accountID, Name: name, Email: email, InboxIDs: ids, Status: AgentAvailable}
	token := newSecret(agentTokenPrefix)
	h := sha256.Sum256([]byte(token))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO agents (id, account_id, name, email) SELECT $1, id, $3, $4 FROM accounts WHERE id = $2`,
			ag.ID, accountID, name, email)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("account %s: %w", accountID, ErrNotFound)
		}
		// Inserting only the inboxes of this account and comparing counts is
		// the tenancy check and the existence check in one statement.
		tag, err = tx.Exec(ctx, `INSERT INTO agent_inboxes (agent_id, inbox_id)
			SELECT $1, id FROM inboxes WHERE account_id = $2 AND id = ANY($3)`, ag.ID, accountID, ids)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ids)) {
			return fmt.Errorf("inbox outside account %s: %w", accountID, ErrNotFound)
		}
		_, err = tx.Exec(ctx, `INSERT INTO agent_tokens (id, token_hash, agent_id) VALUES ($1, $2, $3)`, newID(tokenIDPrefix), h[:], ag.ID)
		return err
	})
	if err != nil {
		return Agent{}, "", fmt.Errorf("persistence: create agent: %w", err)
	}
	return ag, token, nil
}

// IsAgentToken reports whether secret has the form of an agent token (not
// whether it is valid).
func IsAgentToken(secret string) bool { return strings.HasPrefix(secret, agentTokenPrefix) }

// Authenticate resolves an API key or agent token to its principal, or
// ErrUnauthorized. Secrets are looked up by SHA-256: they are 256-bit random
// values, so a slow password hash would only add latency. Resolved
// credentials are cached while the node follows revocations (authCache); the
// principal's InboxIDs are shared by every caller and must not be modified.
func (s *Store) Authenticate(ctx context.Context, secret string) (Principal, error) {
	isKey := strings.HasPrefix(secret, apiKeyPrefix)
	if !isKey && !strings.HasPrefix(secret, agentTokenPrefix) || len(secret) > 128 {
		return Principal{}, fmt.Errorf("persistence: authenticate: unknown credential format: %w", ErrUnauthorized)
	}
	h := sha256.Sum256([]byte(secret))
	now := time.Now()
	p, generation, ok := s.auth.get(h, now)
	if ok {
		return p, nil
	}
	var err error
	if isKey {
		err = s.pool.QueryRow(ctx, `SELECT account_id, id FROM api_keys WHERE key_hash = $1`, h[:]).Scan(&p.AccountID, &p.CredentialID)
	} else {
		err = s.pool.QueryRow(ctx, `SELECT a.account_id, a.id, t.id,
				coalesce(array_agg(ai.inbox_id ORDER BY ai.inbox_id) FILTER (WHERE ai.inbox_id IS NOT NULL), '{}')
			FROM agent_tokens t JOIN agents a ON a.id = t.agent_id
			LEFT JOIN agent_inboxes ai ON ai.agent_id = a.id
			WHERE t.token_hash = $1 AND a.deleted_at IS NULL GROUP BY a.account_id, a.id, t.id`, h[:]).
			Scan(&p.AccountID, &p.AgentID, &p.CredentialID, &p.InboxIDs)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, fmt.Errorf("persistence: authenticate: %w", ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("persistence: authenticate: %w", err)
	}
	s.auth.put(h, p, generation, now)
	return p, nil
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func isForeignKeyViolation(err error) bool { return pgCode(err) == "23503" }
