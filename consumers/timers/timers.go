// Package timers is the timer scanner (DESIGN.md invariants 12 and 13): it
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
// connection, which PostgreSQL frees the moment the holder's connection
// dies, so a standby takes over within Config.LockRetry. Two scanners
// overlapping for a moment during a handover only send a tick twice.
//
// # Cost
//
// A poll is one range scan of the partial index on due_at (only armed rows
// are in it), bounded by Config.Batch, joined to the inbox for the settings'
// version. Each tick activates the conversation if it was passivated; the
// conversation rewrites its due_at in the commit of the event it decides,
// or directly when it decides nothing, so a woken row leaves the due range.
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
	// PollInterval is the longest wait between two polls while nothing is
	// due; it bounds how late a timer fires.
	PollInterval time.Duration // default 200 ms
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
	set(&c.PollInterval, 200*time.Millisecond)
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
	wake Waker
	cfg  Config
	log  *slog.Logger

	mu     sync.Mutex
	active bool

	ticks   *prometheus.CounterVec
	lag     prometheus.Histogram
	polls   prometheus.Counter
	pending prometheus.Gauge
}

// New returns a scanner; metrics are registered on reg (nil: not registered).
func New(pool *pgxpool.Pool, wake Waker, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Scanner {
	s := &Scanner{pool: pool, wake: wake, cfg: cfg.withDefaults(), log: log,
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "timer_ticks_total",
			Help: "Ticks sent to due conversations, by result."}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "timer_fire_lag_seconds",
			Help:    "From a conversation's due time to its tick being answered.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		polls: prometheus.NewCounter(prometheus.CounterOpts{Name: "timer_polls_total",
			Help: "Polls of the due index by the active scanner."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "timer_ticks_in_flight",
			Help: "Ticks sent and not yet answered."}),
	}
	if reg != nil {
		reg.MustRegister(s.ticks, s.lag, s.polls, s.pending)
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
}

// Run scans until ctx ends; a lost database session sends it back to
// competing for the lock after a pause. It returns nil once ctx is done.
func (s *Scanner) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("timer scanner lost its database session; retrying", "err", err)
		if sleep(ctx, s.cfg.LockRetry) != nil {
			break
		}
	}
	return nil
}

func (s *Scanner) session(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("timers: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	for {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", s.cfg.LockKey).Scan(&got); err != nil {
			return fmt.Errorf("timers: try lock: %w", err)
		}
		if got {
			break
		}
		if err := sleep(ctx, s.cfg.LockRetry); err != nil {
			return err
		}
	}
	s.setActive(true)
	defer s.setActive(false)
	s.log.Info("timer scanner active on this node")
	return s.lead(ctx, conn)
}

// dueSQL reads due rows in due order; $2 lists rows to leave out (ticks in
// flight or backing off), so they cannot crowd the batch.
const dueSQL = `SELECT c.id, c.account_id, c.inbox_id, c.due_at, i.settings_version, now()
	FROM conversations c JOIN inboxes i ON i.id = c.inbox_id
	WHERE c.due_at <= now() AND NOT (c.id = ANY($2))
	ORDER BY c.due_at LIMIT $1`

// lead polls on conn, which holds the lock, and dispatches ticks to a
// bounded set of workers.
func (s *Scanner) lead(ctx context.Context, conn *pgx.Conn) error {
	var (
		mu       sync.Mutex
		inflight = map[string]bool{}
		backoff  = map[string]time.Time{}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, s.cfg.Workers)
		done     = make(chan struct{}, 1) // a tick finished: poll again soon
	)
	defer wg.Wait()
	for {
		now := time.Now()
		mu.Lock()
		skip := make([]string, 0, len(inflight)+len(backoff))
		for id := range inflight {
			skip = append(skip, id)
		}
		for id, until := range backoff {
			if now.After(until) {
				delete(backoff, id)
			} else {
				skip = append(skip, id)
			}
		}
		mu.Unlock()
		s.polls.Inc()
		dues, err := s.poll(ctx, conn, skip)
		if err != nil {
			return err
		}
		for _, d := range dues {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			mu.Lock()
			inflight[d.ConversationID] = true
			mu.Unlock()
			s.pending.Inc()
			wg.Go(func() {
				defer func() { <-sem }()
				tctx, cancel := context.WithTimeout(ctx, s.cfg.TickTimeout)
				err := s.wake(tctx, d)
				cancel()
				s.pending.Dec()
				mu.Lock()
				delete(inflight, d.ConversationID)
				if err != nil {
					backoff[d.ConversationID] = time.Now().Add(s.cfg.RetryAfter)
				}
				mu.Unlock()
				if err != nil {
					s.ticks.WithLabelValues("error").Inc()
					if ctx.Err() == nil {
						s.log.Warn("tick failed; retrying later", "conversation", d.ConversationID, "err", err)
					}
				} else {
					s.ticks.WithLabelValues("ok").Inc()
					s.lag.Observe(time.Since(d.DueAt).Seconds())
				}
				select {
				case done <- struct{}{}:
				default:
				}
			})
		}
		if len(dues) == s.cfg.Batch {
			continue // more are due: no wait
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.PollInterval):
		case <-done:
			// A tick finished, which may have armed a due time sooner
			// than the next poll; not waiting for the interval also lets a
			// burst drain at the speed of the ticks.
			if len(dues) == 0 {
				if err := sleep(ctx, s.cfg.PollInterval); err != nil {
					return err
				}
			}
		}
	}
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
