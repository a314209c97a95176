package indexer

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/search/pgsearch"
	"github.com/switchboard-dev/switchboard/search/searchtest"
)

// cursorMigration moved the indexer's cursor from search_cursor into
// journal_cursors.
const cursorMigration = 12

// TestCursorStoredTheOldWayCarriesOver: a database whose indexer kept its
// position in search_cursor (before migration 00012) is migrated; the
// indexer then sends exactly the messages after that position — nothing
// indexed again from the start, nothing skipped — and migrating down puts
// the position back where the old code looks for it.
func TestCursorStoredTheOldWayCarriesOver(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	migrations, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(searchtest.MigrationsDir()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.UpTo(ctx, cursorMigration-1); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{t: t, pool: pool, url: url}

	for i := range 20 {
		e.commit(message(fmt.Sprintf("o%d", i), "acc", "ib", 1, fmt.Sprintf("oscar %d", i)))
	}
	// The old indexer had indexed those 20 and stored its position after
	// them, in its own table under its old name.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read, err := journal.ReadBatchOf(ctx, conn.Conn(), journal.Cursor{}, 100, nil, "")
	conn.Release()
	indexed := read.Entries
	if err != nil || len(indexed) != 20 {
		t.Fatalf("journal holds %d entries (%v), want 20", len(indexed), err)
	}
	old := indexed[len(indexed)-1].Cursor
	if _, err := pool.Exec(ctx, `INSERT INTO search_cursor (name, txid, conversation_id, version) VALUES ('default', $1::text::xid8, $2, $3)`,
		fmt.Sprint(old.TxID), old.ConversationID, old.Version); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 20; i < 35; i++ {
		e.commit(message(fmt.Sprintf("o%d", i), "acc", "ib", 1, fmt.Sprintf("oscar %d", i)))
		want = append(want, itemID(fmt.Sprintf("o%d", i), 1))
	}

	if _, err := migrations.UpTo(ctx, cursorMigration); err != nil {
		t.Fatal(err)
	}
	if c := e.cursor(); c != old {
		t.Fatalf("after the migration the cursor is %s, want %s", c, old)
	}
	rec := &recorder{Backend: pgsearch.New(pool)}
	r := e.start(rec, testConfig)
	poll.Until(t, 10*time.Second, "the messages after the old cursor", func() bool { return len(rec.accepted()) >= len(want) })
	poll.Until(t, 10*time.Second, "caught up", caughtUp(r.ix))
	r.stop()
	got := rec.accepted()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("indexed after the migration:\n%v\nwant exactly the messages after the old cursor:\n%v", got, want)
	}

	// Down: the old table again, at the position the indexer reached.
	reached := e.cursor()
	if _, err := migrations.DownTo(ctx, cursorMigration-1); err != nil {
		t.Fatal(err)
	}
	var txid string
	var back journal.Cursor
	if err := pool.QueryRow(ctx, `SELECT txid::text, conversation_id, version FROM search_cursor WHERE name = 'default'`).
		Scan(&txid, &back.ConversationID, &back.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(txid, &back.TxID); err != nil || back != reached {
		t.Fatalf("after migrating down search_cursor holds %s (%v), want %s", back, err, reached)
	}
	if c := e.cursor(); c != (journal.Cursor{}) {
		t.Fatalf("after migrating down journal_cursors still holds the indexer at %s", c)
	}
}
