// Package journal is what consumers of the committed journal share: a
// cursor in the journal's commit order that skips nothing, reading batches
// after it, persisting it, and electing the one active consumer of a kind
// per cluster.
//
// Journal rows carry txid, the id of the transaction that wrote them. Ids
// are handed out when transactions start writing, not when they commit, so a
// cursor that moves past the largest id seen would skip a transaction that
// commits late. Reads are therefore in (txid, conversation_id, version)
// order and only below pg_snapshot_xmin(pg_current_snapshot()), computed in
// the same statement: every transaction below that horizon has finished, so
// no row can appear behind the cursor later. Rows above the horizon wait
// until the transactions before them finish (typically a group-commit
// batch, about a millisecond), which costs a short re-poll, never an entry;
// a read reports them (Batch.Pending) so the consumer knows to re-poll.
//
// Its consumers: the search indexer (consumers/indexer), the webhook
// deliverer (consumers/webhooks) and the timer scanner (consumers/timers).
package journal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the NOTIFY channel the journal writer signals commits on.
const Channel = "journal_appended"

// Cursor is a position in the journal's (txid, conversation_id, version)
// order: everything at or before it has been consumed.
type Cursor struct {
	TxID           uint64
	ConversationID string
	Version        int64
}

func (c Cursor) String() string {
	return fmt.Sprintf("(%d, %s, %d)", c.TxID, c.ConversationID, c.Version)
}

// Entry is one journal row.
type Entry struct {
	Cursor
	AccountID string
	InboxID   string
	EventType string
	Event     []byte // the event JSON (nil when ReadBatchOf left it out)
	CreatedAt time.Time
}

// readBatchSQL reads the next rows after the cursor, settled or not, and
// marks each: settled rows (below the horizon, computed once in the same
// statement) come first in this order, so the settled ones are a prefix. One
// statement answers both "what can I consume" and "is anything committed
// waiting above the horizon", which a separate EXISTS cost a second round
// trip for — and the planner answered that EXISTS with a sequential scan of
// the whole journal, a cost that grew with its length on every idle poll.
// ORDER BY with LIMIT keeps the plan on the (txid, conversation_id, version)
// index. ORDER BY names the table's columns: a bare "txid" would mean the
// output column txid::text, whose order ("1000" < "999") skips the rows of
// every transaction id that sorts after the next power of ten. $5 lists the
// event types whose event is loaded (NULL: all), $6 names the one field of
// it loaded (NULL: the whole event); unsettled rows never load theirs.
const readBatchSQL = `
SELECT txid::text, conversation_id, version, account_id, inbox_id, event_type,
	CASE WHEN txid < h.horizon AND ($5::text[] IS NULL OR event_type = ANY($5::text[]))
		THEN (CASE WHEN $6::text IS NULL THEN event ELSE coalesce(event->$6::text, 'null') END)::text END,
	created_at, txid < h.horizon
FROM journal, (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon) h
WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3)
ORDER BY journal.txid, journal.conversation_id, journal.version
LIMIT $4`

// Batch is what one read found after a cursor.
type Batch struct {
	// Entries are committed and settled: every transaction before them has
	// finished, so nothing can appear behind them later.
	Entries []Entry
	// Pending reports committed rows after Entries that wait above the
	// horizon for an older transaction to finish — typically a
	// group-commit batch, a millisecond or two — so a short re-poll beats
	// waiting for the next NOTIFY.
	Pending bool
}

// ReadBatchOf returns up to limit settled entries after c, in cursor order,
// with the events of the named types only: the entries of other types come
// with a nil Event (they still move the cursor). An event carries the
// conversation's whole summary, so not loading the ones a consumer skips
// saves most of a read's bytes. Nil eventTypes loads every event. A field
// other than "" loads only that top-level field of each event (JSON null
// when the event lacks it).
func ReadBatchOf(ctx context.Context, conn *pgx.Conn, after Cursor, limit int, eventTypes []string, field string) (Batch, error) {
	var only *string
	if field != "" {
		only = &field
	}
	rows, err := conn.Query(ctx, readBatchSQL, strconv.FormatUint(after.TxID, 10), after.ConversationID, after.Version, limit, eventTypes, only)
	if err != nil {
		return Batch{}, fmt.Errorf("journal: read after %s: %w", after, err)
	}
	defer rows.Close()
	var b Batch
	for rows.Next() {
		var e Entry
		var txid string
		var settled bool
		if err := rows.Scan(&txid, &e.ConversationID, &e.Version, &e.AccountID, &e.InboxID, &e.EventType, &e.Event, &e.CreatedAt, &settled); err != nil {
			return Batch{}, fmt.Errorf("journal: read after %s: %w", after, err)
		}
		if !settled {
			b.Pending = true
			break
		}
		if e.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return Batch{}, fmt.Errorf("journal: read: txid %q: %w", txid, err)
		}
		b.Entries = append(b.Entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Batch{}, fmt.Errorf("journal: read after %s: %w", after, err)
	}
	return b, nil
}

// NoEvents, as ReadBatchOf's eventTypes, loads no event at all: for a
// consumer that decides from the entries which events it needs (LoadEvents).
var NoEvents = []string{}

