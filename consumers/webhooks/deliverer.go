// Package webhooks delivers conversation events to the webhook endpoints of
// their account (docs/api.md "Webhooks"), and manages those endpoints.
//
// The Deliverer is a consumer of the committed journal, like the search
// indexer (docs/architecture.md, invariant 12): every node runs one, and a PostgreSQL
// advisory lock makes exactly one of them active (consumers/journal.Lead);
// a standby takes over when the leader's connection goes.
//
// # Durability: fan-out, then attempts
//
// The active deliverer follows the journal with a persisted cursor that
// skips nothing (consumers/journal). For each batch it writes one row per
// (matching webhook, event) into webhook_deliveries in the same transaction
// that moves the cursor: a crash before the commit re-reads the batch, after
// it the rows exist. Attempts then work from that table only, so a restart,
// a takeover or a receiver that is down for hours loses nothing.
//
// # Order per (webhook, conversation), concurrency across them
//
// Only the head of each (webhook, conversation) queue — its lowest pending
// version — has next_attempt_at set; the next one is promoted in the same
// transaction that records the head as delivered or failed for good. Both
// the fan-out (before its insert) and the recording of outcomes take a
// transaction-level advisory lock per (webhook, conversation) before
// choosing a head, so a
// promotion and a concurrent insert cannot both miss each other. Different
// conversations are independent heads and are attempted concurrently, up to
// Config.Workers at once and Config.MaxPerEndpoint per endpoint; when the
// workers are all busy, they are shared fairly between endpoints (lanes.go,
// slotFreeLocked, fairestWaitingLocked and yieldLocked).
//
// # Latency: heads go straight to a worker
//
// The statements that make a delivery a head return it: the fan-out's
// insert returns the heads of queues that were empty, and the recording of
// outcomes returns the successors it promoted, each transaction carried in
// one pipelined round trip together with a read of the webhooks (so a
// webhook deleted meanwhile is not attempted). Those heads are attempted at
// once, without waiting for a query of due rows: a conversation's next
// event leaves one recording after its predecessor's 2xx. The dispatcher
// only picks up what was left over — retries that fell due, endpoints that
// were at their cap or behind an open circuit, heads of an earlier leader —
// every DispatchInterval, or at once when a slot frees up for a head that
// had to wait.
//
// # Falling behind: lanes refill in batches
//
// A queue's lane (lanes.go) sends from memory what the fan-out appended to
// it. When it cannot know every pending delivery of its queue — its head
// came from a retry or a recording, or more were waiting than it holds —
// it reads its next deliveries from the database before it runs dry, one
// statement for every lane asking at that moment (refill.go), and becomes
// complete again once a read finds the end of its queue. Before this, such
// a queue went back to one recording per delivery and a deliverer that had
// fallen behind under load never caught up. The read of a webhook right
// before each attempt (no attempt after its delete) is likewise one
// statement for all lanes waiting on it (check.go).
//
// # A dead receiver does not slow the others
//
// Each endpoint has a circuit: after Config.CircuitThreshold consecutive
// failures it opens and no retry goes to it until a cooldown has passed
// (doubling up to CircuitMax); then one probe decides. A delivery's first
// attempt still goes, and failures do not open it while the receiver
// delivered anything within CircuitMax: the failures may be some
// conversations' alone (a receiver that refuses one contact's events), and
// the others must not wait for them. With the per-endpoint cap this keeps a receiver that
// times out from holding the workers that healthy receivers need. Failed attempts back off per delivery with
// exponential backoff and jitter (RetryMin doubling up to RetryMax), and
// after Horizon the delivery is failed and listed.
//
// # Retention
//
// The active deliverer also deletes delivered rows after Config.Retention
// and failed ones after Config.FailedRetention, in bounded batches; only
// pending rows decide what is sent next (retention.go).
package webhooks

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/persistence/listen"
)

