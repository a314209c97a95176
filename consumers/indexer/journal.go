package indexer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The journal side: the cursor, reading committed entries past it, and
// moving it forward with the poison entries of a batch.

// cursor is a position in the journal's (txid, conversation_id, version)
// order: everything at or before it is indexed (or recorded as skipped).
type cursor struct {
	TxID           uint64
	ConversationID string
	Version        int64
}

func (c cursor) String() string {
	return fmt.Sprintf("(%d, %s, %d)", c.TxID, c.ConversationID, c.Version)
}

// entry is one journal row. Event is only loaded for message events.
type entry struct {
	cursor
	AccountID string
	InboxID   string
	EventType string
	Event     []byte
	CreatedAt time.Time
}

// failure is a skipped (poison) entry, as recorded in search_failures.
type failure struct {
	entry     entry
	messageID string
	reason    string
}

func (ix *Indexer) loadCursor(ctx context.Context, conn *pgx.Conn) (cursor, error) {
	var c cursor
	var txid string
	err := conn.QueryRow(ctx, `SELECT txid::text, conversation_id, version FROM search_cursor WHERE name = $1`,
		ix.cfg.CursorName).Scan(&txid, &c.ConversationID, &c.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, fmt.Errorf("indexer: load cursor: %w", err)
	}
	if c.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return cursor{}, fmt.Errorf("indexer: load cursor: txid %q: %w", txid, err)
	}
	return c, nil
}

// readBatchSQL: see the package comment. The horizon is a one-time
// sub-select, so it is an index condition next to the cursor's row
// comparison and the scan stops at the horizon. ORDER BY names the table's
// columns: a bare "txid" would mean the output column txid::text, whose
// order ("1000" < "999") skips the rows of every transaction id that sorts
// after the next power of ten.
const readBatchSQL = `
SELECT txid::text, conversation_id, version, account_id, inbox_id, event_type,
	CASE WHEN event_type IN ('inbound_message', 'outbound_message') THEN event::text END,
	created_at
FROM journal
WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3)
	AND txid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY journal.txid, journal.conversation_id, journal.version
LIMIT $4`

func readBatch(ctx context.Context, conn *pgx.Conn, after cursor, limit int) ([]entry, error) {
	rows, err := conn.Query(ctx, readBatchSQL, strconv.FormatUint(after.TxID, 10), after.ConversationID, after.Version, limit)
	if err != nil {
		return nil, fmt.Errorf("indexer: read journal: %w", err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var e entry
		var txid string
		var event *string
		if err := rows.Scan(&txid, &e.ConversationID, &e.Version, &e.AccountID, &e.InboxID, &e.EventType, &event, &e.CreatedAt); err != nil {
			return nil, fmt.Errorf("indexer: read journal: %w", err)
		}
		if e.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return nil, fmt.Errorf("indexer: read journal: txid %q: %w", txid, err)
		}
		if event != nil {
			e.Event = []byte(*event)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("indexer: read journal: %w", err)
	}
	return out, nil
}

// pendingAfter reports whether committed rows exist after c at all, i.e.
// rows the last read left out because they are above the horizon.
func pendingAfter(ctx context.Context, conn *pgx.Conn, c cursor) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM journal WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3))`,
		strconv.FormatUint(c.TxID, 10), c.ConversationID, c.Version).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("indexer: check pending: %w", err)
	}
	return ok, nil
}

// waitNotification waits up to d for a NOTIFY on conn; a timeout is normal.
func waitNotification(ctx context.Context, conn *pgx.Conn, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(wctx)
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("indexer: wait for notification: %w", err)
}

const recordFailuresSQL = `
INSERT INTO search_failures (conversation_id, version, account_id, message_id, reason)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (conversation_id, version) DO UPDATE
	SET message_id = excluded.message_id, reason = excluded.reason, failed_at = now()`

// saveCursorSQL only ever moves the cursor forward.
const saveCursorSQL = `
INSERT INTO search_cursor (name, txid, conversation_id, version, updated_at)
VALUES ($1, $2::text::xid8, $3, $4, now())
ON CONFLICT (name) DO UPDATE
	SET txid = excluded.txid, conversation_id = excluded.conversation_id,
		version = excluded.version, updated_at = excluded.updated_at
	WHERE (search_cursor.txid, search_cursor.conversation_id, search_cursor.version)
		< (excluded.txid, excluded.conversation_id, excluded.version)`

func (ix *Indexer) commit(ctx context.Context, conn *pgx.Conn, next cursor, failures []failure) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if len(failures) > 0 {
			n := len(failures)
			convs, versions, accounts, ids, reasons := make([]string, n), make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
			for i, f := range failures {
				convs[i], versions[i], accounts[i] = f.entry.ConversationID, f.entry.Version, f.entry.AccountID
				ids[i], reasons[i] = f.messageID, f.reason
			}
			if _, err := tx.Exec(ctx, recordFailuresSQL, convs, versions, accounts, ids, reasons); err != nil {
				return fmt.Errorf("record failures: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, saveCursorSQL, ix.cfg.CursorName, strconv.FormatUint(next.TxID, 10), next.ConversationID, next.Version); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexer: commit batch up to %s: %w", next, err)
	}
	return nil
}
