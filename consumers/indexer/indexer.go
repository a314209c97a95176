// Package indexer feeds the search index from the journal (DESIGN.md
// invariant 9): it follows committed journal entries with a cursor persisted
// in PostgreSQL, upserts the messages and notes among them into a
// search.Backend in batches, and advances the cursor only once the backend
// has accepted the batch. It is a consumer: ingestion never waits for it, and
// when the backend is slow or down it only falls behind, then catches up.
//
// # The cursor and the outbox trap
//
// Journal rows carry txid, the id of the transaction that wrote them. Ids
// are handed out when transactions start writing, not when they commit, so a
// transaction with a smaller id can commit after one with a larger id; a
// cursor that simply moves past the largest id seen would skip it for ever.
// The indexer therefore reads in (txid, conversation_id, version) order and
// only rows with txid < pg_snapshot_xmin(pg_current_snapshot()), computed in
// the same statement: every transaction below that horizon has finished, so
// no row can appear behind the cursor later. Rows above the horizon wait
// until the transactions before them finish (typically a group-commit batch,
// about a millisecond), which costs a short re-poll, never an entry.
// A transaction that stays open (in any database of the server) holds the
// horizon back and delays indexing — visible as lag — but loses nothing.
//
// # One active indexer per cluster
//
// Every node runs an Indexer; they elect the active one with a PostgreSQL
// session advisory lock (pg_try_advisory_lock) taken on a dedicated
// connection. This was chosen over a cluster actor or sharding by account
// because PostgreSQL is already the arbiter of everything durable here
// (fencing, DESIGN.md invariant 4), needs no extra membership protocol, and
// frees the lock the moment the holder's connection dies (process killed,
// network cut), so a standby takes over within Config.LockRetry. The active
// indexer reads the journal and writes the cursor on that same connection:
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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/domain/conversation"
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
	// CursorName names the cursor row in search_cursor.
	CursorName string // default "default"
	// CatchUpDuty is the share of wall time the indexer works while it
	// works through a backlog (full batches), resting the remainder; 1 turns
	// the limit off. Default 0.5.
	CatchUpDuty float64
}

// DefaultLockKey is the advisory lock key used when Config.LockKey is 0
// ("sbindex" in ASCII, to stay clear of other users of advisory locks).
const DefaultLockKey int64 = 0x7362696e646578

// Channel is the NOTIFY channel the journal writer signals commits on.
const Channel = "journal_appended"

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
		c.CursorName = "default"
	}
	if c.CatchUpDuty <= 0 || c.CatchUpDuty > 1 {
		c.CatchUpDuty = 0.5
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

// New returns an indexer that reads the journal through pool and writes to
// backend. Metrics are registered on reg (nil: not registered).
func New(pool *pgxpool.Pool, backend search.Backend, cfg Config, logger *slog.Logger, reg prometheus.Registerer) *Indexer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Indexer{
		pool:    pool,
		backend: backend,
		cfg:     cfg.withDefaults(),
		log:     logger.With("component", "indexer"),
		m:       newMetrics(reg),
		resumed: make(chan struct{}),
	}
}

// Pause stops this node's indexing after the batch in hand (for operator
// maintenance of the backend). A paused active indexer keeps the lock, so
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
		if sleep(ctx, d) != nil {
			break
		}
	}
	return nil
}