// LoadEvents fills in the Event of each entry, found by its conversation and
// version.
func LoadEvents(ctx context.Context, conn *pgx.Conn, entries []*Entry) error {
	if len(entries) == 0 {
		return nil
	}
	type key struct {
		conv    string
		version int64
	}
	at := make(map[key]*Entry, len(entries))
	convs, versions := make([]string, 0, len(entries)), make([]int64, 0, len(entries))
	for _, e := range entries {
		at[key{e.ConversationID, e.Version}] = e
		convs, versions = append(convs, e.ConversationID), append(versions, e.Version)
	}
	rows, err := conn.Query(ctx, `SELECT j.conversation_id, j.version, j.event::text
		FROM unnest($1::text[], $2::int8[]) AS k(conversation_id, version)
		JOIN journal j ON j.conversation_id = k.conversation_id AND j.version = k.version`, convs, versions)
	if err != nil {
		return fmt.Errorf("journal: load %d events: %w", len(entries), err)
	}
	var k key
	var event []byte
	if _, err := pgx.ForEachRow(rows, []any{&k.conv, &k.version, &event}, func() error {
		if e := at[k]; e != nil {
			e.Event = event
			delete(at, k)
		}
		event = nil // a fresh buffer per row: the entry keeps this one
		return nil
	}); err != nil {
		return fmt.Errorf("journal: load %d events: %w", len(entries), err)
	}
	if len(at) > 0 {
		return fmt.Errorf("journal: load events: %d of %d not found", len(at), len(entries))
	}
	return nil
}

// Querier is what reads a cursor: a connection, a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// LoadCursor reads the named consumer's cursor (the journal's start if none).
func LoadCursor(ctx context.Context, q Querier, name string) (Cursor, error) {
	var c Cursor
	var txid string
	err := q.QueryRow(ctx, `SELECT txid::text, conversation_id, version FROM journal_cursors WHERE name = $1`, name).
		Scan(&txid, &c.ConversationID, &c.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("journal: load cursor %s: %w", name, err)
	}
	if c.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return Cursor{}, fmt.Errorf("journal: load cursor %s: txid %q: %w", name, txid, err)
	}
	return c, nil
}

// Backlog measures how far a consumer at c is behind: the age of the
// oldest entry after c (0 when there is none) and the number of entries
// after c, counting at most limit (then a lower bound, to keep the count
// cheap when far behind). Entries not yet below the horizon count too: to
// an operator they are committed work waiting.
func Backlog(ctx context.Context, q Querier, c Cursor, limit int64) (lag time.Duration, n int64, err error) {
	var lagSeconds float64
	err = q.QueryRow(ctx, `
SELECT
	coalesce((SELECT extract(epoch FROM now() - created_at)::float8 FROM journal
		WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3)
		ORDER BY journal.txid, journal.conversation_id, journal.version LIMIT 1), 0),
	(SELECT count(*) FROM (SELECT 1 FROM journal
		WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3)
		ORDER BY journal.txid, journal.conversation_id, journal.version LIMIT $4) b)`,
		strconv.FormatUint(c.TxID, 10), c.ConversationID, c.Version, limit).Scan(&lagSeconds, &n)
	if err != nil {
		return 0, 0, fmt.Errorf("journal: measure backlog after %s: %w", c, err)
	}
	if n == 0 || lagSeconds < 0 {
		lagSeconds = 0
	}
	return time.Duration(lagSeconds * float64(time.Second)), n, nil
}

// AsyncCommitSQL, run first in a consumer's transaction, lets it commit
// without waiting for its WAL flush. A consumer's writes are derived from the
// journal and commit with its cursor, so a crash that loses them loses the
// cursor's move too and the consumer redoes the same entries (at least once,
// as always). Waiting would add one fsync per consumer batch beside the
// writer's, on the disk every acknowledgement waits for; WAL order still
// puts each commit after the ones before it.
const AsyncCommitSQL = "SET LOCAL synchronous_commit = off"

const saveCursorSQL = `
INSERT INTO journal_cursors (name, txid, conversation_id, version, updated_at)
VALUES ($1, $2::text::xid8, $3, $4, now())
ON CONFLICT (name) DO UPDATE
	SET txid = excluded.txid, conversation_id = excluded.conversation_id,
		version = excluded.version, updated_at = excluded.updated_at
	WHERE (journal_cursors.txid, journal_cursors.conversation_id, journal_cursors.version)
		< (excluded.txid, excluded.conversation_id, excluded.version)`

// SaveCursor moves the named cursor to c inside tx, only ever forward, so
// that the consumer's writes for the entries up to c commit with it.
func SaveCursor(ctx context.Context, tx pgx.Tx, name string, c Cursor) error {
	_, err := tx.Exec(ctx, saveCursorSQL, name, strconv.FormatUint(c.TxID, 10), c.ConversationID, c.Version)
	if err != nil {
		return fmt.Errorf("journal: save cursor %s at %s: %w", name, c, err)
	}
	return nil
}

// QueueSaveCursor is SaveCursor as a statement of a pipelined batch that
// carries its own transaction, for consumers that write a batch's effects
// and the cursor in one round trip.
func QueueSaveCursor(b *pgx.Batch, name string, c Cursor) {
	b.Queue(saveCursorSQL, name, strconv.FormatUint(c.TxID, 10), c.ConversationID, c.Version)
}
