package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// Append is one conversation event to commit, with everything that must
// commit in the same transaction as its journal row.
type Append struct {
	// Epoch is the fencing epoch the activation got from ClaimEpoch.
	Epoch int64
	// Event.Version must be the head version + 1.
	Event conversation.Event
	// Summary is the state after the event (the read-model row);
	// Summary.Version == Event.Version. It carries ID, AccountID and InboxID.
	Summary    conversation.Summary
	ContactKey string
	// Item, if set, is upserted at (conversation, Item.Seq): a call item is
	// updated in place at the seq it was first appended at.
	Item *conversation.Item
	// Keys are durable idempotency keys. If any exists already, the whole
	// append is rejected with ErrDuplicate and nothing of it is written.
	Keys []IdempotencyKey
	// DueAt is the conversation's next due time (conversation.NextDue),
	// stored in the read model's due_at for the timer scanner; nil: none.
	DueAt *time.Time
}

// IdempotencyKey is a client-supplied key in its scope, e.g.
// ("ext:<inbox id>", external_id) or ("client:<conversation id>", client_id).
type IdempotencyKey struct{ Scope, Key string }

// WriterConfig tunes group commit. Zero values take the defaults.
type WriterConfig struct {
	// MaxBatch caps the appends of one transaction (default 512).
	MaxBatch int
	// Window is how long the first pending append waits for company before
	// its batch is flushed (default 1ms). Under load a batch is flushed as
	// soon as a committer is free, since its first append has waited longer.
	Window time.Duration
	// Committers is how many batch transactions may be in flight at once
	// (default 2): while one waits for its commit (WAL flush), the next is
	// already executing, so the disk and the CPU overlap.
	Committers int
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.Window <= 0 {
		c.Window = time.Millisecond
	}
	if c.Committers <= 0 {
		c.Committers = 2
	}
	return c
}

// WriterStats are counters for tests and the admin page.
type WriterStats struct {
	Batches      int64 // transactions attempted
	Appends      int64 // appends sent to the database
	LargestBatch int64
	Retries      int64 // batches re-run after a whole-transaction conflict
}

// Writer is the group-commit writer (DESIGN.md invariant 3): one collector
// goroutine gathers appends from every conversation actor and commits them in
// batches, one transaction and one statement per batch, while each append
// keeps its own outcome.
type Writer struct {
	pool *pgxpool.Pool
	cfg  WriterConfig

	mu     sync.RWMutex // guards closed against sends on the closed channel
	closed bool
	in     chan *request
	done   chan struct{}

	batches, appends, largest, retries atomic.Int64

	// enqueued, if set (by tests, before the first Append), is signalled
	// when an append has been accepted, so a test can await it.
	enqueued chan<- struct{}

	mBatch    prometheus.Histogram
	mDuration prometheus.Histogram
	mPending  prometheus.Gauge
	mResults  *prometheus.CounterVec
}

type request struct {
	ctx   context.Context
	a     Append
	keys  []IdempotencyKey // de-duplicated
	event string           // JSON, encoded by the caller's goroutine, off the collector
	item  string
	sum   string
	reply chan error // buffered: the committer never blocks on a caller
	at    time.Time
}

const tagSeparator = "\x1f" // ASCII unit separator

// Results for appends_total.
const (
	resultOK        = "ok"
	resultFenced    = "fenced"
	resultDuplicate = "duplicate"
	resultError     = "error"
	resultCanceled  = "canceled"
)

// batchTimeout bounds one batch transaction, so a hung connection cannot
// stall the writer (and Close) forever.
const batchTimeout = 30 * time.Second

// maxBatchAttempts: a batch is re-run when it failed as a whole for a reason
// that a re-run resolves (a concurrent transaction inserted one of its
// idempotency keys, a deadlock): nothing of a failed transaction was written.
const maxBatchAttempts = 3

