package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/switchboard-dev/switchboard/internal/metrics"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
	// SettingsVersion is the version of the inbox settings DueAt was
	// decided under. If the inbox's settings are newer when the append
	// commits, due_at is stored as now instead: the tick that follows
	// decides again under the new ones (see RearmInbox for the other half).
	SettingsVersion int64
	// SummaryJSON and ItemJSON, when set, are Summary and Item as the
	// caller already encoded them (the conversation actor encodes each once
	// for its reply, the inbox and these rows); nil: the writer encodes
	// them. Event.Summary, when set, must be the Summary, and Event.Item
	// the Item: the journal row reuses these encodings for them.
	SummaryJSON, ItemJSON []byte
}

// IdempotencyKey is a client-supplied key in its scope, e.g.
// ("ext:<inbox id>", external_id) or ("client:<conversation id>", client_id).
type IdempotencyKey struct{ Scope, Key string }

// WriterConfig tunes group commit. Zero values take the defaults.
type WriterConfig struct {
	// MaxBatch caps the appends of one transaction (default 512).
	MaxBatch int
	// Window, if set, holds the first pending append up to this long for
	// company even when a committer is free. The default (0) is natural
	// group commit: an append is sent at once when nothing is in flight,
	// and appends batch up only while a commit runs — which adds no delay
	// at idle and still fills batches under load.
	Window time.Duration
	// Committers is how many batch transactions may be in flight at once
	// (default 2): while one waits for its commit (WAL flush), the next is
	// already executing, so the disk and the CPU overlap.
	Committers int
	// NoticeEvery spaces out the journal_appended notices that wake the
	// journal's consumers (see notices): a commit within NoticeEvery of the
	// last notice gets one at the window's end, shared with the others
	// (default 20 ms; negative: a notice after every commit).
	NoticeEvery time.Duration
	// Log receives snapshot failures and refused appends (default: discarded).
	Log *slog.Logger
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.Window < 0 {
		c.Window = 0
	}
	if c.Committers <= 0 {
		c.Committers = 2
	}
	if c.NoticeEvery == 0 {
		c.NoticeEvery = 20 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// WriterStats are counters for tests and the admin page.
type WriterStats struct {
	Batches      int64 // transactions attempted (a split batch counts each part)
	Appends      int64 // appends sent to the database
	LargestBatch int64
	// Retries counts batches re-run whole after a conflict a re-run
	// resolves (a key another node committed first, a deadlock).
	Retries int64
	// Splits counts batches cut in two because PostgreSQL refused the data
	// of one of their appends; Refused counts the appends answered
	// ErrInvalid for it. Neither re-runs an append that committed.
	Splits, Refused int64
	// Snapshots counts snapshots written.
	Snapshots int64
}

// Writer is the persistence actor (docs/architecture.md, invariants 2 and 3): every
// conversation actor of the node hands it its appends and snapshots, and it
// commits them in batches, one transaction and one statement per batch,
// while each append keeps its own outcome.
//
// It is a plain local protoactor actor, spawned here rather than in package
// actors: its mailbox is the queue and its state (pending appends, the
// conversations and keys of in-flight batches) is only touched by its own
// Receive, while the batches commit beside it in goroutines and report back
// as messages. Keeping the shell next to the SQL keeps storage depending on
// the domain only (never on actors or gateway) and lets its tests run
// against a real PostgreSQL under the race detector; a plain local actor
// starts none of the cluster machinery the library's races live in. It runs
// on an actor system of its own because its lifetime is the storage's: it
// must outlast the cluster member, whose grains hand it their last
// snapshots as they stop.
type Writer struct {
	pool   *pgxpool.Pool
	cfg    WriterConfig
	system *actor.ActorSystem
	pid    *actor.PID
	// committing hands batches to the Committers goroutines, which live as
	// long as the writer: a goroutine per batch grew a fresh stack through
	// pgx's read path at every commit (2–5% of the node's CPU at 1,000 msg/s,
	// where most batches are single appends). Buffered to Committers, and
	// the actor never has more in flight, so its send never blocks.
	committing chan []*request

	mu       sync.RWMutex // guards closed against sends after closeWriter
	closed   bool
	done     chan struct{}
	shutdown sync.Once
	// wakes counts the committed batches whose wake-up answers are still
	// being read (finishWake): Close waits for them, so that whatever a
	// commit announces has been sent once Close returns.
	wakes sync.WaitGroup

	batches, appends, largest, retries, splits, refused, snapshots atomic.Int64

	// stmt is the batch statement: appendStatement, or (set by the
	// benchmark before the first Append) a minimal one to compare with.
	stmt batchStatement
	// notifyJournal is the journal notice's statement: notifySQL, or (set
	// by a test before the first Append) one made to fail.
	notifyJournal string

	// enqueued, if set (by tests, before the first Append), is signalled
	// when the actor has taken an append in, so a test can await it.
	enqueued chan<- struct{}

	m         writerMetrics
	commitP99 *metrics.Window
	notices   *notices
}

type request struct {
	ctx  context.Context
	a    Append
	keys []IdempotencyKey // de-duplicated
	// The JSON the batch sends, encoded by the caller's goroutine, off the
	// actor. event leaves out its summary when withSummary: the statement
	// adds sum to it (see appendBatchSQL).
	event, item, sum []byte
	withSummary      bool
	// itemInEvent: event carries item (the same bytes), so the statement
	// takes the item row's from the event it parses anyway (see
	// encodeEvent) and item is not sent.
	itemInEvent bool
	reply       chan error // buffered: a committer never blocks on a caller
	at          time.Time
}

const tagSeparator = "\x1f" // ASCII unit separator

// Results for appends_total.
const (
	resultOK        = "ok"
	resultFenced    = "fenced"
	resultDuplicate = "duplicate"
	resultInvalid   = "invalid"
	resultError     = "error"
	resultCanceled  = "canceled"
)

// NewWriter starts the persistence actor on the pool. Metrics are
// registered on reg (nil: not registered); a second writer on the same
// registry shares them.
func NewWriter(pool *pgxpool.Pool, cfg WriterConfig, reg prometheus.Registerer) *Writer {
	cfg = cfg.withDefaults()
	w := &Writer{
		pool:          pool,
		cfg:           cfg,
		stmt:          appendStatement,
		notifyJournal: notifySQL,
		done:          make(chan struct{}),
		committing:    make(chan []*request, cfg.Committers),
		m:             newWriterMetrics(reg),
		commitP99:     metrics.NewWindow(commitBuckets, time.Minute, 12),
	}
	w.notices = newNotices(cfg.NoticeEvery, w.notify)
	libLog := cfg.Log.With("lib", "protoactor")
	w.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return libLog }))
	st := &writerActor{w: w, busyConv: map[string]bool{}, busyKey: map[IdempotencyKey]bool{}, snaps: map[string]snapshot{}}
	// The producer returns the same instance: were Receive ever to panic,
	// the restarted actor keeps the appends it was holding.
	w.pid = w.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return st }))
	for range cfg.Committers {
		go w.committer()
	}
	return w
}

