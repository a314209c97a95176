// Package persistence is Switchboard's PostgreSQL layer: migrations, the
// conversation journal with fencing and group commit, snapshots, the
// conversations read model, idempotency keys, accounts and credentials.
package persistence

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Sentinel errors. They are returned wrapped with context; test with errors.Is.
var (
	ErrNotFound     = errors.New("persistence: not found")
	ErrUnauthorized = errors.New("persistence: unauthorized")
	// ErrFenced: the append lost to a newer activation of the conversation
	// (or its version is not the head's next one). The activation must stop.
	ErrFenced = errors.New("persistence: fenced by a newer activation")
	// ErrDuplicate: an idempotency key of the append already exists.
	ErrDuplicate = errors.New("persistence: duplicate idempotency key")
	ErrInvalid   = errors.New("persistence: invalid argument")
	// ErrClosed: the writer no longer accepts appends.
	ErrClosed = errors.New("persistence: writer closed")
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrate applies every embedded migration that is not applied yet. goose's
// PostgreSQL session locker (an advisory lock) serializes nodes that start
// at the same time, so running it from every node is safe.
func Migrate(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("persistence: migrate: parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	dir, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return fmt.Errorf("persistence: migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("persistence: migrate: locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("persistence: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("persistence: migrate: %w", err)
	}
	return nil
}

// Store is the read/write access to PostgreSQL used outside the group-commit
// path: set-up, credentials, activation reads and read-model queries.
type Store struct {
	pool *pgxpool.Pool
	auth authCache

	// JournalRowsRead counts journal rows activations have read, so tests can
	// prove that activation reads only the tail after the snapshot.
	JournalRowsRead atomic.Int64
}

// Open connects a pool. Without pool_max_conns in the URL the pool is sized
// for a few concurrent readers per core plus the writer's committers; more
// connections than that only add contention inside PostgreSQL.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("persistence: open: parse database url: %w", err)
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = int32(min(max(8, 4*runtime.GOMAXPROCS(0)), 32))
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("persistence: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("persistence: open: ping: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Pool is the underlying connection pool (the Writer and the indexer use it).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("persistence: ping: %w", err)
	}
	return nil
}

// Close closes the pool; call it after the Writer is closed.
func (s *Store) Close() { s.pool.Close() }

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix + 128 random bits.
func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + lowerBase32.EncodeToString(b[:])
}

// newSecret returns prefix + 256 random bits; the prefix tells a credential's
// kind at a glance (and to secret scanners).
func newSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + lowerBase32.EncodeToString(b[:])
}

// rollbackLeftOpen ends the transaction a failed pipeline left open
// (aborted), so that the connection goes back to the pool reusable.
func rollbackLeftOpen(ctx context.Context, conn *pgxpool.Conn) {
	if !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = conn.Exec(ctx, "ROLLBACK")
	}
}