// Config tunes the deliverer. Zero values take the defaults.
type Config struct {
	BatchSize        int           // journal entries per fan-out transaction; default 500
	PollInterval     time.Duration // idle journal poll without a NOTIFY; default 1 s
	DispatchInterval time.Duration // look for due deliveries at least this often; default 200 ms
	LockRetry        time.Duration // standby's lock attempts; default 2 s
	LockKey          int64         // advisory lock electing the active deliverer; default DefaultLockKey
	CursorName       string        // its row in journal_cursors; default "webhooks"
	Workers          int           // attempts in flight; default 128 (and as many more, one per endpoint with nothing running)
	MaxPerEndpoint   int           // attempts in flight per endpoint; default 48
	Timeout          time.Duration // one attempt; default 10 s
	RetryMin         time.Duration // first retry after at most this; default 1 s
	RetryMax         time.Duration // longest wait between attempts; default 10 min
	Horizon          time.Duration // retry this long, then fail; default 24 h
	CircuitThreshold int           // consecutive failures that open an endpoint's circuit; default 5
	CircuitMin       time.Duration // first cooldown of an open circuit; default 1 s
	CircuitMax       time.Duration // longest cooldown; default 60 s
	StatsInterval    time.Duration // pending counts; default 2 s
	// SlowAfter: an attempt still waiting for its answer after this long
	// gives its worker and endpoint slot to the next lane and waits in a
	// slow slot, so receivers that hang (for some conversations, or for a
	// whole tenant) do not hold back the others' deliveries for their 10 s
	// timeouts. MaxSlow and MaxSlowPerEndpoint bound the attempts waiting
	// so; beyond them a slow attempt keeps its slot. Defaults 1 s,
	// 8 × Workers, 2 × MaxPerEndpoint.
	SlowAfter          time.Duration
	MaxSlow            int
	MaxSlowPerEndpoint int
	// Gather spaces out the fan-outs that are not catching up, as the
	// indexer's does: a fan-out costs a journal read and an account lookup
	// whatever its size, and a busy cluster commits hundreds of times a
	// second. It adds at most Gather to the delivery lag. Default 10 ms;
	// negative turns it off.
	Gather time.Duration
	// Retention keeps delivered rows this long after delivery
	// (SWITCHBOARD_WEBHOOK_RETENTION); default 24 h. FailedRetention keeps
	// failed ones, listed and retryable, this long after they failed
	// (SWITCHBOARD_WEBHOOK_FAILED_RETENTION); default 30 days (retention.go).
	Retention       time.Duration
	FailedRetention time.Duration
	PurgeInterval   time.Duration // between purge rounds; default 20 s
	PurgeBatch      int           // rows per purge statement; default 5,000
	// AllowPrivate lets deliveries connect to loopback and private
	// addresses (SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
}

// DefaultLockKey: "sbwebhk" in ASCII, apart from the indexer's key.
const DefaultLockKey int64 = 0x73627765626b68

// lockClass is the first key of the per-(webhook, conversation)
// transaction locks ("wh"); two-key advisory locks do not collide with the
// one-key leadership locks.
const lockClass = 0x7768

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	num := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	num(&c.BatchSize, 500)
	num(&c.Workers, 128)
	num(&c.MaxPerEndpoint, 48)
	num(&c.MaxSlow, 8*c.Workers)
	num(&c.MaxSlowPerEndpoint, 2*c.MaxPerEndpoint)
	set(&c.SlowAfter, time.Second)
	num(&c.CircuitThreshold, 5)
	num(&c.PurgeBatch, 5000)
	set(&c.PollInterval, time.Second)
	if c.Gather == 0 {
		c.Gather = 10 * time.Millisecond
	}
	set(&c.DispatchInterval, 200*time.Millisecond)
	set(&c.LockRetry, 2*time.Second)
	set(&c.Timeout, 10*time.Second)
	set(&c.RetryMin, time.Second)
	set(&c.RetryMax, 10*time.Minute)
	set(&c.Horizon, 24*time.Hour)
	set(&c.CircuitMin, time.Second)
	set(&c.CircuitMax, time.Minute)
	set(&c.StatsInterval, 2*time.Second)
	set(&c.Retention, 24*time.Hour)
	set(&c.FailedRetention, 30*24*time.Hour)
	set(&c.PurgeInterval, 20*time.Second)
	if c.LockKey == 0 {
		c.LockKey = DefaultLockKey
	}
	if c.CursorName == "" {
		c.CursorName = "webhooks"
	}
	return c
}

