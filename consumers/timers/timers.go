// Package timers is the timer scanner (docs/architecture.md, invariants 12 and 13): it
// finds conversations whose next due time (the read model's due_at, written
// with every event) has passed and wakes each with a tick. What a tick does
// is the conversation state machine's decision, so the scanner only has to
// deliver ticks at least once: a late, repeated or redelivered tick is
// harmless, and no timer lives only in memory.
//
// # One active scanner per cluster
//
// Every node runs a Scanner; like the search indexer they elect the active
// one with a PostgreSQL session advisory lock held on a dedicated
// connection (journal.Lead), which PostgreSQL frees the moment the holder's
// connection dies, so a standby takes over within Config.LockRetry. Two
// scanners overlapping for a moment during a handover only send a tick
// twice.
//
// # On time without polling
//
// The active scanner sleeps exactly until the next due time it knows of:
// after each poll it reads the earliest due_at left (one index entry), and
// a commit that arms a due time sooner than persistence.TimersHorizon
// announces it on persistence.TimersChannel, which the scanner LISTENs to on
// its lock connection, so a sooner timer shortens the sleep at once.
// Config.MaxWait only bounds the sleep as a fallback (a lost notification,
// a tick that failed to rewrite its row), and Config.MinGap keeps a steady
// stream of due times from costing a poll each: those within MinGap of each
// other are found by one poll.
//
// # Cost
//
// A poll is one range scan of the partial index on due_at (only armed rows
// are in it), bounded by Config.Batch, joined to the inbox for the settings'
// version, and one read of the index's first entry. Ticks run on
// Config.Workers goroutines, one conversation at a time each (a
// conversation with a tick in flight is left out of the polls), so due
// conversations are woken in parallel. Each tick activates the
// conversation if it was passivated; the conversation rewrites its due_at
// in the commit of the event it decides, or directly when it decides
// nothing, so a woken row leaves the due range.
package timers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/internal/metrics"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen"
)

// Due is a conversation whose due time has passed.
type Due struct {
	ConversationID, AccountID, InboxID string
	DueAt                              time.Time
	// Now is the database's clock when the row was read.
	Now time.Time
	// SettingsVersion is the inbox settings' version when the row was read.
	SettingsVersion int64
}

// Waker delivers a tick to a conversation (actors.Engine.Tick).
type Waker func(ctx context.Context, d Due) error

// Config tunes the scanner. Zero values take the defaults.
type Config struct {
	// MaxWait is the longest the active scanner sleeps without polling;
	// it normally wakes at the next due time, so this is a fallback. It
	// is capped at persistence.TimersHorizon, which guarantees that a due
	// time commits did not announce is read before it falls due.
	MaxWait time.Duration // default 1 s
	// MinGap is the shortest time between two polls that each found fewer
	// than a batch: the most a timer waits for one poll to serve it with
	// others due just after it.
	MinGap time.Duration // default 10 ms
	// Batch is the most due rows read per poll.
	Batch int // default 500
	// Workers is how many ticks are in flight at once.
	Workers int // default 32
	// LockRetry is how often a standby tries to become the active scanner.
	LockRetry time.Duration // default 500 ms
	// RetryAfter is how long a conversation whose tick failed is left alone.
	RetryAfter time.Duration // default 1 s
	// TickTimeout bounds one tick.
	TickTimeout time.Duration // default 10 s
	// LockKey is the advisory lock key electing the active scanner.
	LockKey int64 // default DefaultLockKey
}

// DefaultLockKey is "sbtimer" in ASCII.
const DefaultLockKey int64 = 0x736274696d6572

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.MaxWait, time.Second)
	c.MaxWait = min(c.MaxWait, persistence.TimersHorizon)
	set(&c.MinGap, 10*time.Millisecond)
	set(&c.LockRetry, 500*time.Millisecond)
	set(&c.RetryAfter, time.Second)
	set(&c.TickTimeout, 10*time.Second)
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.LockKey == 0 {
		c.LockKey = DefaultLockKey
	}
	return c
}

