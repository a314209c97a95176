// Package indexer feeds the search index from the journal (docs/architecture.md
// invariant 9): it follows committed journal entries with a cursor persisted
// in PostgreSQL, upserts the messages and notes among them into a
// search.Backend in batches, and advances the cursor only once the backend
// has accepted the batch. It is a consumer: ingestion never waits for it, and
// when the backend is slow or down it only falls behind, then catches up.
//
// # The cursor
//
// The indexer is one of the journal's consumers (package consumers/journal):
// it reads committed entries in the journal's (txid, conversation_id,
// version) order below the snapshot horizon, so nothing that commits late
// is skipped, and keeps its position in journal_cursors under
// Config.CursorName. (Before migration 00012 it kept it in a table of its
// own, search_cursor; the migration carried the position over.) A
// transaction that stays open (in any database of the server) holds the
// horizon back and delays indexing — visible as lag — but loses nothing.
//
// # One active indexer per cluster
//
// The indexer runs inside the search actor (package actors): one cluster
// identity, so normally one Indexer in the cluster. The cluster can activate
// an identity twice, though (on membership changes, after a pause), so the
// active Indexer is still elected with a PostgreSQL session advisory lock
// (pg_try_advisory_lock) taken on a dedicated connection: PostgreSQL is
// already the arbiter of everything durable here (fencing, docs/architecture.md
// invariant 4), and it frees the lock the moment the holder's connection
// dies (process killed, network cut), so a second activation takes over
// within Config.LockRetry (journal.LeadWhen). The active indexer reads the journal and writes the cursor on that same connection:
// once it has lost the lock it has lost the connection, so it can never
// move the cursor behind a newer holder's back. The cursor update is also
// monotonic, and backend upserts are idempotent, so a batch indexed twice in
// a handover is harmless. One indexer is plenty: a batch of hundreds of
// messages is one backend call; with the PostgreSQL backend it kept commit →
// indexed lag at p99 ~9 ms at 1,000 messages/s and ~55 ms at ~4,800/s
// (BenchmarkIndexLag, a 2-core machine).
//
// # Failures
//
// A backend error or timeout is retried with exponential backoff and jitter
// (Config.BackoffMin up to Config.BackoffMax) for as long as it takes: a
// batch is never dropped. A document the backend refuses for good
// (search.DocError), or a journal event that cannot be decoded, is a poison
// document: recorded in search_failures, logged, and skipped.
package indexer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/persistence/listen"
	"github.com/switchboard-dev/switchboard/search"
)

// Config tunes the indexer. Zero values take the defaults.
type Config struct {
	// BatchSize is the number of journal entries read and sent per round.
	BatchSize int // default 500
	// PollInterval bounds how long an idle indexer waits without a NOTIFY
	// (a lost notification, a writer that does not notify).
	PollInterval time.Duration // default 1 s
	// LockRetry is how often a standby tries to become the active indexer.
	LockRetry time.Duration // default 2 s
	// BackoffMin and BackoffMax bound the wait between failed attempts.
	BackoffMin time.Duration // default 50 ms
	BackoffMax time.Duration // default 5 s
	// UpsertTimeout bounds one backend call.
	UpsertTimeout time.Duration // default 10 s
	// StatsInterval is how often lag and backlog are measured.
	StatsInterval time.Duration // default 1 s
	// BacklogLimit caps the backlog count, to keep measuring it cheap when
	// far behind; Stats.Backlog is then a lower bound.
	BacklogLimit int64 // default 100,000
	// LockKey is the advisory lock key electing the active indexer.
	LockKey int64 // default DefaultLockKey
	// CursorName names the indexer's cursor row in journal_cursors.
	CursorName string // default DefaultCursorName
	// CatchUpDuty is the share of wall time the indexer works while it
	// works through a backlog (full batches), resting the remainder; 1 turns
	// the limit off. Default 0.5.
	CatchUpDuty float64
	// Gather spaces out the rounds that are not catching up: a round costs
	// a journal read, a backend call and a cursor commit whatever its
	// size, so commits that arrive within Gather of a round's start are
	// indexed together by the next one. It adds at most Gather to the
	// search lag. Default 10 ms; negative turns it off.
	Gather time.Duration
}

// DefaultLockKey is the advisory lock key used when Config.LockKey is 0
// ("sbindex" in ASCII, to stay clear of other users of advisory locks).
const DefaultLockKey int64 = 0x7362696e646578

// DefaultCursorName is the indexer's consumer name in journal_cursors
// (migration 00012 moved the old "default" row of search_cursor there).
const DefaultCursorName = "search"

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	set(&c.PollInterval, time.Second)
	set(&c.LockRetry, 2*time.Second)
	set(&c.BackoffMin, 50*time.Millisecond)
	set(&c.BackoffMax, 5*time.Second)
	set(&c.UpsertTimeout, 10*time.Second)
	set(&c.StatsInterval, time.Second)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.BacklogLimit <= 0 {
		c.BacklogLimit = 100_000
	}
	if c.LockKey == 0 {
		c.LockKey = DefaultLockKey
	}
	if c.CursorName == "" {
		c.CursorName = DefaultCursorName
	}
	if c.CatchUpDuty <= 0 || c.CatchUpDuty > 1 {
		c.CatchUpDuty = 0.5
	}
	if c.Gather == 0 {
		c.Gather = 10 * time.Millisecond
	}
	return c
}