// session runs one database session: a dedicated connection that waits for
// the lock as a standby, then indexes while holding it. Closing the
// connection releases the lock.
func (ix *Indexer) session(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, ix.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("indexer: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	for {
		if err := ix.waitUnpaused(ctx); err != nil {
			return nil
		}
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", ix.cfg.LockKey).Scan(&got); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("indexer: try lock: %w", err)
		}
		if got {
			break
		}
		if sleep(ctx, ix.cfg.LockRetry) != nil {
			return nil
		}
	}
	ix.setActive(true)
	defer ix.setActive(false)
	ix.log.Info("search indexer active on this node")
	err = ix.lead(ctx, conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// cursor is a position in the journal's (txid, conversation_id, version)
// order: everything at or before it is indexed (or recorded as skipped).
type cursor struct {
	TxID           uint64
	ConversationID string
	Version        int64
}

func (c cursor) String() string {
	return fmt.Sprintf("(%d, %s, %d)", c.TxID, c.ConversationID, c.Version)
}

// entry is one journal row. Event is only loaded for message events.
type entry struct {
	cursor
	AccountID string
	InboxID   string
	EventType string
	Event     []byte
	CreatedAt time.Time
}

// failure is a skipped (poison) entry, as recorded in search_failures.
type failure struct {
	entry     entry
	messageID string
	reason    string
}

// lead follows the journal on conn, which holds the lock.
func (ix *Indexer) lead(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("indexer: listen: %w", err)
	}
	cur, err := ix.loadCursor(ctx, conn)
	if err != nil {
		return err
	}
	ix.log.Info("search indexer resuming", "cursor", cur.String())
	idle := ix.cfg.PollInterval
	pendingWait := time.Duration(0)
	for {
		if err := ix.waitUnpaused(ctx); err != nil {
			return nil
		}
		batch, err := readBatch(ctx, conn, cur, ix.cfg.BatchSize)
		ix.rounds.Add(1)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			// Committed rows waiting above the horizon: the transactions
			// before them usually finish within milliseconds, so look again
			// soon (doubling), rather than after a whole poll interval.
			wait := idle
			pending, err := pendingAfter(ctx, conn, cur)
			if err != nil {
				return err
			}
			if pending {
				pendingWait = min(max(2*pendingWait, 2*time.Millisecond), idle)
				wait = pendingWait
			} else {
				pendingWait = 0
			}
			if err := waitNotification(ctx, conn, wait); err != nil {
				return err
			}
			continue
		}
		pendingWait = 0
		start := time.Now()
		next, err := ix.index(ctx, conn, batch)
		if err != nil {
			return err
		}
		cur = next
		// Catching up on a backlog (after an outage or a pause) must not
		// take the CPU that ingestion and inbox updates need: search is a
		// consumer, never on the hot path. A full batch means there is a
		// backlog; rest in proportion to the time the batch took.
		if len(batch) == ix.cfg.BatchSize && ix.cfg.CatchUpDuty < 1 {
			rest := time.Duration(float64(time.Since(start)) * (1/ix.cfg.CatchUpDuty - 1))
			if err := sleep(ctx, rest); err != nil {
				return nil
			}
		}
	}
}

// index sends one batch to the backend (retrying until it is accepted),
// then records its poison documents and moves the cursor past it, in one
// transaction.
func (ix *Indexer) index(ctx context.Context, conn *pgx.Conn, batch []entry) (cursor, error) {
	docs, failures, byID := decode(batch)
	if len(docs) > 0 {
		rejected, err := ix.upsert(ctx, docs)
		if err != nil {
			return cursor{}, err
		}
		for _, r := range rejected {
			e, ok := byID[r.ID]
			if !ok {
				ix.log.Warn("search backend refused a document that was not in the batch", "message_id", r.ID, "reason", r.Reason)
				continue
			}
			failures = append(failures, failure{entry: e, messageID: r.ID, reason: r.Reason})
		}
		ok := int64(len(docs) - len(rejected))
		ix.indexed.Add(ok)
		ix.m.indexed.Add(float64(ok))
	}
	next := batch[len(batch)-1].cursor
	if err := ix.commit(ctx, conn, next, failures); err != nil {
		return cursor{}, err
	}
	for _, f := range failures {
		ix.log.Warn("search: skipped a document that cannot be indexed; recorded in search_failures",
			"conversation_id", f.entry.ConversationID, "version", f.entry.Version,
			"account_id", f.entry.AccountID, "message_id", f.messageID, "reason", f.reason)
	}
	ix.skipped.Add(int64(len(failures)))
	ix.m.errors.WithLabelValues("poison").Add(float64(len(failures)))
	ix.setError(nil)
	return next, nil
}

// upsert calls the backend until it accepts the batch, with backoff between
// attempts. It gives up only when ctx is done.
func (ix *Indexer) upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	bo := backoff{min: ix.cfg.BackoffMin, max: ix.cfg.BackoffMax}
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, ix.cfg.UpsertTimeout)
		rejected, err := ix.backend.Upsert(callCtx, docs)
		cancel()
		if err == nil {
			if attempt > 1 {
				ix.log.Info("search backend accepted the batch again", "attempts", attempt, "documents", len(docs))
			}
			return rejected, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ix.m.errors.WithLabelValues("backend").Inc()
		ix.setError(err)
		d := bo.next()
		// A long outage would otherwise log every few seconds for hours.
		if attempt == 1 || attempt%10 == 0 {
			ix.log.Warn("search backend failed; batch kept and retried", "err", err,
				"attempt", attempt, "documents", len(docs), "retry_in", d)
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
		if err := ix.waitUnpaused(ctx); err != nil {
			return nil, err
		}
	}
}