// Scanner finds due conversations and wakes them. Create it with New and
// call Run.
type Scanner struct {
	pool *pgxpool.Pool
	hub  *listen.Hub
	wake Waker
	cfg  Config
	log  *slog.Logger

	mu     sync.Mutex
	active bool

	ticks    *prometheus.CounterVec
	lag      prometheus.Histogram
	polls    prometheus.Counter
	pending  prometheus.Gauge
	isActive prometheus.Gauge
}

// New returns a scanner that hears of sooner due times through hub; metrics
// are registered on reg (nil: not registered).
func New(pool *pgxpool.Pool, hub *listen.Hub, wake Waker, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Scanner {
	ns := metrics.Namespace
	s := &Scanner{pool: pool, hub: hub, wake: wake, cfg: cfg.withDefaults(), log: log,
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "timer_ticks_total",
			Help: "Ticks sent to due conversations, by result."}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "timer_fire_lag_seconds",
			Help:    "From a conversation's due time to its tick being answered.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		polls: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "timer_polls_total",
			Help: "Polls of the due index by the active scanner."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "timer_ticks_in_flight",
			Help: "Ticks sent and not yet answered."}),
		isActive: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "timer_scanner_active",
			Help: "1 while this node's timer scanner is the cluster's active one."}),
	}
	if reg != nil {
		reg.MustRegister(s.ticks, s.lag, s.polls, s.pending, s.isActive)
	}
	return s
}

// Active reports whether this node's scanner holds the lock.
func (s *Scanner) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

func (s *Scanner) setActive(v bool) {
	s.mu.Lock()
	s.active = v
	s.mu.Unlock()
	if v {
		s.isActive.Set(1)
	} else {
		s.isActive.Set(0)
	}
}

// Run scans until ctx ends; a lost database session sends it back to
// competing for the lock after a pause. It returns nil once ctx is done.
func (s *Scanner) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := journal.Lead(ctx, s.pool.Config().ConnConfig, s.cfg.LockKey, s.cfg.LockRetry, s.lead)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("timer scanner lost its database session; retrying", "err", err)
		if journal.Sleep(ctx, s.cfg.LockRetry) != nil {
			break
		}
	}
	return nil
}

// dueSQL reads due rows in due order; $2 lists rows to leave out (ticks in
// flight or backing off), so they cannot crowd the batch.
const dueSQL = `SELECT c.id, c.account_id, c.inbox_id, c.due_at, i.settings_version, now()
	FROM conversations c JOIN inboxes i ON i.id = c.inbox_id
	WHERE c.due_at <= now() AND NOT (c.id = ANY($2))
	ORDER BY c.due_at LIMIT $1`

// nextSQL reads the earliest due time left (the due index's first entry
// not in $1) and the database's clock, which the sleep is measured on.
const nextSQL = `SELECT (SELECT due_at FROM conversations WHERE due_at IS NOT NULL AND NOT (id = ANY($1))
	ORDER BY due_at LIMIT 1), now()`

// lead runs the active scanner on conn, which holds the lock.
func (s *Scanner) lead(ctx context.Context, conn *pgx.Conn) error {
	announced := s.hub.Subscribe(persistence.TimersChannel)
	defer announced.Close()
	s.setActive(true)
	defer s.setActive(false)
	s.log.Info("timer scanner active on this node")
	d := newDispatcher(s)
	defer d.wg.Wait()
	var lastPoll time.Time
	for {
		skip, _ := d.skip(time.Now())
		s.polls.Inc()
		lastPoll = time.Now()
		dues, err := s.poll(ctx, conn, skip)
		if err != nil {
			return err
		}
		for _, due := range dues {
			if err := d.dispatch(ctx, due); err != nil {
				return err
			}
		}
		if len(dues) == s.cfg.Batch {
			continue // more are due: no wait
		}
		// The rows just dispatched are in flight, so they are skipped here.
		skip, retryAt := d.skip(time.Now())
		var next *time.Time
		var dbNow time.Time
		if err := conn.QueryRow(ctx, nextSQL, skip).Scan(&next, &dbNow); err != nil {
			return fmt.Errorf("timers: next due: %w", err)
		}
		// Due times are on the database's clock; the sleep is on ours.
		skew := time.Until(dbNow)
		wakeAt := time.Now().Add(s.cfg.MaxWait)
		if next != nil {
			wakeAt = earliest(wakeAt, next.Add(-skew))
		}
		if !retryAt.IsZero() {
			wakeAt = earliest(wakeAt, retryAt)
		}
		if err := s.sleepUntil(ctx, announced, wakeAt, lastPoll.Add(s.cfg.MinGap), skew, d.kick); err != nil {
			return err
		}
	}
}