// committer commits the batches the actor hands it until the writer stops.
func (w *Writer) committer() {
	for batch := range w.committing {
		answers := w.commit(batch)
		// The actor hears of it before the callers do, so a caller's next
		// append for the same conversation finds it free.
		w.system.Root.Send(w.pid, batchDone{batch: batch})
		for i, r := range batch {
			w.answer(r, answers[i].err, answers[i].result)
		}
	}
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Batches: w.batches.Load(), Appends: w.appends.Load(), LargestBatch: w.largest.Load(),
		Retries: w.retries.Load(), Splits: w.splits.Load(), Refused: w.refused.Load(), Snapshots: w.snapshots.Load()}
}

// CommitP99 is the 99th percentile of batch commit durations over about
// the last minute (the upper bound of its histogram bucket), and false when
// no batch committed in that time. A lifetime p99 would hide a recent
// problem behind hours of good history.
func (w *Writer) CommitP99() (time.Duration, bool) {
	return w.commitP99.Quantile(0.99, time.Now())
}

// Append commits one event and blocks until its batch's COMMIT returned (nil)
// or the append was rejected: ErrFenced (the head's epoch is not a.Epoch, or
// its version is not a.Event.Version-1: another activation has moved on),
// ErrDuplicate, ErrInvalid (malformed, or values PostgreSQL refuses; nothing
// was written and the caller's state is intact), ErrClosed, or a wrapped
// database error — then the outcome is unknown (the transaction may have
// committed before the connection broke) and the caller must reload from
// the database.
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
	// Counted before the send: the actor may answer (and decrement) before
	// this goroutine runs again.
	w.m.pending.Inc()
	w.system.Root.Send(w.pid, r)
	w.mu.RUnlock()
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SaveSnapshot hands a conversation's encoded state at version to the
// writer and returns at once: snapshots are off the conversation actors'
// path. It is written with the other snapshots that arrived meanwhile (the
// newest per conversation), never moving a stored snapshot backwards. A
// lost snapshot costs only a longer journal tail at the next activation, so
// failures are logged, not returned; false means the writer is closed.
func (w *Writer) SaveSnapshot(conversationID string, version int64, state []byte) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	w.system.Root.Send(w.pid, snapshot{conv: conversationID, version: version, state: state})
	return true
}