// NewWriter starts a writer on the pool. Metrics are registered on reg (nil:
// not registered); a second writer on the same registry shares them.
func NewWriter(pool *pgxpool.Pool, cfg WriterConfig, reg prometheus.Registerer) *Writer {
	cfg = cfg.withDefaults()
	w := &Writer{
		pool: pool,
		cfg:  cfg,
		in:   make(chan *request, 4*cfg.MaxBatch),
		done: make(chan struct{}),
		mBatch: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "commit_batch_size",
			Help:    "Appends per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		})),
		mDuration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "commit_duration_seconds",
			Help:    "Duration of one group-commit transaction, from send to COMMIT.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		})),
		mPending: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "commit_pending",
			Help: "Appends accepted by the writer and not yet answered.",
		})),
		mResults: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "appends_total",
			Help: "Appends answered by the writer, by result (ok, fenced, duplicate, error, canceled).",
		}, []string{"result"})),
	}
	go w.run()
	return w
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("persistence: register metric: %v", err))
	}
	return c
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Batches: w.batches.Load(), Appends: w.appends.Load(), LargestBatch: w.largest.Load(), Retries: w.retries.Load()}
}

// Append commits one event and blocks until its batch's COMMIT returned (nil)
// or the append was rejected: ErrFenced (the head's epoch is not a.Epoch, or
// its version is not a.Event.Version-1: another activation has moved on),
// ErrDuplicate, ErrInvalid, ErrClosed, or a wrapped database error — then the
// outcome is unknown (the transaction may have committed before the
// connection broke) and the caller must reload from the database.
//
// If ctx ends first, Append returns ctx.Err(), and the append may still
// commit: once it is on its way to the database it cannot be withdrawn. It is
// dropped without being written only if ctx ended before its batch was built.
// Either way the caller must treat the outcome as unknown.
func (w *Writer) Append(ctx context.Context, a Append) error {
	r, err := newRequest(ctx, a)
	if err != nil {
		return err
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return fmt.Errorf("persistence: append %s@%d: %w", a.Summary.ID, a.Event.Version, ErrClosed)
	}
	// Counted before the send: the collector may answer (and decrement)
	// before this goroutine runs again.
	w.mPending.Inc()
	select {
	case w.in <- r:
		if w.enqueued != nil {
			w.enqueued <- struct{}{}
		}
	case <-ctx.Done():
		w.mPending.Dec()
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newRequest(ctx context.Context, a Append) (*request, error) {
	id, v := a.Summary.ID, a.Event.Version
	switch {
	case id == "" || a.Summary.AccountID == "" || a.Summary.InboxID == "":
		return nil, fmt.Errorf("persistence: append %s@%d: summary without id, account or inbox: %w", id, v, ErrInvalid)
	case v < 1 || a.Summary.Version != v:
		return nil, fmt.Errorf("persistence: append %s@%d: summary version %d: %w", id, v, a.Summary.Version, ErrInvalid)
	case a.Event.Type == "":
		return nil, fmt.Errorf("persistence: append %s@%d: event without type: %w", id, v, ErrInvalid)
	case a.Item != nil && (a.Item.Seq < 1 || a.Item.Seq > v):
		return nil, fmt.Errorf("persistence: append %s@%d: item seq %d: %w", id, v, a.Item.Seq, ErrInvalid)
	}
	for _, tag := range a.Summary.Tags {
		if tag == "" || strings.Contains(tag, tagSeparator) {
			return nil, fmt.Errorf("persistence: append %s@%d: tag %q: %w", id, v, tag, ErrInvalid)
		}
	}
	r := &request{ctx: ctx, a: a, reply: make(chan error, 1)}
	for _, k := range a.Keys {
		if k.Scope == "" || k.Key == "" {
			return nil, fmt.Errorf("persistence: append %s@%d: empty idempotency key: %w", id, v, ErrInvalid)
		}
		dup := false
		for _, seen := range r.keys {
			dup = dup || seen == k
		}
		if !dup {
			r.keys = append(r.keys, k)
		}
	}
	ev, err := json.Marshal(a.Event)
	if err != nil {
		return nil, fmt.Errorf("persistence: append %s@%d: encode event: %w", id, v, err)
	}
	sum, err := json.Marshal(a.Summary)
	if err != nil {
		return nil, fmt.Errorf("persistence: append %s@%d: encode summary: %w", id, v, err)
	}
	r.event, r.sum = string(ev), string(sum)
	if a.Item != nil {
		it, err := json.Marshal(a.Item)
		if err != nil {
			return nil, fmt.Errorf("persistence: append %s@%d: encode item: %w", id, v, err)
		}
		r.item = string(it)
	}
	return r, nil
}

// Close stops accepting appends (ErrClosed afterwards), commits everything
// already accepted and waits for it, or for ctx.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("persistence: close writer: %w", ctx.Err())
	}
}

