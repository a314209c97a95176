package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// Activation is what a conversation's activation starts from: its fencing
// epoch, the journal's head at the claim, and the state to restore (the
// latest snapshot, if any, and the journal after it).
type Activation struct {
	Epoch           int64
	Head            int64
	SnapshotVersion int64  // 0 without a snapshot
	Snapshot        []byte // nil without a snapshot
	Events          []conversation.Event
}

// The statements of Activate.
const (
	claimEpochSQL = `INSERT INTO conversation_heads (conversation_id, epoch, version) VALUES ($1, 1, 0)
		ON CONFLICT (conversation_id) DO UPDATE SET epoch = conversation_heads.epoch + 1
		RETURNING epoch, version`
	loadSnapshotSQL = `SELECT version, state FROM snapshots WHERE conversation_id = $1`
	loadTailSQL     = `SELECT version, event FROM journal WHERE conversation_id = $1
		AND version > COALESCE((SELECT version FROM snapshots WHERE conversation_id = $1), 0)
		ORDER BY version`
)

// Activate claims the epoch and reads the state in one round trip. The
// claim bumps the fencing epoch (creating the head at epoch 1, version 0
// for a new conversation): any append of an older activation fails with
// ErrFenced from then on.
//
// The claim commits without waiting for its WAL flush, which would cost an
// fsync on every activation. Nothing of this activation becomes durable
// before the claim does: its effects are appends, synchronous commits that
// check the epoch, and a flush covers every WAL record before it. Should a
// crash lose the claim, the activation has written nothing, and the older
// epoch it restores fences this activation's first append (it stops and the
// next request starts afresh); an older activation fenced meanwhile by the
// lost claim has stopped, which is always safe. Should another activation
// claim the same epoch number again after the crash, both restored the same
// durable state and every append also checks the previous version: the
// first to append wins, the other is refused as fenced and stops.
//
// The reads come after the claim's commit, so they see every append the
// claim fenced in behind; they share one snapshot (repeatable read) so the
// tail starts exactly at the snapshot read even if a newer snapshot lands
// in between.
func (s *Store) Activate(ctx context.Context, conversationID string) (a Activation, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return a, fmt.Errorf("persistence: activate %s: %w", conversationID, err)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(claimEpochSQL, conversationID)
	b.Queue("COMMIT")
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	b.Queue(loadSnapshotSQL, conversationID)
	b.Queue(loadTailSQL, conversationID)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	a, err = readActivation(br, conversationID, &s.JournalRowsRead)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("persistence: activate %s: %w", conversationID, cerr)
	}
	if err != nil {
		rollbackLeftOpen(ctx, conn)
	}
	return a, err
}

func readActivation(br pgx.BatchResults, conversationID string, rowsRead *atomic.Int64) (a Activation, err error) {
	fail := func(step string, err error) (Activation, error) {
		return Activation{}, fmt.Errorf("persistence: activate %s: %s: %w", conversationID, step, err)
	}
	for _, step := range []string{"begin", "set"} {
		if _, err := br.Exec(); err != nil {
			return fail(step, err)
		}
	}
	if err := br.QueryRow().Scan(&a.Epoch, &a.Head); err != nil {
		return fail("claim epoch", err)
	}
	for _, step := range []string{"commit claim", "begin read"} {
		if _, err := br.Exec(); err != nil {
			return fail(step, err)
		}
	}
	switch err := br.QueryRow().Scan(&a.SnapshotVersion, &a.Snapshot); {
	case errors.Is(err, pgx.ErrNoRows):
		a.SnapshotVersion, a.Snapshot = 0, nil
	case err != nil:
		return fail("load snapshot", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fail("load journal", err)
	}
	for rows.Next() {
		var v int64
		var raw []byte
		if err := rows.Scan(&v, &raw); err != nil {
			rows.Close()
			return fail("load journal", err)
		}
		rowsRead.Add(1)
		var ev conversation.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			rows.Close()
			return fail(fmt.Sprintf("decode journal version %d", v), err)
		}
		ev.Version = v // the key is authoritative
		a.Events = append(a.Events, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("load journal", err)
	}
	if _, err := br.Exec(); err != nil {
		return fail("end read", err)
	}
	return a, nil
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
		return tx.QueryRow(ctx, countClosedSQL, inboxID).Scan(&closedTotal)
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("persistence: load inbox %s: %w", inboxID, err)
	}
	return active, closedRecent, closedTotal, nil
}

// InboxChanges reads what an inbox actor reconciles its state with
// (inbox.State.Reconcile): the summaries of the inbox's conversations that
// are not closed or are held (held: the versions the actor holds in
// memory), where the row is newer than what is held; and the number of
// closed ones; in one snapshot. Versions are compared before any summary
// is read, so an inbox that missed little costs little to decode, however
// large.
func (s *Store) InboxChanges(ctx context.Context, inboxID string, held map[string]int64) (rows []conversation.Summary, closedTotal int, err error) {
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var newer []string
		seen := make(map[string]bool, len(held))
		collect := func(sql string, args ...any) error {
			rs, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			var id string
			var version int64
			_, err = pgx.ForEachRow(rs, []any{&id, &version}, func() error {
				seen[id] = true
				if v, ok := held[id]; !ok || version > v {
					newer = append(newer, id)
				}
				return nil
			})
			return err
		}
		if err := collect(`SELECT id, version FROM conversations WHERE inbox_id = $1 AND status <> 'closed'`, inboxID); err != nil {
			return err
		}
		// Of the held ones, those not read yet: closed now.
		var rest []string
		for id := range held {
			if !seen[id] {
				rest = append(rest, id)
			}
		}
		if len(rest) > 0 {
			if err := collect(`SELECT id, version FROM conversations WHERE id = ANY($2) AND inbox_id = $1 AND status = 'closed'`,
				inboxID, rest); err != nil {
				return err
			}
		}
		if len(newer) > 0 {
			var err error
			if rows, err = querySummaries(ctx, tx, `SELECT summary FROM conversations WHERE id = ANY($1)`, newer); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, countClosedSQL, inboxID).Scan(&closedTotal)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("persistence: read inbox %s changes: %w", inboxID, err)
	}
	return rows, closedTotal, nil
}

// countClosedSQL counts an inbox's closed conversations, for the part of
// its closed count that is not in memory.
const countClosedSQL = `SELECT count(*) FROM conversations WHERE inbox_id = $1 AND status = 'closed'`

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