// Stats is the deliverer's state for the admin API.
type Stats struct {
	Active    bool   `json:"active"`     // this node is the one delivering
	Pending   int64  `json:"pending"`    // deliveries waiting, all endpoints (every node measures)
	Delivered int64  `json:"delivered"`  // successful attempts by this process
	Failed    int64  `json:"failed"`     // failed attempts by this process
	OpenCircs int    `json:"open"`       // endpoints whose circuit is open
	LastError string `json:"last_error"` // the last failed attempt's error
}

// Deliverer sends journal events to webhooks. Create it with New, run it
// with Run; Stats may be called from any goroutine.
type Deliverer struct {
	pool   *pgxpool.Pool
	hub    *listen.Hub
	sealer *Sealer
	cfg    Config
	log    *slog.Logger
	m      metrics
	client *http.Client

	wake chan struct{}

	mu        sync.Mutex
	active    bool
	pending   int64
	lastError string
	inflight  map[key]bool
	// finished holds the generation (a count of recorded outcome batches)
	// at which a head's outcome was recorded, until no read that started
	// before it (readers: start generation → reads) is outstanding: such a
	// read may still return the head as due, and it must not be sent again.
	finished map[key]uint64
	readers  map[uint64]int
	gen      uint64
	// backlog: a due head was left for the dispatcher (no worker or
	// endpoint slot free), so it looks again as soon as slots free up.
	backlog bool
	lanes   map[pair]*lane
	// waiting holds the lanes waiting for a slot, per endpoint in the
	// order they began to wait (lanes.go, startWaitingLocked).
	waiting map[string][]pair
	running int            // lanes attempting (Config.Workers bounds it)
	perHook map[string]int // of those, per endpoint (Config.MaxPerEndpoint)
	// slow counts the lanes whose attempt outlasted Config.SlowAfter and
	// gave up its slot (not in running or perHook), slowPerHook per endpoint.
	slow        int
	slowPerHook map[string]int
	circuits    map[string]*circuit
	// circuitsShown: endpoints whose circuit changed what the deliveries
	// list shows (circuit.shown) since the recorder last wrote it.
	circuitsShown map[string]bool

	delivered, failed atomic.Int64
}

type key struct{ webhook, event string }

// New returns a deliverer that hears of commits through hub. Metrics are
// registered on reg (nil: not).
func New(pool *pgxpool.Pool, hub *listen.Hub, sealer *Sealer, cfg Config, logger *slog.Logger, reg prometheus.Registerer) *Deliverer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	transport := &http.Transport{
		DialContext:         Dialer(cfg.AllowPrivate).DialContext,
		MaxIdleConnsPerHost: cfg.MaxPerEndpoint,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &Deliverer{
		pool: pool, hub: hub, sealer: sealer, cfg: cfg, log: logger.With("component", "webhooks"), m: newMetrics(reg),
		client: &http.Client{Transport: transport, Timeout: cfg.Timeout,
			// A redirect is an answer that is not 2xx: following it would
			// let a receiver point deliveries anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		wake: make(chan struct{}, 1),
	}
}

// Stats returns the current state.
// LagP99 is the 99th percentile of delivery lag (commit → the receiver's
// 2xx) over about the last minute, and false when nothing was delivered in
// that time.
func (d *Deliverer) LagP99() (time.Duration, bool) { return d.m.lagWindow.Quantile(0.99, time.Now()) }

func (d *Deliverer) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	open := 0
	now := time.Now()
	for _, c := range d.circuits {
		if c.open(now, d.cfg.CircuitThreshold) {
			open++
		}
	}
	return Stats{Active: d.active, Pending: d.pending, Delivered: d.delivered.Load(), Failed: d.failed.Load(),
		OpenCircs: open, LastError: d.lastError}
}

// Run delivers until ctx is done: it competes for leadership and, while it
// leads, fans out the journal and attempts deliveries. It returns nil once
// ctx is done.
func (d *Deliverer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.statsLoop(ctx) })
	defer wg.Wait()
	cfg := d.pool.Config().ConnConfig
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := journal.Lead(ctx, cfg, d.cfg.LockKey, d.cfg.LockRetry, d.lead)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) > time.Minute {
			// A session that lasted is not a failing one: the next
			// loss starts the backoff over.
			wait = 50 * time.Millisecond
		}
		d.log.Warn("webhook deliverer lost its database session; retrying", "err", err, "retry_in", wait)
		if journal.Sleep(ctx, wait) != nil {
			break
		}
		wait = min(2*wait, 5*time.Second)
	}
	return nil
}

