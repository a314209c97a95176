package journal

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lead runs one leadership session: it opens a dedicated connection, waits
// as a standby until it holds the session advisory lock lockKey, then runs
// lead with that connection until lead returns or ctx is done. The lock
// elects one active consumer of a kind per cluster: PostgreSQL is already
// the arbiter of everything durable here, and it frees the lock the moment
// the holder's connection dies, so a standby takes over within retry. lead
// should do its cursor reads and writes on conn: once the lock is lost the
// connection is gone, so a deposed leader cannot move the cursor.
// Lead returns nil when ctx ends, else the session's error.
func Lead(ctx context.Context, cfg *pgx.ConnConfig, lockKey int64, retry time.Duration, lead func(ctx context.Context, conn *pgx.Conn) error) error {
	return LeadWhen(ctx, cfg, lockKey, retry, nil, lead)
}

// LeadWhen is Lead for a consumer that can be held back (the indexer's
// pause): before each attempt at the lock it waits for ready to return, so
// a held-back standby never takes the lock from the ones that could work.
// ready returns an error only when ctx is done; nil ready never waits.
func LeadWhen(ctx context.Context, cfg *pgx.ConnConfig, lockKey int64, retry time.Duration, ready func(ctx context.Context) error, lead func(ctx context.Context, conn *pgx.Conn) error) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("journal: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	for {
		if ready != nil {
			if err := ready(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("journal: wait to lead: %w", err)
			}
		}
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey).Scan(&got); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("journal: try lock %d: %w", lockKey, err)
		}
		if got {
			break
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	err = lead(ctx, conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Sleep waits d, or until ctx is done (then it returns ctx's error): the
// pause every consumer takes between polls, retries and lock attempts.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