// sleepUntil waits until wakeAt, moved sooner by announcements of sooner
// due times (but not before notBefore), or until a failed tick kicks it.
// Announcements that may have been missed end the sleep: the poll that
// follows finds what they would have said.
func (s *Scanner) sleepUntil(ctx context.Context, announced *listen.Subscription, wakeAt, notBefore time.Time, skew time.Duration, kick <-chan struct{}) error {
	for {
		wait := time.Until(later(wakeAt, notBefore))
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-kick:
			t.Stop()
			return nil // a tick failed and may be retried sooner
		case <-t.C:
			return nil
		case <-announced.Ready():
			t.Stop()
		}
		n := announced.Take()
		if n.Missed {
			return nil
		}
		for _, p := range n.Payloads {
			due, ok := persistence.ParseTimersPayload(p)
			if !ok {
				return nil // not ours to read: poll
			}
			wakeAt = earliest(wakeAt, due.Add(-skew))
		}
	}
}

// dispatcher runs ticks on a bounded set of goroutines and remembers which
// conversations are in flight or backing off after a failure.
type dispatcher struct {
	s        *Scanner
	mu       sync.Mutex
	inflight map[string]bool
	backoff  map[string]time.Time
	wg       sync.WaitGroup
	sem      chan struct{}
	kick     chan struct{} // a tick failed: its retry time may be the next wake
}

func newDispatcher(s *Scanner) *dispatcher {
	return &dispatcher{s: s, inflight: map[string]bool{}, backoff: map[string]time.Time{},
		sem: make(chan struct{}, s.cfg.Workers), kick: make(chan struct{}, 1)}
}

// skip lists the conversations a poll leaves out, and the earliest time one
// backing off may be retried (zero: none).
func (d *dispatcher) skip(now time.Time) (ids []string, retryAt time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids = make([]string, 0, len(d.inflight)+len(d.backoff))
	for id := range d.inflight {
		ids = append(ids, id)
	}
	for id, until := range d.backoff {
		if now.After(until) {
			delete(d.backoff, id)
			continue
		}
		ids = append(ids, id)
		if retryAt.IsZero() || until.Before(retryAt) {
			retryAt = until
		}
	}
	return ids, retryAt
}

// dispatch starts due's tick once a worker is free.
func (d *dispatcher) dispatch(ctx context.Context, due Due) error {
	s := d.s
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	d.inflight[due.ConversationID] = true
	d.mu.Unlock()
	s.pending.Inc()
	d.wg.Go(func() {
		defer func() { <-d.sem }()
		tctx, cancel := context.WithTimeout(ctx, s.cfg.TickTimeout)
		err := s.wake(tctx, due)
		cancel()
		s.pending.Dec()
		d.mu.Lock()
		delete(d.inflight, due.ConversationID)
		if err != nil {
			d.backoff[due.ConversationID] = time.Now().Add(s.cfg.RetryAfter)
		}
		d.mu.Unlock()
		if err == nil {
			s.ticks.WithLabelValues("ok").Inc()
			s.lag.Observe(time.Since(due.DueAt).Seconds())
			return
		}
		s.ticks.WithLabelValues("error").Inc()
		if ctx.Err() == nil {
			s.log.Warn("tick failed; retrying later", "conversation", due.ConversationID, "err", err)
		}
		select {
		case d.kick <- struct{}{}:
		default:
		}
	})
	return nil
}

func (s *Scanner) poll(ctx context.Context, conn *pgx.Conn, skip []string) ([]Due, error) {
	rows, err := conn.Query(ctx, dueSQL, s.cfg.Batch, skip)
	if err != nil {
		return nil, fmt.Errorf("timers: poll: %w", err)
	}
	dues, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Due, error) {
		var d Due
		err := r.Scan(&d.ConversationID, &d.AccountID, &d.InboxID, &d.DueAt, &d.SettingsVersion, &d.Now)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("timers: poll: %w", err)
	}
	return dues, nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