func (w *Writer) answer(r *request, err error, result string) {
	r.reply <- err
	w.mPending.Dec()
	w.mResults.WithLabelValues(result).Inc()
}

// run is the collector. It owns pending and the busy sets, so none of them
// needs a lock.
func (w *Writer) run() {
	defer close(w.done)
	var (
		pending  []*request
		inflight int
		// Conversations and keys of in-flight batches: an append for one of
		// them waits for that batch, so two transactions of this writer never
		// contend for the same head row or key.
		busyConv = map[string]bool{}
		busyKey  = map[IdempotencyKey]bool{}
		finished = make(chan []*request, w.cfg.Committers)
		timer    = time.NewTimer(time.Hour)
		in       = w.in
		// blocked: every pending append waits on an in-flight batch, so
		// there is nothing to do until one finishes.
		blocked bool
	)
	timer.Stop()
	for {
		for !blocked && inflight < w.cfg.Committers && len(pending) > 0 &&
			(len(pending) >= w.cfg.MaxBatch || in == nil || time.Since(pending[0].at) >= w.cfg.Window) {
			var batch []*request
			batch, pending = w.take(pending, busyConv, busyKey)
			if len(batch) == 0 {
				blocked = len(pending) > 0
				continue
			}
			for _, r := range batch {
				busyConv[r.a.Summary.ID] = true
				for _, k := range r.keys {
					busyKey[k] = true
				}
			}
			inflight++
			go func() {
				w.commit(batch)
				finished <- batch
			}()
		}
		if in == nil && len(pending) == 0 && inflight == 0 {
			return
		}
		var wake <-chan time.Time
		if !blocked && inflight < w.cfg.Committers && len(pending) > 0 {
			timer.Reset(time.Until(pending[0].at.Add(w.cfg.Window)))
			wake = timer.C
		}
		select {
		case r, ok := <-in:
			if !ok {
				in = nil
				break
			}
			r.at = time.Now()
			pending = append(pending, r)
			blocked = false
		case batch := <-finished:
			inflight--
			for _, r := range batch {
				delete(busyConv, r.a.Summary.ID)
				for _, k := range r.keys {
					delete(busyKey, k)
				}
			}
			blocked = false
		case <-wake:
		}
		timer.Stop()
	}
}

// take picks the next batch from pending in arrival order: at most MaxBatch
// appends, at most one per conversation and per key, none touching an
// in-flight batch. The others stay pending, in order. Appends whose caller
// gave up are answered here rather than written.
func (w *Writer) take(pending []*request, busyConv map[string]bool, busyKey map[IdempotencyKey]bool) (batch, rest []*request) {
	convs := make(map[string]bool, min(len(pending), w.cfg.MaxBatch))
	var keys map[IdempotencyKey]bool
	rest = pending[:0:0]
	for _, r := range pending {
		if len(batch) == w.cfg.MaxBatch {
			rest = append(rest, r)
			continue
		}
		if err := r.ctx.Err(); err != nil {
			w.answer(r, err, resultCanceled)
			continue
		}
		id := r.a.Summary.ID
		conflict := busyConv[id] || convs[id]
		for _, k := range r.keys {
			conflict = conflict || busyKey[k] || keys[k]
		}
		if conflict {
			rest = append(rest, r)
			continue
		}
		convs[id] = true
		for _, k := range r.keys {
			if keys == nil {
				keys = map[IdempotencyKey]bool{}
			}
			keys[k] = true
		}
		batch = append(batch, r)
	}
	return batch, rest
}

// commit runs one batch and answers each of its appends.
func (w *Writer) commit(batch []*request) {
	n := int64(len(batch))
	w.batches.Add(1)
	w.appends.Add(n)
	for {
		l := w.largest.Load()
		if n <= l || w.largest.CompareAndSwap(l, n) {
			break
		}
	}
	w.mBatch.Observe(float64(n))
	start := time.Now()
	outcomes, err := w.execWithRetry(batch)
	w.mDuration.Observe(time.Since(start).Seconds())
	for i, r := range batch {
		id, v := r.a.Summary.ID, r.a.Event.Version
		switch {
		case err != nil:
			w.answer(r, fmt.Errorf("persistence: append %s@%d: batch of %d: %w", id, v, n, err), resultError)
		case outcomes[i] == outcomeOK:
			w.answer(r, nil, resultOK)
		case outcomes[i] == outcomeDuplicate:
			w.answer(r, fmt.Errorf("persistence: append %s@%d: %w", id, v, ErrDuplicate), resultDuplicate)
		default:
			w.answer(r, fmt.Errorf("persistence: append %s@%d epoch %d: %w", id, v, r.a.Epoch, ErrFenced), resultFenced)
		}
	}
}

