package loadtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// readModelDB is a fresh database with the core schema applied from the
// migration file itself, so the comparison queries are checked against
// the read model the server really writes.
func readModelDB(t *testing.T) string {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	src, err := os.ReadFile("../persistence/migrations/00001_core.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(src), "-- +goose Down")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, up); err != nil {
		t.Fatalf("apply schema: %v", err)
	}
	return dbURL
}

func TestSQLComparerFirstPage(t *testing.T) {
	dbURL := readModelDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	statuses := []string{"new", "open", "pending", "closed"}
	for i := range 80 {
		_, err := conn.Exec(ctx, `INSERT INTO conversations
			(id, account_id, inbox_id, contact_key, version, status, addressed, channel, last_activity_at, summary)
			VALUES ($1, 'a1', 'in1', $2, 1, $3, $4, 'sms', now() - $5 * interval '1 second', $6)`,
			fmt.Sprintf("c%d", i), fmt.Sprintf("+1555%07d", i), statuses[i%4], i%3 == 0, i,
			fmt.Sprintf(`{"id": "c%d", "version": 1}`, i))
		if err != nil {
			t.Fatal(err)
		}
	}
	cmp, err := openSQLComparer(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer cmp.close()
	n, err := cmp.firstPage(ctx, "in1")
	if err != nil {
		t.Fatal(err)
	}
	if n != 50 { // 60 not closed, first page of 50
		t.Errorf("page has %d rows, want 50", n)
	}
	if n, err := cmp.firstPage(ctx, "other"); err != nil || n != 0 {
		t.Errorf("other inbox: %d rows, %v", n, err)
	}
}

func TestSQLComparerNeedsReadModel(t *testing.T) {
	_, err := openSQLComparer(context.Background(), pgtest.NewDatabase(t))
	if err == nil || !strings.Contains(err.Error(), "read model") {
		t.Fatalf("openSQLComparer on an empty database = %v", err)
	}
}

func TestRunCompareSQL(t *testing.T) {
	dbURL := readModelDB(t)
	s := newFakeServer(t, fakeFaults{})
	cfg := quickConfig(s)
	cfg.CompareSQL, cfg.DatabaseURL = true, dbURL
	cfg.CompareInterval = 10 * time.Millisecond
	// Long enough for a few comparisons on a loaded machine under -race
	// (each is an API page and an SQL page, one after the other).
	cfg.Duration = 2 * time.Second
	rep := runOK(t, cfg)
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	cs := rep.CompareSQL
	if cs == nil || cs.API == nil || cs.SQL == nil {
		t.Fatalf("compare_sql = %+v", cs)
	}
	if cs.API.Count < 3 || cs.SQL.Count < 3 || cs.RatioP50 <= 0 {
		t.Fatalf("compare_sql = %+v (api %+v, sql %+v)", cs, cs.API, cs.SQL)
	}
}
