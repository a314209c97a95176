package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// TestDevUsesTheDatabaseItIsGiven: `switchboard dev` (make run) starts a
// PostgreSQL of its own only when no SWITCHBOARD_DATABASE_URL is set; given
// one, it migrates and serves that database, with its demo account there.
func TestDevUsesTheDatabaseItIsGiven(t *testing.T) {
	bin := buildSwitchboard(t)
	dbURL := pgtest.NewDatabase(t)
	dir := t.TempDir()
	srv := startCommand(t, bin, "dev", dbURL, "dev", "SWITCHBOARD_DEV_DIR="+dir)
	api{t: t, base: srv.base}.with(testAdminToken).must(200, "GET", "/v1/admin/stats", nil)
	// The node is ready before dev creates the demo through its API; dev
	// writes demo.json once the demo exists.
	poll.Until(t, 30*time.Second, "dev to write demo.json", func() bool {
		_, err := os.Stat(filepath.Join(dir, "demo.json"))
		return err == nil
	})
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var accounts int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM accounts`).Scan(&accounts); err != nil || accounts == 0 {
		t.Fatalf("the given database holds %d accounts (%v): dev did not use it", accounts, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres")); !os.IsNotExist(err) {
		t.Fatalf("dev started a PostgreSQL of its own in %s (stat: %v)", dir, err)
	}
}