type outcome uint8

const (
	outcomeFenced outcome = iota
	outcomeOK
	outcomeDuplicate
)

func (w *Writer) execWithRetry(batch []*request) ([]outcome, error) {
	args := batchArgs(batch)
	due, armsSoon := soonDue(batch, time.Now())
	for attempt := 1; ; attempt++ {
		outcomes, err := w.exec(args, len(batch), due, armsSoon)
		if err == nil || attempt == maxBatchAttempts || !retryable(err) {
			return outcomes, err
		}
		w.retries.Add(1)
	}
}

// retryable: the transaction failed as a whole, wrote nothing, and a re-run
// can succeed — a concurrent writer (another node) committed one of the
// batch's idempotency keys first (the re-run reports that append as a
// duplicate), or PostgreSQL broke a deadlock between two nodes' batches.
func retryable(err error) bool {
	switch pgCode(err) {
	case "23505", "40P01", "40001":
		return true
	}
	return false
}

// exec commits one batch; armsSoon adds the TimersChannel announcement of
// due (see soonDue) to the transaction.
func (w *Writer) exec(args []any, n int, due time.Time, armsSoon bool) (_ []outcome, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	defer func() {
		// A failed pipeline leaves the transaction open (aborted); roll it
		// back so the connection goes back to the pool reusable.
		if err != nil && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(ctx, "ROLLBACK")
		}
	}()
	// One round trip: the pipeline carries the whole transaction.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(appendBatchSQL, args...)
	b.Queue("NOTIFY journal_appended")
	if armsSoon {
		b.Queue(notifyTimersSQL, TimersPayload(due))
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("commit batch: %w", cerr)
		}
	}()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	outcomes := make([]outcome, n)
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	for rows.Next() {
		var idx int64
		var ok bool
		if err := rows.Scan(&idx, &ok); err != nil {
			rows.Close()
			return nil, fmt.Errorf("append batch: %w", err)
		}
		if idx < 1 || idx > int64(n) {
			rows.Close()
			return nil, fmt.Errorf("append batch: result index %d out of range", idx)
		}
		if ok {
			outcomes[idx-1] = outcomeOK
		} else {
			outcomes[idx-1] = outcomeDuplicate
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if armsSoon {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("notify timers: %w", err)
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("commit: transaction rolled back (%s)", tag)
	}
	return outcomes, nil
}

// batchArgs lays the batch out as column arrays for unnest.
func batchArgs(batch []*request) []any {
	n := len(batch)
	var (
		conv, account, inbox, etype, event, item, contactKey, status, channel, summary, tags = make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		epoch, version = make([]int64, n), make([]int64, n)
		itemSeq        = make([]pgtype.Int8, n)
		addressed      = make([]bool, n)
		assignee       = make([]pgtype.Text, n)
		lastActivity   = make([]time.Time, n)
		waiting        = make([]pgtype.Timestamptz, n)
		due            = make([]pgtype.Timestamptz, n) // automation: due_at
		keyIdx         []int64
		keyScope, keys []string
	)
	for i, r := range batch {
		s := &r.a.Summary
		conv[i], account[i], inbox[i] = s.ID, s.AccountID, s.InboxID
		epoch[i], version[i] = r.a.Epoch, r.a.Event.Version
		etype[i], event[i] = string(r.a.Event.Type), r.event
		if r.a.Item != nil {
			itemSeq[i] = pgtype.Int8{Int64: r.a.Item.Seq, Valid: true}
			item[i] = r.item
		} else {
			item[i] = "null"
		}
		contactKey[i], status[i], channel[i], summary[i] = r.a.ContactKey, string(s.Status), string(s.Channel), r.sum
		addressed[i] = s.Addressed
		// Tags travel as one string per append (a 2-D array cannot be
		// unnested row by row); the separator is rejected in tags.
		tags[i] = strings.Join(s.Tags, tagSeparator)
		if s.AssigneeID != nil {
			assignee[i] = pgtype.Text{String: *s.AssigneeID, Valid: true}
		}
		lastActivity[i] = s.LastActivityAt
		if s.WaitingSince != nil {
			waiting[i] = pgtype.Timestamptz{Time: *s.WaitingSince, Valid: true}
		}
		if r.a.DueAt != nil {
			due[i] = pgtype.Timestamptz{Time: *r.a.DueAt, Valid: true}
		}
		for _, k := range r.keys {
			keyIdx = append(keyIdx, int64(i+1))
			keyScope = append(keyScope, k.Scope)
			keys = append(keys, k.Key)
		}
	}
	if keyIdx == nil {
		keyIdx, keyScope, keys = []int64{}, []string{}, []string{}
	}
	return []any{conv, epoch, version, account, inbox, etype, event, itemSeq, item, contactKey,
		status, addressed, assignee, channel, lastActivity, waiting, summary, keyIdx, keyScope, keys, tags, due}
}

// appendBatchSQL applies a whole batch in one statement. Each append either
// lands completely or not at all, independently of the others:
//
//   - dup: appends with an idempotency key that already exists;
//   - advanced: the conditional head move — the fencing check. Under READ
//     COMMITTED a head row changed by a concurrent transaction (a newer
//     activation's ClaimEpoch) is re-checked against its new values, so a
//     stale activation can never slip through;
//   - journal, items, read model and keys are written only for the appends
//     whose head advanced.
//
// The result has one row per append that committed (ok) or was a duplicate
// of an append whose head still matched (not ok); any other append was
// fenced. Fencing wins over duplication, because a fenced activation must
// stop whatever its command was.
const appendBatchSQL = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::int8[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::text[],
		$15::timestamptz[], $16::timestamptz[], $17::text[], $21::text[], $22::timestamptz[])
		WITH ORDINALITY AS t(conv, epoch, version, account_id, inbox_id, event_type, event,
			item_seq, item, contact_key, status, addressed, assignee_id, channel,
			last_activity_at, waiting_since, summary, tags, due_at, idx)
),
keys AS (
	SELECT * FROM unnest($18::int8[], $19::text[], $20::text[]) AS k(idx, scope, key)
),
dup AS (
	SELECT DISTINCT k.idx FROM keys k JOIN idempotency_keys ik ON ik.scope = k.scope AND ik.key = k.key
),
advanced AS (
	UPDATE conversation_heads h SET version = i.version
	FROM input i
	WHERE h.conversation_id = i.conv AND h.epoch = i.epoch AND h.version = i.version - 1
		AND NOT EXISTS (SELECT 1 FROM dup WHERE dup.idx = i.idx)
	RETURNING i.*
),
journal_rows AS (
	INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event)
	SELECT conv, version, account_id, inbox_id, event_type, event::jsonb FROM advanced
),
item_rows AS (
	INSERT INTO items (conversation_id, seq, account_id, item)
	SELECT conv, item_seq, account_id, item::jsonb FROM advanced WHERE item_seq IS NOT NULL
	ON CONFLICT (conversation_id, seq) DO UPDATE SET item = excluded.item
),
read_model AS (
	INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed,
		assignee_id, channel, tags, last_activity_at, waiting_since, summary, due_at)
	SELECT conv, account_id, inbox_id, contact_key, version, status, addressed, assignee_id, channel,
		string_to_array(tags, E'\x1f'), last_activity_at, waiting_since, summary::jsonb, due_at
	FROM advanced
	ON CONFLICT (id) DO UPDATE SET ` + conversationUpdateSet + `,
		due_at = excluded.due_at -- automation: the timer scanner's due index
	WHERE conversations.version < excluded.version
),
key_rows AS (
	INSERT INTO idempotency_keys (scope, key, account_id, conversation_id, version)
	SELECT k.scope, k.key, a.account_id, a.conv, a.version FROM keys k JOIN advanced a ON a.idx = k.idx
)
SELECT idx, true FROM advanced
UNION ALL
SELECT i.idx, false FROM dup JOIN input i ON i.idx = dup.idx
	JOIN conversation_heads h ON h.conversation_id = i.conv AND h.epoch = i.epoch AND h.version = i.version - 1
`
