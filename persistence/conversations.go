package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// ClaimEpoch starts an activation of a conversation: it bumps the fencing
// epoch (creating the head at epoch 1, version 0 for a new conversation) and
// returns it with the committed version. Any append of an older activation
// fails with ErrFenced from then on.
func (s *Store) ClaimEpoch(ctx context.Context, conversationID string) (epoch, version int64, err error) {
	err = s.pool.QueryRow(ctx, `INSERT INTO conversation_heads (conversation_id, epoch, version) VALUES ($1, 1, 0)
		ON CONFLICT (conversation_id) DO UPDATE SET epoch = conversation_heads.epoch + 1
		RETURNING epoch, version`, conversationID).Scan(&epoch, &version)
	if err != nil {
		return 0, 0, fmt.Errorf("persistence: claim epoch %s: %w", conversationID, err)
	}
	return epoch, version, nil
}

// LoadSnapshot returns the latest snapshot of a conversation, if any.
func (s *Store) LoadSnapshot(ctx context.Context, conversationID string) (version int64, state []byte, found bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT version, state FROM snapshots WHERE conversation_id = $1`, conversationID).
		Scan(&version, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("persistence: load snapshot %s: %w", conversationID, err)
	}
	return version, state, true, nil
}

// LoadEvents returns the journal entries after afterVersion, ascending.
func (s *Store) LoadEvents(ctx context.Context, conversationID string, afterVersion int64) ([]conversation.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, event FROM journal
		WHERE conversation_id = $1 AND version > $2 ORDER BY version`, conversationID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("persistence: load events %s after %d: %w", conversationID, afterVersion, err)
	}
	defer rows.Close()
	var out []conversation.Event
	for rows.Next() {
		var v int64
		var raw []byte
		if err := rows.Scan(&v, &raw); err != nil {
			return nil, fmt.Errorf("persistence: load events %s: %w", conversationID, err)
		}
		s.JournalRowsRead.Add(1)
		var ev conversation.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("persistence: load events %s: decode version %d: %w", conversationID, v, err)
		}
		ev.Version = v // the key is authoritative
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persistence: load events %s: %w", conversationID, err)
	}
	return out, nil
}

// LookupIdempotency finds the event a durable idempotency key produced.
func (s *Store) LookupIdempotency(ctx context.Context, scope, key string) (conversationID string, version int64, found bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT conversation_id, version FROM idempotency_keys WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&conversationID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("persistence: lookup idempotency %s/%s: %w", scope, key, err)
	}
	return conversationID, version, true, nil
}

// GetItemAt returns the timeline item first appended at seq.
func (s *Store) GetItemAt(ctx context.Context, conversationID string, seq int64) (conversation.Item, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT item FROM items WHERE conversation_id = $1 AND seq = $2`, conversationID, seq).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return conversation.Item{}, fmt.Errorf("persistence: item %s@%d: %w", conversationID, seq, ErrNotFound)
	}
	if err != nil {
		return conversation.Item{}, fmt.Errorf("persistence: get item %s@%d: %w", conversationID, seq, err)
	}
	var it conversation.Item
	if err := json.Unmarshal(raw, &it); err != nil {
		return conversation.Item{}, fmt.Errorf("persistence: get item %s@%d: decode: %w", conversationID, seq, err)
	}
	return it, nil
}

// Item page bounds.
const (
	defaultItemsLimit = 50
	maxItemsLimit     = 1000
)

// ListItems pages a timeline newest first: items with seq < before (all when
// before is 0). nextBefore is the before of the next page, nil on the last.
func (s *Store) ListItems(ctx context.Context, conversationID string, before int64, limit int) (items []conversation.Item, nextBefore *int64, err error) {
	if limit <= 0 {
		limit = defaultItemsLimit
	}
	limit = min(limit, maxItemsLimit)
	if before <= 0 {
		before = 1<<63 - 1
	}
	// One extra row tells whether another page exists without a COUNT.
	rows, err := s.pool.Query(ctx, `SELECT seq, item FROM items WHERE conversation_id = $1 AND seq < $2
		ORDER BY seq DESC LIMIT $3`, conversationID, before, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("persistence: list items %s: %w", conversationID, err)
	}
	defer rows.Close()
	items = make([]conversation.Item, 0, limit)
	more := false
	for rows.Next() {
		if len(items) == limit {
			more = true
			break
		}
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, nil, fmt.Errorf("persistence: list items %s: %w", conversationID, err)
		}
		var it conversation.Item
		if err := json.Unmarshal(raw, &it); err != nil {
			return nil, nil, fmt.Errorf("persistence: list items %s: decode seq %d: %w", conversationID, seq, err)
		}
		it.Seq = seq
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("persistence: list items %s: %w", conversationID, err)
	}
	if more {
		nb := items[len(items)-1].Seq
		nextBefore = &nb
	}
	return items, nextBefore, nil
}

// ConversationRef returns a conversation's tenancy from the read model, so
// the gateway can authorize before reaching the actor.
func (s *Store) ConversationRef(ctx context.Context, conversationID string) (accountID, inboxID string, err error) {
	err = s.pool.QueryRow(ctx, `SELECT account_id, inbox_id FROM conversations WHERE id = $1`, conversationID).
		Scan(&accountID, &inboxID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("persistence: conversation %s: %w", conversationID, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("persistence: conversation ref %s: %w", conversationID, err)
	}
	return accountID, inboxID, nil
}

// GetSummary returns the read-model row of a conversation.
func (s *Store) GetSummary(ctx context.Context, conversationID string) (conversation.Summary, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT summary FROM conversations WHERE id = $1`, conversationID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return conversation.Summary{}, fmt.Errorf("persistence: conversation %s: %w", conversationID, ErrNotFound)
	}
	if err != nil {
		return conversation.Summary{}, fmt.Errorf("persistence: get summary %s: %w", conversationID, err)
	}
	var sum conversation.Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		return conversation.Summary{}, fmt.Errorf("persistence: get summary %s: decode: %w", conversationID, err)
	}
	return sum, nil
}