// decode turns journal entries into documents. Only message and note items
// are searchable; other events (calls, updates) just move the cursor. An
// event that should be a message but cannot be decoded is a poison entry.
func decode(batch []entry) ([]search.Document, []failure, map[string]entry) {
	var docs []search.Document
	var failures []failure
	byID := make(map[string]entry)
	for _, e := range batch {
		if e.Event == nil {
			continue
		}
		var ev conversation.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			failures = append(failures, failure{entry: e, reason: "undecodable event: " + err.Error()})
			continue
		}
		it := ev.Item
		if it == nil || it.ID == "" {
			failures = append(failures, failure{entry: e, reason: "message event without an item id"})
			continue
		}
		if it.Kind != conversation.KindMessage && it.Kind != conversation.KindNote {
			continue
		}
		d := search.Document{
			ID: it.ID, AccountID: e.AccountID, InboxID: e.InboxID, ConversationID: e.ConversationID,
			Seq: it.Seq, Direction: string(it.Direction), Kind: string(it.Kind), Body: it.Body, CreatedAt: it.CreatedAt,
		}
		if d.Seq == 0 {
			d.Seq = e.Version
		}
		if d.CreatedAt.IsZero() {
			d.CreatedAt = e.CreatedAt
		}
		docs = append(docs, d)
		byID[d.ID] = e
	}
	return docs, failures, byID
}

func (ix *Indexer) loadCursor(ctx context.Context, conn *pgx.Conn) (cursor, error) {
	var c cursor
	var txid string
	err := conn.QueryRow(ctx, `SELECT txid::text, conversation_id, version FROM search_cursor WHERE name = $1`,
		ix.cfg.CursorName).Scan(&txid, &c.ConversationID, &c.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, fmt.Errorf("indexer: load cursor: %w", err)
	}
	if c.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return cursor{}, fmt.Errorf("indexer: load cursor: txid %q: %w", txid, err)
	}
	return c, nil
}

// readBatchSQL: see the package comment. The horizon is a one-time
// sub-select, so it is an index condition next to the cursor's row
// comparison and the scan stops at the horizon.
const readBatchSQL = `
SELECT txid::text, conversation_id, version, account_id, inbox_id, event_type,
	CASE WHEN event_type IN ('inbound_message', 'outbound_message') THEN event::text END,
	created_at
FROM journal
WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3)
	AND txid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY txid, conversation_id, version
LIMIT $4`