// Stats is the indexer's state as the admin API shows it.
type Stats struct {
	// Paused: an operator paused this node's indexer.
	Paused bool `json:"paused"`
	// Active: this node holds the lock and is the one indexing.
	Active bool `json:"active"`
	// LagMs is the age of the oldest committed journal entry not yet
	// indexed, 0 when caught up. Measured every StatsInterval on every node.
	LagMs int64 `json:"lag_ms"`
	// Backlog is the number of committed entries after the cursor (capped
	// at Config.BacklogLimit).
	Backlog int64 `json:"backlog"`
	// Indexed counts documents this process got accepted by the backend.
	Indexed int64 `json:"indexed"`
	// Skipped counts poison documents this process recorded and skipped.
	Skipped int64 `json:"skipped"`
	// LastError is the last failure, cleared by the next success.
	LastError string `json:"last_error,omitempty"`
}

// Indexer follows the journal into a search backend. Create it with New and
// run it with Run; Pause, Resume and Stats may be called at any time from
// any goroutine.
type Indexer struct {
	pool    *pgxpool.Pool
	hub     *listen.Hub
	backend search.Backend
	cfg     Config
	log     *slog.Logger
	m       metrics

	mu        sync.Mutex
	paused    bool
	resumed   chan struct{} // closed and replaced by Resume
	active    bool
	lagMs     int64
	backlog   int64
	lastError string

	indexed atomic.Int64
	skipped atomic.Int64
	// rounds counts journal reads by the active indexer, measurements the
	// lag measurements taken (tests wait on them).
	rounds       atomic.Int64
	measurements atomic.Int64
}

// New returns an indexer that reads the journal through pool, hears of
// commits through hub and writes to backend. Metrics are registered on reg
// (nil: not registered).
func New(pool *pgxpool.Pool, hub *listen.Hub, backend search.Backend, cfg Config, logger *slog.Logger, reg prometheus.Registerer) *Indexer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Indexer{
		pool:    pool,
		hub:     hub,
		backend: backend,
		cfg:     cfg.withDefaults(),
		log:     logger.With("component", "indexer"),
		m:       newMetrics(reg),
		resumed: make(chan struct{}),
	}
}

// Pause stops this node's indexing after the batch in hand (for operator
// maintenance of the backend): one being sent to the backend; nothing
// committed after Pause returns is indexed until Resume. A paused active indexer keeps the lock, so
// pausing the active node pauses indexing for the cluster; a paused standby
// does not take over. Lag and backlog keep being measured.
func (ix *Indexer) Pause() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.paused {
		ix.paused = true
		ix.log.Info("search indexing paused")
	}
}

// Resume undoes Pause.
func (ix *Indexer) Resume() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.paused {
		ix.paused = false
		close(ix.resumed)
		ix.resumed = make(chan struct{})
		ix.log.Info("search indexing resumed")
	}
}

// Stats returns the current state.
func (ix *Indexer) Stats() Stats {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return Stats{
		Paused: ix.paused, Active: ix.active, LagMs: ix.lagMs, Backlog: ix.backlog,
		Indexed: ix.indexed.Load(), Skipped: ix.skipped.Load(), LastError: ix.lastError,
	}
}

func (ix *Indexer) setActive(on bool) {
	ix.mu.Lock()
	ix.active = on
	ix.mu.Unlock()
}

func (ix *Indexer) setError(err error) {
	ix.mu.Lock()
	if err == nil {
		ix.lastError = ""
	} else {
		ix.lastError = err.Error()
	}
	ix.mu.Unlock()
}

func (ix *Indexer) isPaused() bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.paused
}

// waitUnpaused returns once the indexer is not paused, or ctx's error.
func (ix *Indexer) waitUnpaused(ctx context.Context) error {
	for {
		ix.mu.Lock()
		paused, resumed := ix.paused, ix.resumed
		ix.mu.Unlock()
		if !paused {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-resumed:
		}
	}
}

// Run indexes until ctx is done: it measures lag and backlog, competes for
// the lock, and while it holds it follows the journal. Losing the database
// connection sends it back to competing after a backoff. It returns nil
// once ctx is done.
func (ix *Indexer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { ix.statsLoop(ctx) })
	defer wg.Wait()

	bo := backoff{min: ix.cfg.BackoffMin, max: ix.cfg.BackoffMax}
	for ctx.Err() == nil {
		started := time.Now()
		if err := ix.syncPause(ctx); err != nil {
			// The pause held in memory stands; the session meets the
			// database's trouble itself if it lasts.
			ix.log.Warn("search indexer could not read the operator's pause", "err", err)
		}
		err := ix.session(ctx)
		if ctx.Err() != nil {
			break
		}
		// A session that lasted is a new incident, not the next failure
		// of the same one.
		if time.Since(started) > time.Minute {
			bo.reset()
		}
		ix.m.errors.WithLabelValues("database").Inc()
		ix.setError(err)
		d := bo.next()
		ix.log.Warn("search indexer lost its database session; retrying", "err", err, "retry_in", d)
		if journal.Sleep(ctx, d) != nil {
			break
		}
	}
	return nil
}

// session runs one database session (journal.LeadWhen): a dedicated
// connection that waits for the lock as a standby — and, while paused, does
// not even try for it — then indexes while holding it. Closing the
// connection releases the lock.
func (ix *Indexer) session(ctx context.Context) error {
	err := journal.LeadWhen(ctx, ix.pool.Config().ConnConfig, ix.cfg.LockKey, ix.cfg.LockRetry, ix.waitUnpaused,
		func(ctx context.Context, conn *pgx.Conn) error {
			ix.setActive(true)
			defer ix.setActive(false)
			ix.log.Info("search indexer active on this node")
			return ix.lead(ctx, conn)
		})
	if err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	return nil
}