// lead runs while this node holds the lock: the fan-out on conn, the
// dispatcher and the recorder of outcomes on the pool.
func (d *Deliverer) lead(ctx context.Context, conn *pgx.Conn) error {
	d.mu.Lock()
	d.active, d.inflight, d.perHook, d.circuits = true, map[key]bool{}, map[string]int{}, map[string]*circuit{}
	d.circuitsShown = map[string]bool{}
	d.finished, d.readers, d.backlog = map[key]uint64{}, map[uint64]int{}, true
	d.lanes, d.running, d.waiting = map[pair]*lane{}, 0, map[string][]pair{}
	d.slow, d.slowPerHook = 0, map[string]int{}
	d.mu.Unlock()
	d.log.Info("webhook deliverer active on this node")
	ctx, cancel := context.WithCancel(ctx)
	r := &run{ctx: ctx, appended: d.hub.Subscribe(journal.Channel), recordWake: make(chan struct{}, 1), refillWake: make(chan struct{}, 1),
		checks: make(chan checkAsk, d.cfg.Workers)}
	var wg sync.WaitGroup
	defer func() {
		r.appended.Close()
		cancel()
		// The loops that start attempts end first, so that no attempt
		// starts while they are waited for.
		wg.Wait()
		r.attempts.Wait()
		d.mu.Lock()
		d.active = false
		d.mu.Unlock()
	}()
	// A leader that died between recording an outcome and promoting the
	// next one cannot exist (one transaction), but heads left by an older
	// version or a manual edit would stall their queue: set every missing
	// head once per leadership.
	if _, err := d.pool.Exec(ctx, repairHeadsSQL); err != nil {
		return fmt.Errorf("webhooks: repair heads: %w", err)
	}
	// This leadership's circuits start closed; an earlier leader's are gone.
	if _, err := d.pool.Exec(ctx, `UPDATE webhooks SET circuit_open_until = NULL WHERE circuit_open_until IS NOT NULL`); err != nil {
		return fmt.Errorf("webhooks: clear circuits: %w", err)
	}
	cur, err := journal.LoadCursor(ctx, conn, d.cfg.CursorName)
	if err != nil {
		return err
	}
	wg.Go(func() { d.dispatchLoop(r) })
	wg.Go(func() { d.recordLoop(r) })
	wg.Go(func() { d.refillLoop(r) })
	wg.Go(func() { d.checkLoop(r) })
	wg.Go(func() { d.purgeLoop(ctx) })
	return d.fanOutLoop(r, conn, cur)
}

// run is one leadership's attempt machinery. Its slices are guarded by
// Deliverer.mu.
type run struct {
	ctx      context.Context
	appended *listen.Subscription // the journal's commits
	attempts sync.WaitGroup
	// outbox holds outcomes for the recorder: a lane never waits for a
	// recording to send its next delivery.
	outbox     []outcome
	recordWake chan struct{}
	refills    []refill // lanes' asks for their next deliveries
	refillWake chan struct{}
	checks     chan checkAsk // attempts' reads of their webhook
	// cursorSaved is when the fan-out last stored its cursor.
	cursorSaved time.Time
}

// idleCursorEvery spaces out the cursor saves of batches that deliver
// nothing: losing such a move costs the next leader a re-read of entries
// that deliver nothing either, while a save per batch cost a transaction
// per commit of the whole cluster.
const idleCursorEvery = time.Second

// fanOutRetry is the first wait before a failed fan-out is tried again.
const fanOutRetry = 50 * time.Millisecond

