package journal

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/search/searchtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// connect returns a connection to a fresh migrated database.
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, searchtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// mustRead is ReadBatchOf, failing the test on an error.
func mustRead(t *testing.T, conn *pgx.Conn, after Cursor, limit int, eventTypes []string, field string) Batch {
	t.Helper()
	read, err := ReadBatchOf(context.Background(), conn, after, limit, eventTypes, field)
	if err != nil {
		t.Fatal(err)
	}
	return read
}

// insert writes a journal row under the given transaction id (long
// finished, as every id below the test's own is).
func insert(t *testing.T, conn *pgx.Conn, conv, eventType, txid string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event, txid)
		VALUES ($1, 1, 'acc', 'ib', $2, jsonb_build_object('type', $2::text), $3::text::xid8)`, conv, eventType, txid); err != nil {
		t.Fatal(err)
	}
}

// TestReadBatchUsesJournalIndex: with a journal of some size and fresh
// statistics, a read from its end (the idle poll of a caught-up consumer)
// walks the index. The planner once answered such a poll with a sequential
// scan of the whole journal, a cost that grew with every message stored.
func TestReadBatchUsesJournalIndex(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event, txid)
		SELECT 'cv_' || i, 1, 'acc', 'ib', 'update', '{}', (1000 + i)::text::xid8 FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE journal"); err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	rows, err := conn.Query(ctx, "EXPLAIN "+readBatchSQL, "21000", "cv_20000", int64(1), 500, []string{"inbound_message"}, "item")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(l + "\n")
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if !strings.Contains(plan.String(), "journal_txid") || strings.Contains(plan.String(), "Seq Scan") {
		t.Fatalf("journal read does not use the (txid, conversation_id, version) index:\n%s", plan.String())
	}
}

// TestReadBatchOrdersTransactionIDsAsNumbers commits rows under transaction
// ids 9 and 10 (set explicitly; both long finished): the read returns 9
// first. Ordered as text, 10 came first, the cursor moved past it, and every
// row of 9 was skipped for good — which a busy node hits each time the
// transaction ids reach the next power of ten.
func TestReadBatchOrdersTransactionIDsAsNumbers(t *testing.T) {
	conn := connect(t)
	insert(t, conn, "cv_late", "update", "10")
	insert(t, conn, "cv_early", "update", "9")
	read := mustRead(t, conn, Cursor{}, 1, nil, "")
	first := read.Entries
	if len(first) != 1 || first[0].TxID != 9 {
		t.Fatalf("first entry %+v, want the one of transaction 9", first)
	}
	read = mustRead(t, conn, first[0].Cursor, 10, nil, "")
	rest := read.Entries
	if len(rest) != 1 || rest[0].TxID != 10 {
		t.Fatalf("after transaction 9: %+v, want the one of transaction 10", rest)
	}
}

// TestReadBatchOfLoadsOnlyTheNamedEvents: entries of other types still come
// (they move the cursor), without their events.
func TestReadBatchOfLoadsOnlyTheNamedEvents(t *testing.T) {
	conn := connect(t)
	insert(t, conn, "cv_a", "inbound_message", "5")
	insert(t, conn, "cv_b", "update", "6")
	read := mustRead(t, conn, Cursor{}, 10, []string{"inbound_message"}, "")
	got := read.Entries
	if len(got) != 2 || string(got[0].Event) != `{"type": "inbound_message"}` || got[1].Event != nil {
		t.Fatalf("entries %+v", got)
	}
	read = mustRead(t, conn, Cursor{}, 10, []string{"inbound_message"}, "type")
	if len(read.Entries) != 2 || string(read.Entries[0].Event) != `"inbound_message"` || read.Entries[1].Event != nil {
		t.Fatalf("one field of the named events: %+v", read.Entries)
	}
	read = mustRead(t, conn, Cursor{}, 10, nil, "item")
	if len(read.Entries) != 2 || string(read.Entries[0].Event) != "null" {
		t.Fatalf("a field the event lacks: %+v, want JSON null", read.Entries)
	}
	read = mustRead(t, conn, Cursor{}, 10, nil, "")
	all := read.Entries
	if len(all) != 2 || string(all[1].Event) != `{"type": "update"}` {
		t.Fatalf("entries %+v", all)
	}
}

// TestBacklogCountsEntriesAfterTheCursor, capped at the limit.
func TestBacklogCountsEntriesAfterTheCursor(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if lag, n, err := Backlog(ctx, conn, Cursor{}, 10); err != nil || lag != 0 || n != 0 {
		t.Fatalf("empty journal: lag %v, backlog %d, %v", lag, n, err)
	}
	for i, conv := range []string{"cv_1", "cv_2", "cv_3"} {
		insert(t, conn, conv, "update", []string{"7", "8", "9"}[i])
	}
	if _, n, err := Backlog(ctx, conn, Cursor{}, 10); err != nil || n != 3 {
		t.Fatalf("backlog %d, %v; want 3", n, err)
	}
	if _, n, err := Backlog(ctx, conn, Cursor{}, 2); err != nil || n != 2 {
		t.Fatalf("capped backlog %d, %v; want 2", n, err)
	}
	if lag, n, err := Backlog(ctx, conn, Cursor{TxID: 8, ConversationID: "cv_2", Version: 1}, 10); err != nil || n != 1 || lag < 0 {
		t.Fatalf("after the second: lag %v, backlog %d, %v", lag, n, err)
	}
	if lag, n, err := Backlog(ctx, conn, Cursor{TxID: 9, ConversationID: "cv_3", Version: 1}, 10); err != nil || n != 0 || lag != 0 {
		t.Fatalf("caught up: lag %v, backlog %d, %v", lag, n, err)
	}
}

// TestReadBatchReportsRowsAboveTheHorizon: a row committed while an older
// transaction is still open is not returned (it would let the cursor pass
// the older one's rows), but the read reports it as pending; once the older
// transaction ends, both are read, in order.
func TestReadBatchReportsRowsAboveTheHorizon(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, conn.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	older, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var olderTx string
	if err := older.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&olderTx); err != nil {
		t.Fatal(err)
	}
	// Committed by a later transaction while the older one is open.
	if _, err := conn.Exec(ctx, `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event, txid)
		VALUES ('cv_late', 1, 'acc', 'ib', 'update', '{}', pg_current_xact_id())`); err != nil {
		t.Fatal(err)
	}
	read := mustRead(t, conn, Cursor{}, 10, nil, "")
	if len(read.Entries) != 0 || !read.Pending {
		t.Fatalf("with an older transaction open: %+v, want no entries and pending", read)
	}
	if _, err := older.Exec(ctx, `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event, txid)
		VALUES ('cv_early', 1, 'acc', 'ib', 'update', '{}', $1::text::xid8)`, olderTx); err != nil {
		t.Fatal(err)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	read = mustRead(t, conn, Cursor{}, 10, nil, "")
	if len(read.Entries) != 2 || read.Pending || read.Entries[0].ConversationID != "cv_early" || read.Entries[1].ConversationID != "cv_late" {
		t.Fatalf("after the older transaction ended: %+v, want cv_early then cv_late, nothing pending", read)
	}
}

// TestLoadEventsFillsTheEntriesReadWithout: a consumer reads a batch
// without events, then loads those it needs.
func TestLoadEventsFillsTheEntriesReadWithout(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	insert(t, conn, "cv_a", "inbound_message", "5")
	insert(t, conn, "cv_b", "update", "6")
	read := mustRead(t, conn, Cursor{}, 10, NoEvents, "")
	if len(read.Entries) != 2 || read.Entries[0].Event != nil || read.Entries[1].Event != nil {
		t.Fatalf("read without events: %+v", read.Entries)
	}
	want := &read.Entries[1]
	if err := LoadEvents(ctx, conn, []*Entry{want}); err != nil {
		t.Fatal(err)
	}
	if string(want.Event) != `{"type": "update"}` || read.Entries[0].Event != nil {
		t.Fatalf("after loading the second: %+v", read.Entries)
	}
	missing := &Entry{Cursor: Cursor{ConversationID: "cv_none", Version: 1}}
	if err := LoadEvents(ctx, conn, []*Entry{missing}); err == nil {
		t.Fatal("an entry not in the journal loaded without error")
	}
}