func readBatch(ctx context.Context, conn *pgx.Conn, after cursor, limit int) ([]entry, error) {
	rows, err := conn.Query(ctx, readBatchSQL, strconv.FormatUint(after.TxID, 10), after.ConversationID, after.Version, limit)
	if err != nil {
		return nil, fmt.Errorf("indexer: read journal: %w", err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var e entry
		var txid string
		var event *string
		if err := rows.Scan(&txid, &e.ConversationID, &e.Version, &e.AccountID, &e.InboxID, &e.EventType, &event, &e.CreatedAt); err != nil {
			return nil, fmt.Errorf("indexer: read journal: %w", err)
		}
		if e.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return nil, fmt.Errorf("indexer: read journal: txid %q: %w", txid, err)
		}
		if event != nil {
			e.Event = []byte(*event)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("indexer: read journal: %w", err)
	}
	return out, nil
}

// pendingAfter reports whether committed rows exist after c at all, i.e.
// rows the last read left out because they are above the horizon.
func pendingAfter(ctx context.Context, conn *pgx.Conn, c cursor) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM journal WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3))`,
		strconv.FormatUint(c.TxID, 10), c.ConversationID, c.Version).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("indexer: check pending: %w", err)
	}
	return ok, nil
}

// waitNotification waits up to d for a NOTIFY on conn; a timeout is normal.
func waitNotification(ctx context.Context, conn *pgx.Conn, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(wctx)
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("indexer: wait for notification: %w", err)
}

const recordFailuresSQL = `
INSERT INTO search_failures (conversation_id, version, account_id, message_id, reason)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (conversation_id, version) DO UPDATE
	SET message_id = excluded.message_id, reason = excluded.reason, failed_at = now()`

// saveCursorSQL only ever moves the cursor forward.
const saveCursorSQL = `
INSERT INTO search_cursor (name, txid, conversation_id, version, updated_at)
VALUES ($1, $2::text::xid8, $3, $4, now())
ON CONFLICT (name) DO UPDATE
	SET txid = excluded.txid, conversation_id = excluded.conversation_id,
		version = excluded.version, updated_at = excluded.updated_at
	WHERE (search_cursor.txid, search_cursor.conversation_id, search_cursor.version)
		< (excluded.txid, excluded.conversation_id, excluded.version)`

func (ix *Indexer) commit(ctx context.Context, conn *pgx.Conn, next cursor, failures []failure) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if len(failures) > 0 {
			n := len(failures)
			convs, versions, accounts, ids, reasons := make([]string, n), make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
			for i, f := range failures {
				convs[i], versions[i], accounts[i] = f.entry.ConversationID, f.entry.Version, f.entry.AccountID
				ids[i], reasons[i] = f.messageID, f.reason
			}
			if _, err := tx.Exec(ctx, recordFailuresSQL, convs, versions, accounts, ids, reasons); err != nil {
				return fmt.Errorf("record failures: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, saveCursorSQL, ix.cfg.CursorName, strconv.FormatUint(next.TxID, 10), next.ConversationID, next.Version); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexer: commit batch up to %s: %w", next, err)
	}
	return nil
}

// statsLoop measures lag and backlog from the persisted cursor, on every
// node, so that any node's admin page shows the cluster's indexing state.
func (ix *Indexer) statsLoop(ctx context.Context) {
	t := time.NewTicker(ix.cfg.StatsInterval)
	defer t.Stop()
	for {
		if err := ix.measure(ctx); err != nil && ctx.Err() == nil {
			ix.log.Debug("search indexer could not measure lag", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (ix *Indexer) measure(ctx context.Context) error {
	var txid, conv string
	var version int64
	err := ix.pool.QueryRow(ctx, `SELECT txid::text, conversation_id, version FROM search_cursor WHERE name = $1`,
		ix.cfg.CursorName).Scan(&txid, &conv, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		txid, err = "0", nil
	}
	if err != nil {
		return fmt.Errorf("indexer: measure: %w", err)
	}
	var lagSeconds float64
	var backlog int64
	err = ix.pool.QueryRow(ctx, `
SELECT
	coalesce((SELECT extract(epoch FROM now() - created_at)::float8 FROM journal
		WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3)
		ORDER BY txid, conversation_id, version LIMIT 1), 0),
	(SELECT count(*) FROM (SELECT 1 FROM journal
		WHERE (txid, conversation_id, version) > ($1::text::xid8, $2, $3) LIMIT $4) b)`,
		txid, conv, version, ix.cfg.BacklogLimit).Scan(&lagSeconds, &backlog)
	if err != nil {
		return fmt.Errorf("indexer: measure: %w", err)
	}
	lagSeconds = max(lagSeconds, 0)
	if backlog == 0 {
		lagSeconds = 0
	}
	ix.mu.Lock()
	ix.lagMs, ix.backlog = int64(lagSeconds*1000), backlog
	ix.mu.Unlock()
	ix.m.lag.Set(lagSeconds)
	ix.m.backlog.Set(float64(backlog))
	ix.measurements.Add(1)
	return nil
}

// backoff is exponential with "equal jitter": each wait is between half and
// all of min·2ⁿ (capped at max), so retries from many failures spread out
// yet still grow.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.n++
	half := d / 2
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type metrics struct {
	lag     prometheus.Gauge
	backlog prometheus.Gauge
	indexed prometheus.Counter
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "index_lag_seconds",
			Help: "Age of the oldest committed journal entry not yet indexed for search; 0 when caught up.",
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "index_backlog",
			Help: "Committed journal entries not yet indexed for search.",
		}),
		indexed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "indexed_documents_total",
			Help: "Documents this node got accepted by the search backend.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "index_errors_total",
			Help: "Indexing failures: backend (a failed attempt, retried), poison (a document skipped), database (a lost session).",
		}, []string{"kind"}),
	}
	for _, k := range []string{"backend", "poison", "database"} {
		m.errors.WithLabelValues(k)
	}
	if reg == nil {
		return m
	}
	m.lag = register(reg, m.lag)
	m.backlog = register(reg, m.backlog)
	m.indexed = register(reg, m.indexed)
	m.errors = register(reg, m.errors)
	return m
}

// register registers c, or returns the collector already registered under
// the same description (a second Indexer in one process shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("indexer: register metrics: %v", err))
	}
	return c
}