func newRequest(ctx context.Context, in Append) (*request, error) {
	// The request's own copy is the one read below: taking the address of
	// the argument would move a second copy to the heap.
	r := &request{ctx: ctx, a: in, reply: make(chan error, 1)}
	a := &r.a
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
	sum := a.SummaryJSON
	if sum == nil {
		var err error
		if sum, err = json.Marshal(&a.Summary); err != nil {
			return nil, fmt.Errorf("persistence: append %s@%d: encode summary: %w", id, v, err)
		}
	}
	item := a.ItemJSON
	if a.Item != nil && item == nil {
		var err error
		if item, err = json.Marshal(a.Item); err != nil {
			return nil, fmt.Errorf("persistence: append %s@%d: encode item: %w", id, v, err)
		}
	}
	ev, spliced, err := encodeEvent(a, item)
	if err != nil {
		return nil, fmt.Errorf("persistence: append %s@%d: encode event: %w", id, v, err)
	}
	r.event, r.sum, r.item, r.withSummary, r.itemInEvent = ev, sum, item, a.Event.Summary != nil, spliced
	return r, nil
}

// encodeEvent encodes a.Event for the journal without its summary, which
// the batch statement adds from the summary it stores in the read model
// (the journal keeps it for webhooks), and with its item taken from item,
// already encoded, rather than encoded once more. The summary is most of an
// event's bytes: sent once, PostgreSQL parses it once. spliced reports that
// the event carries item: the statement then takes the item row's from the
// event it parses anyway, and item is neither sent nor parsed twice.
func encodeEvent(a *Append, item []byte) (out []byte, spliced bool, err error) {
	ev := a.Event
	ev.Summary = nil
	splice := ev.Item != nil && ev.Item == a.Item
	if splice {
		ev.Item = nil
	}
	out, err = ev.AppendJSON(make([]byte, 0, ev.JSONSizeHint()+len(`,"item":`)+len(item)))
	if err != nil || !splice {
		return out, false, err
	}
	// out is an object with at least type, version and at: its closing
	// brace makes room for the spliced item.
	out = append(out[:len(out)-1], `,"item":`...)
	return append(append(out, item...), '}'), true, nil
}

// Close stops accepting appends and snapshots (ErrClosed afterwards),
// commits everything already accepted and waits for it and for the
// notices it owes, or for ctx.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		// Every append and snapshot sent before this point is ahead of it
		// in the mailbox.
		w.system.Root.Send(w.pid, closeWriter{})
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("persistence: close writer: %w", ctx.Err())
	}
	w.shutdown.Do(w.system.Shutdown)
	w.notices.close()
	woken := make(chan struct{})
	go func() {
		w.wakes.Wait()
		close(woken)
	}()
	select {
	case <-woken:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("persistence: close writer: wake-ups: %w", ctx.Err())
	}
}

func (w *Writer) answer(r *request, err error, result string) {
	r.reply <- err
	w.m.pending.Dec()
	w.m.results.WithLabelValues(result).Inc()
}
