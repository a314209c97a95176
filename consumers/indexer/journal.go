package indexer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// Moving the cursor (package journal) forward past a batch, with the batch's
// poison entries.

// messageEvents are the event types whose events the indexer reads: only
// they carry searchable items. Other entries only move the cursor.
var messageEvents = []string{string(conversation.EventInbound), string(conversation.EventOutbound)}

// failure is a skipped (poison) entry, as recorded in search_failures.
type failure struct {
	entry     journal.Entry
	messageID string
	reason    string
}

const recordFailuresSQL = `
INSERT INTO search_failures (conversation_id, version, account_id, message_id, reason)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (conversation_id, version) DO UPDATE
	SET message_id = excluded.message_id, reason = excluded.reason, failed_at = now()`

func (ix *Indexer) commit(ctx context.Context, conn *pgx.Conn, next journal.Cursor, failures []failure) error {
	// One round trip. The cursor may commit without waiting for its WAL
	// flush: a crash that loses it moves the indexer back over entries it
	// indexes again, the same way (journal.AsyncCommitSQL).
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(journal.AsyncCommitSQL)
	if len(failures) > 0 {
		n := len(failures)
		convs, versions, accounts, ids, reasons := make([]string, n), make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
		for i, f := range failures {
			convs[i], versions[i], accounts[i] = f.entry.ConversationID, f.entry.Version, f.entry.AccountID
			ids[i], reasons[i] = f.messageID, f.reason
		}
		b.Queue(recordFailuresSQL, convs, versions, accounts, ids, reasons)
	}
	journal.QueueSaveCursor(b, ix.cfg.CursorName, next)
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		// The session ends on an error and its connection with it, so an
		// aborted transaction never outlives this batch.
		return fmt.Errorf("indexer: commit batch up to %s: %w", next, err)
	}
	return nil
}