// LoadInbox reads what an inbox actor holds in memory: every non-closed
// conversation, and the closedKept most recently active closed ones plus the
// number of all closed ones (older closed ones are paged from here on demand).
func (s *Store) LoadInbox(ctx context.Context, inboxID string, closedKept int) (active, closedRecent []conversation.Summary, closedTotal int, err error) {
	// One snapshot for the three reads, so the counts match the rows.
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		active, err = querySummaries(ctx, tx, `SELECT summary FROM conversations
			WHERE inbox_id = $1 AND status <> 'closed'`, inboxID)
		if err != nil {
			return err
		}
		if closedKept > 0 {
			closedRecent, err = querySummaries(ctx, tx, `SELECT summary FROM conversations
				WHERE inbox_id = $1 AND status = 'closed' ORDER BY closed_activity_at DESC, id DESC LIMIT $2`, inboxID, closedKept)
			if err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM conversations WHERE inbox_id = $1 AND status = 'closed'`, inboxID).
			Scan(&closedTotal)
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("persistence: load inbox %s: %w", inboxID, err)
	}
	return active, closedRecent, closedTotal, nil
}

func querySummaries(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]conversation.Summary, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []conversation.Summary
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var sum conversation.Summary
		if err := json.Unmarshal(raw, &sum); err != nil {
			return nil, fmt.Errorf("decode summary: %w", err)
		}
		out = append(out, sum)
	}
	return out, rows.Err()
}

// ApplySummary upserts a read-model row unless the stored version is the same
// or newer (stale never overwrites fresh). The writer applies the same guard
// inside its batch statement; this is the stand-alone form.
func (s *Store) ApplySummary(ctx context.Context, sum conversation.Summary, contactKey string) (applied bool, err error) {
	if sum.ID == "" || sum.AccountID == "" || sum.InboxID == "" {
		return false, fmt.Errorf("persistence: apply summary: missing id, account or inbox: %w", ErrInvalid)
	}
	raw, err := json.Marshal(sum)
	if err != nil {
		return false, fmt.Errorf("persistence: apply summary %s: encode: %w", sum.ID, err)
	}
	tags := sum.Tags
	if tags == nil {
		tags = []string{}
	}
	tag, err := s.pool.Exec(ctx, upsertConversationSQL,
		sum.ID, sum.AccountID, sum.InboxID, contactKey, sum.Version, string(sum.Status), sum.Addressed,
		sum.AssigneeID, string(sum.Channel), tags, sum.LastActivityAt, sum.WaitingSince, raw)
	if err != nil {
		return false, fmt.Errorf("persistence: apply summary %s@%d: %w", sum.ID, sum.Version, err)
	}
	return tag.RowsAffected() == 1, nil
}

const upsertConversationSQL = `INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed,
		assignee_id, channel, tags, last_activity_at, waiting_since, summary)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (id) DO UPDATE SET ` + conversationUpdateSet + `
	WHERE conversations.version < excluded.version`

// conversationUpdateSet is shared with the writer's batch statement so the
// two upserts cannot drift apart. account_id, inbox_id and contact_key never
// change for a conversation (its id is derived from them).
const conversationUpdateSet = `version = excluded.version, status = excluded.status, addressed = excluded.addressed,
		assignee_id = excluded.assignee_id, channel = excluded.channel, tags = excluded.tags,
		last_activity_at = excluded.last_activity_at, waiting_since = excluded.waiting_since, summary = excluded.summary`