// fanOutLoop follows the journal from cur on conn.
func (d *Deliverer) fanOutLoop(r *run, conn *pgx.Conn, cur journal.Cursor) error {
	ctx := r.ctx
	pendingWait, retry := time.Duration(0), fanOutRetry
	for {
		round := time.Now()
		read, err := journal.ReadBatchOf(ctx, conn, cur, d.cfg.BatchSize, journal.NoEvents, "")
		if err != nil {
			return err
		}
		batch := read.Entries
		if len(batch) == 0 {
			wait := d.cfg.PollInterval
			if read.Pending {
				// Rows above the horizon: the transactions before them
				// usually finish within milliseconds.
				pendingWait = min(max(2*pendingWait, time.Millisecond), wait)
				wait = pendingWait
			} else {
				pendingWait = 0
			}
			r.appended.Wait(ctx, wait)
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		pendingWait = 0
		n, err := d.fanOut(r, conn, batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if conn.IsClosed() {
				return err
			}
			// The session and its lock are intact: retry this batch (its
			// transaction rolled back, or committed rows the insert
			// skips), keeping every attempt in flight and the lanes in
			// memory, where ending the leadership would cancel them all
			// for one failed statement.
			d.m.fanOutErrors.Inc()
			d.log.Warn("webhooks: fan-out failed; retrying", "err", err, "retry_in", retry)
			if journal.Sleep(ctx, retry) != nil {
				return nil
			}
			retry = min(2*retry, 5*time.Second)
			continue
		}
		retry = fanOutRetry
		cur = batch[len(batch)-1].Cursor
		d.m.fannedOut.Add(float64(n))
		d.m.fanOuts.Inc()
		if len(batch) < d.cfg.BatchSize && d.cfg.Gather > 0 {
			if err := journal.Sleep(ctx, d.cfg.Gather-time.Since(round)); err != nil {
				return nil
			}
		}
	}
}

// insertDeliveriesSQL writes a batch's deliveries. The first new delivery
// of a (webhook, conversation) queue with nothing pending is its head and
// is due at once; the queues are locked before this runs, so no outcome
// recorded meanwhile can promote a head of its own. It returns the rows it
// wrote, heads flagged, so that they are attempted without another read.
//
// The accounts' webhooks ($9) are key-share locked first: a webhook deleted
// after the statement's snapshot was taken is then skipped, or its delete
// waits for this commit. No row is written for a webhook after its delete
// committed, so the purge of a deleted webhook's rows (retention.go) finds
// them all. (While deliveries had a foreign key, such a row failed it, and
// every account's deliveries stopped while one account deleted a webhook
// under traffic.)
const insertDeliveriesSQL = `
WITH w AS MATERIALIZED (
	SELECT id, account_id, events, created_snapshot FROM webhooks WHERE account_id = ANY ($9) FOR KEY SHARE
)
INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type, payload, committed_at, next_attempt_at)
SELECT w.id, e.event_id, e.account_id, e.conversation_id, e.version, e.type, e.payload, e.committed_at,
	CASE WHEN row_number() OVER (PARTITION BY w.id, e.conversation_id ORDER BY e.version) = 1
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries q
			WHERE q.webhook_id = w.id AND q.conversation_id = e.conversation_id AND q.status = 'pending' AND NOT q.detached)
	THEN now() END
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
	AS e(event_id, account_id, conversation_id, version, type, payload, txid, committed_at)
JOIN w ON w.account_id = e.account_id AND e.type = ANY (w.events)
	AND NOT pg_visible_in_snapshot(e.txid::xid8, w.created_snapshot)
ON CONFLICT DO NOTHING
RETURNING ` + jobColumns + `, next_attempt_at IS NOT NULL`

// jobColumns are what an attempt needs of a delivery row.
const jobColumns = `webhook_id, event_id, conversation_id, version, payload, attempts, committed_at, coalesce(first_attempt_at, now())`

// setHeadsSQL gives each named (webhook, conversation) queue its head: the
// lowest pending version becomes due if it is not already. It returns the
// heads it set. The heads are chosen first (MATERIALIZED) and then updated
// by primary key: written as one join, the planner joined every row of a
// webhook with every queue before filtering on the event (0.8–2 s per
// fan-out batch of 500 at 300 conversations, holding the queues' locks all
// the while, which was why the deliverer fell behind under load).
const setHeadsSQL = `
WITH h AS MATERIALIZED (
	SELECT p.webhook_id, q.event_id
	FROM unnest($1::text[], $2::text[]) AS p(webhook_id, conversation_id),
	LATERAL (SELECT q.event_id, q.next_attempt_at FROM webhook_deliveries q
		WHERE q.webhook_id = p.webhook_id AND q.conversation_id = p.conversation_id AND q.status = 'pending'
			AND NOT q.detached
		ORDER BY q.version LIMIT 1) q
	WHERE q.next_attempt_at IS NULL)
UPDATE webhook_deliveries d SET next_attempt_at = now()
FROM h WHERE d.webhook_id = h.webhook_id AND d.event_id = h.event_id
RETURNING d.webhook_id, d.event_id, d.conversation_id, d.version, d.payload, d.attempts, d.committed_at, coalesce(d.first_attempt_at, now())`

const repairHeadsSQL = `
UPDATE webhook_deliveries d SET next_attempt_at = now()
FROM (SELECT DISTINCT ON (webhook_id, conversation_id) webhook_id, event_id, next_attempt_at
	FROM webhook_deliveries WHERE status = 'pending' AND NOT detached ORDER BY webhook_id, conversation_id, version) h
WHERE d.webhook_id = h.webhook_id AND d.event_id = h.event_id AND h.next_attempt_at IS NULL`

// lockQueuesSQL takes the (webhook, conversation) queues' transaction
// locks in key order, so that two transactions never wait on each other
// in a cycle.
const lockQueuesSQL = `SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k ORDER BY k`

// endpointsSQL reads the webhooks that heads are about to be attempted
// for. It runs after the commit that made them heads, right before the
// attempts: a webhook deleted by then is not attempted.
const endpointsSQL = `SELECT id, url, secret_sealed FROM webhooks WHERE id = ANY ($1)`

// fanOut writes the deliveries of a batch and moves the cursor past it, in
// one transaction and one round trip, and starts the new heads' attempts.
// It returns how many deliveries it wrote.
func (d *Deliverer) fanOut(r *run, conn *pgx.Conn, batch []journal.Entry) (int, error) {
	ctx := r.ctx
	last := batch[len(batch)-1].Cursor
	accounts := make([]string, 0, len(batch))
	for _, e := range batch {
		accounts = append(accounts, e.AccountID)
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)
	// Only events of accounts with webhooks are worth encoding, and their
	// queues are locked before the insert.
	rows, err := conn.Query(ctx, `SELECT id, account_id FROM webhooks WHERE account_id = ANY ($1)`, accounts)
	if err != nil {
		return 0, fmt.Errorf("webhooks: accounts with webhooks: %w", err)
	}
	hooksOf := map[string][]string{}
	var hook, account string
	if _, err := pgx.ForEachRow(rows, []any{&hook, &account}, func() error {
		hooksOf[account] = append(hooksOf[account], hook)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("webhooks: accounts with webhooks: %w", err)
	}
	// The batch was read without its events (most accounts have no
	// webhook, and an event carries a whole summary): load those that fan
	// out.
	var wanted []*journal.Entry
	for i := range batch {
		if hooksOf[batch[i].AccountID] != nil {
			wanted = append(wanted, &batch[i])
		}
	}
	if err := journal.LoadEvents(ctx, conn, wanted); err != nil {
		return 0, fmt.Errorf("webhooks: %w", err)
	}
	var ids, accts, convs, types, payloads, txids []string
	var versions []int64
	var committed []time.Time
	var p pairs
	for _, e := range batch {
		if hooksOf[e.AccountID] == nil {
			continue
		}
		typ, body, err := payload(e.ConversationID, e.Version, e.EventType, e.AccountID, e.InboxID, e.Event, e.CreatedAt)
		if err != nil {
			// The journal is written by this program; an event it cannot
			// read is a bug to see, not a reason to stop every delivery.
			d.log.Error("webhooks: skipped an undecodable journal event", "err", err)
			continue
		}
		ids, accts, convs = append(ids, EventID(e.ConversationID, e.Version)), append(accts, e.AccountID), append(convs, e.ConversationID)
		versions, types, payloads = append(versions, e.Version), append(types, typ), append(payloads, body)
		txids, committed = append(txids, strconv.FormatUint(e.TxID, 10)), append(committed, e.CreatedAt)
		// Every webhook of the account: a superset of the queues the
		// insert touches (types and creation time filter further).
		for _, h := range hooksOf[e.AccountID] {
			p.add(h, e.ConversationID)
		}
	}
	b := &pgx.Batch{}
	if len(ids) == 0 {
		if time.Since(r.cursorSaved) < idleCursorEvery {
			return 0, nil
		}
		r.cursorSaved = time.Now()
		b.Queue("BEGIN")
		b.Queue(journal.AsyncCommitSQL)
		journal.QueueSaveCursor(b, d.cfg.CursorName, last)
		b.Queue("COMMIT")
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return 0, fmt.Errorf("webhooks: move cursor to %s: %w", last, err)
		}
		return 0, nil
	}
	r.cursorSaved = time.Now()
	b.Queue("BEGIN")
	b.Queue(journal.AsyncCommitSQL)
	b.Queue(lockQueuesSQL, lockClass, p.keys())
	b.Queue(insertDeliveriesSQL, ids, accts, convs, versions, types, payloads, txids, committed, slices.Collect(maps.Keys(hooksOf)))
	b.Queue(setHeadsSQL, p.hooks, p.convs)
	journal.QueueSaveCursor(b, d.cfg.CursorName, last)
	b.Queue("COMMIT")
	b.Queue(endpointsSQL, p.webhooks())
	since := d.beginRead()
	defer d.endRead(since)
	var heads, written []job
	var isHead []bool
	err = func() error {
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		for _, what := range []string{"begin", "set", "lock queues"} {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		var j job
		var head bool
		if _, err := pgx.ForEachRow(rows, append(j.fields(), &head), func() error {
			written, isHead = append(written, j), append(isHead, head)
			return nil
		}); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if heads, err = collectJobs(br, nil); err != nil {
			return fmt.Errorf("set queue heads: %w", err)
		}
		for _, what := range []string{"save cursor", "commit"} {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		return readEndpoints(br, written, heads)
	}()
	if err != nil {
		return 0, fmt.Errorf("webhooks: fan out up to %s: %w", last, err)
	}
	// Per queue in version order: a head starts a complete lane, and what
	// follows it joins that lane.
	order := make([]int, len(written))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := written[a], written[b]
		return cmp.Or(cmp.Compare(x.webhook, y.webhook), cmp.Compare(x.conversationID, y.conversationID), cmp.Compare(x.version, y.version))
	})
	d.mu.Lock()
	now := time.Now()
	for _, i := range order {
		if isHead[i] {
			d.launchLocked(r, written[i], since, now, true)
		} else {
			d.parkLocked(r, written[i], now)
		}
	}
	poke := d.backlog
	d.mu.Unlock()
	d.start(r, heads, since)
	if poke {
		d.poke()
	}
	return len(written), nil
}

// collectJobs appends the rows of the batch's next result to jobs.
func collectJobs(br pgx.BatchResults, jobs []job) ([]job, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var j job
	if _, err := pgx.ForEachRow(rows, j.fields(), func() error { jobs = append(jobs, j); return nil }); err != nil {
		return nil, err
	}
	return jobs, nil
}

// readEndpoints fills in the jobs' webhooks from the batch's next result
// (endpointsSQL); a job whose webhook is gone keeps an empty url and is
// not attempted.
func readEndpoints(br pgx.BatchResults, lists ...[]job) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("read webhooks: %w", err)
	}
	eps := map[string]endpoint{}
	var id string
	var ep endpoint
	if _, err := pgx.ForEachRow(rows, []any{&id, &ep.url, &ep.sealed}, func() error { eps[id] = ep; return nil }); err != nil {
		return fmt.Errorf("read webhooks: %w", err)
	}
	for _, jobs := range lists {
		for i := range jobs {
			ep := eps[jobs[i].webhook]
			jobs[i].url, jobs[i].sealed = ep.url, ep.sealed
		}
	}
	return nil
}

// pairs are the (webhook, conversation) queues a transaction touches.
type pairs struct {
	hooks, convs []string
	seen         map[[2]string]bool
}

func (p *pairs) add(hook, conv string) {
	if p.seen == nil {
		p.seen = map[[2]string]bool{}
	}
	if k := [2]string{hook, conv}; !p.seen[k] {
		p.seen[k] = true
		p.hooks, p.convs = append(p.hooks, hook), append(p.convs, conv)
	}
}

// keys are the queues' lock keys, sorted and distinct.
func (p *pairs) keys() []int32 {
	keys := make([]int32, len(p.hooks))
	for i := range p.hooks {
		h := fnv.New32a()
		h.Write([]byte(p.hooks[i]))
		h.Write([]byte{0})
		h.Write([]byte(p.convs[i]))
		keys[i] = int32(h.Sum32())
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// webhooks are the distinct webhooks of the queues.
func (p *pairs) webhooks() []string {
	hooks := slices.Clone(p.hooks)
	slices.Sort(hooks)
	return slices.Compact(hooks)
}
