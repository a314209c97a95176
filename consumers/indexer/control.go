package indexer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SetPaused records an operator's pause or resume in the database, where
// every indexer reads it when its session starts: a pause holds across
// restarts and node loss until an operator resumes.
func SetPaused(ctx context.Context, pool *pgxpool.Pool, paused bool) error {
	_, err := pool.Exec(ctx, `INSERT INTO indexer_control (paused) VALUES ($1)
		ON CONFLICT (only_row) DO UPDATE SET paused = excluded.paused, changed_at = now()`, paused)
	if err != nil {
		return fmt.Errorf("indexer: record the operator's pause: %w", err)
	}
	return nil
}

// syncPause takes up the operator's recorded pause or resume.
func (ix *Indexer) syncPause(ctx context.Context) error {
	var paused bool
	err := ix.pool.QueryRow(ctx, `SELECT paused FROM indexer_control`).Scan(&paused)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // never paused
	}
	if err != nil {
		return fmt.Errorf("indexer: read the operator's pause: %w", err)
	}
	if paused {
		ix.Pause()
	} else {
		ix.Resume()
	}
	return nil
}
