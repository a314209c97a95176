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

// insert writes a journal row under the given transaction id (long
// finished, as every id below the test's own is).
func insert(t *testing.T, conn *pgx.Conn, conv, eventType, txid string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event, txid)
		VALUES ($1, 1, 'acc', 'ib', $2, jsonb_build_object('type', $2::text), $3::text::xid8)`, conv, eventType, txid); err != nil {
		t.Fatal(err)
	}
}

func TestReadBatchUsesJournalIndex(t *testing.T) {
	conn := connect(t)
	var plan strings.Builder
	rows, err := conn.Query(context.Background(), "EXPLAIN "+readBatchSQL, "0", "", int64(0), 500, []string{"inbound_message"})
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
	ctx := context.Background()
	insert(t, conn, "cv_late", "update", "10")
	insert(t, conn, "cv_early", "update", "9")
	first, err := ReadBatch(ctx, conn, Cursor{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].TxID != 9 {
		t.Fatalf("first entry %+v, want the one of transaction 9", first)
	}
	rest, err := ReadBatch(ctx, conn, first[0].Cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0].TxID != 10 {
		t.Fatalf("after transaction 9: %+v, want the one of transaction 10", rest)
	}
}

// TestReadBatchOfLoadsOnlyTheNamedEvents: entries of other types still come
// (they move the cursor), without their events.
func TestReadBatchOfLoadsOnlyTheNamedEvents(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	insert(t, conn, "cv_a", "inbound_message", "5")
	insert(t, conn, "cv_b", "update", "6")
	got, err := ReadBatchOf(ctx, conn, Cursor{}, 10, []string{"inbound_message"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Event) != `{"type": "inbound_message"}` || got[1].Event != nil {
		t.Fatalf("entries %+v", got)
	}
	all, err := ReadBatch(ctx, conn, Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
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
