// Package searchtest gives the search and indexer tests a migrated
// PostgreSQL database. It applies persistence/migrations from the source tree
// with goose itself, so these tests depend on the schema files only, not on
// the persistence package's Go code.
package searchtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// MigrationsDir is persistence/migrations in the source tree.
func MigrationsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "persistence", "migrations")
}

// Migrate applies every migration to the database at url.
func Migrate(t testing.TB, url string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("searchtest: parse url: %v", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS(MigrationsDir()))
	if err != nil {
		t.Fatalf("searchtest: goose: %v", err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		t.Fatalf("searchtest: migrate: %v", err)
	}
}

// NewDatabase creates a fresh migrated database and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
	Migrate(t, url)
	return url
}

// NewPool creates a fresh migrated database and a pool on it, closed when
// the test ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	url := NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("searchtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, url
}
