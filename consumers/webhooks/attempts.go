package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/consumers/journal"
)

// job is a due delivery: the head of its (webhook, conversation) queue,
// with its webhook's destination as read right before it is attempted.
type job struct {
	key
	conversationID string
	version        int64
	payload        string
	attempts       int
	committedAt    time.Time
	// firstAttempt is when its first attempt was recorded (now, for a
	// first attempt): its retry horizon runs from there.
	firstAttempt time.Time
	url          string
	sealed       []byte
	// overdue: read by the dispatcher, a retry that has waited so long
	// past its time that an open circuit lets it through (held).
	overdue bool
	// detached: a delivery retried through the API, out of its queue's
	// order (Endpoints.Retry); read by the dispatcher.
	detached bool
}

// fields are the scan targets of jobColumns.
func (j *job) fields() []any {
	return []any{&j.webhook, &j.event, &j.conversationID, &j.version, &j.payload, &j.attempts, &j.committedAt, &j.firstAttempt}
}

// outcome is what an attempt came to.
type outcome struct {
	key
	conversationID string
	status         string // delivered, pending (retry later) or failed
	err            string
	next           *time.Time
}

// poke wakes the dispatcher.
func (d *Deliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// beginRead notes that a read of due heads is about to start, and returns
// the generation it starts at (endRead's argument).
func (d *Deliverer) beginRead() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.beginReadLocked()
}

func (d *Deliverer) beginReadLocked() uint64 {
	d.readers[d.gen]++
	return d.gen
}

func (d *Deliverer) endRead(since uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.endReadLocked(since)
}

// endReadLocked forgets the outcomes that no outstanding read can return
// as due any more.
func (d *Deliverer) endReadLocked(since uint64) {
	if d.readers[since]--; d.readers[since] <= 0 {
		delete(d.readers, since)
	}
	oldest := d.gen
	for g := range d.readers {
		oldest = min(oldest, g)
	}
	maps.DeleteFunc(d.finished, func(_ key, g uint64) bool { return g <= oldest })
}

func (d *Deliverer) dispatchLoop(r *run) {
	t := time.NewTicker(d.cfg.DispatchInterval)
	defer t.Stop()
	for {
		d.mu.Lock()
		d.startWaitingLocked(r) // circuits that cooled down
		d.mu.Unlock()
		if err := d.dispatch(r); err != nil && r.ctx.Err() == nil {
			d.log.Warn("webhooks: looking for due deliveries failed", "err", err)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// dueSQL takes at most $3 heads per endpoint, so that the heads of an
// endpoint that may only take a few (a half-open circuit, at its cap) never
// fill the window and starve the other endpoints; none of an endpoint at
// its cap ($1), none of the retries an open circuit holds back ($4: held;
// $5 and $6 are RetryMax and RetryMin in seconds, the exponent capped where
// the backoff is long at its maximum, so that no count of attempts
// overflows it). The join with
// webhooks is the check, right before the attempts, that the webhook still
// exists.
var dueSQL = `
SELECT due.webhook_id, due.event_id, due.conversation_id, due.version, due.payload, due.attempts, due.committed_at, coalesce(due.first_attempt_at, now()),
	w.url, w.secret_sealed, due.overdue, due.detached
FROM (SELECT d.*, o.overdue, row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at) AS rn
	FROM webhook_deliveries d
	CROSS JOIN LATERAL (SELECT now() >= ` + unheldAtSQL("$5", "$6") + ` AS overdue) o
	WHERE status = 'pending' AND next_attempt_at <= now() AND NOT (webhook_id = ANY ($1))
		AND NOT (attempts >= 2 AND NOT o.overdue AND webhook_id = ANY ($4))) due
JOIN webhooks w ON w.id = due.webhook_id
WHERE due.rn <= $3
ORDER BY due.next_attempt_at
LIMIT $2`

// dispatch starts attempts for due heads while workers are free, skipping
// endpoints whose circuit is open or that are at their cap. With every
// worker busy it still reads the heads of endpoints with nothing running,
// which may start in the slots kept for them (slotFreeLocked): otherwise a
// head only the dispatcher finds (a retry, a successor its lane left, an
// earlier leader's) waited for as long as another account's slow
// receivers kept every worker busy, and that conversation's deliveries
// with it.
func (d *Deliverer) dispatch(r *run) error {
	d.mu.Lock()
	free := d.cfg.Workers - d.running
	idleOnly := free <= 0
	if idleOnly {
		free = 2*d.cfg.Workers - d.running
	}
	if free <= 0 {
		d.mu.Unlock()
		return nil
	}
	skip, open := []string{}, []string{}
	now := time.Now()
	for hook, c := range d.circuits {
		if !c.allows(now, d.cfg.CircuitThreshold, true) {
			open = append(open, hook)
		}
	}
	for hook, n := range d.perHook {
		if n >= d.cfg.MaxPerEndpoint || idleOnly && n > 0 {
			skip = append(skip, hook)
		}
	}
	// The window holds the heads in flight too (they stay due until their
	// outcome is recorded), and up to perHook rows of each endpoint.
	perHook := 2 * d.cfg.MaxPerEndpoint
	window := free + len(d.inflight) + perHook*len(d.perHook)
	// This read sees every head left over before it.
	d.backlog = false
	since := d.beginReadLocked()
	d.mu.Unlock()
	defer d.endRead(since)
	rows, err := d.pool.Query(r.ctx, dueSQL, skip, window, perHook, open, d.cfg.RetryMax.Seconds(), d.cfg.RetryMin.Seconds())
	if err != nil {
		d.setBacklog()
		return fmt.Errorf("due deliveries: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (job, error) {
		var j job
		err := row.Scan(append(j.fields(), &j.url, &j.sealed, &j.overdue, &j.detached)...)
		return j, err
	})
	if err != nil {
		d.setBacklog()
		return fmt.Errorf("due deliveries: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(jobs) >= window {
		d.backlog = true // more than the window: look again when slots free
	}
	now = time.Now()
	for _, j := range jobs {
		d.launchLocked(r, j, since, now, false)
	}
	return nil
}

func (d *Deliverer) setBacklog() {
	d.mu.Lock()
	d.backlog = true
	d.mu.Unlock()
}

func (d *Deliverer) circuit(hook string) *circuit {
	c := d.circuits[hook]
	if c == nil {
		c = &circuit{}
		d.circuits[hook] = c
	}
	return c
}

// attempt sends one delivery and says what came of it.
func (d *Deliverer) attempt(ctx context.Context, j job) outcome {
	start := time.Now()
	err := d.send(ctx, j)
	now := time.Now()
	o := outcome{key: j.key, conversationID: j.conversationID}
	d.mu.Lock()
	c := d.circuit(j.webhook)
	c.probing = false
	shown := c.shown(d.cfg.CircuitThreshold)
	switch {
	case err == nil:
		c.failures, c.cooldown, c.lastSuccess = 0, 0, now
	case ctx.Err() != nil:
	default:
		c.failures++
		if now.Sub(c.lastSuccess) < d.cfg.CircuitMax {
			// The receiver delivered something lately: it is up, and these
			// failures are some conversations' own, each backing off on
			// its own; they must not hold back the others' retries.
			c.failures = min(c.failures, d.cfg.CircuitThreshold-1)
		}
		// Failures of attempts that were already in flight when the
		// circuit opened do not lengthen its cooldown.
		if c.failures >= d.cfg.CircuitThreshold && !now.Before(c.openUntil) {
			c.cooldown = min(max(2*c.cooldown, d.cfg.CircuitMin), d.cfg.CircuitMax)
			c.openUntil = now.Add(c.cooldown)
		}
		d.lastError = err.Error()
	}
	if !c.shown(d.cfg.CircuitThreshold).Equal(shown) {
		d.circuitsShown[j.webhook] = true
	}
	d.mu.Unlock()
	switch {
	case err == nil:
		o.status = "delivered"
		d.delivered.Add(1)
		d.m.results.WithLabelValues("delivered").Inc()
		d.m.lag.Observe(now.Sub(j.committedAt).Seconds())
		d.m.lagWindow.Observe(now.Sub(j.committedAt), now)
		d.m.duration.Observe(now.Sub(start).Seconds())
	case ctx.Err() != nil:
		o.status = "gone" // stopped: the next leader attempts it again
	default:
		o.err = errorText(err, 500)
		d.failed.Add(1)
		if next, ok := nextAttempt(now, j.firstAttempt, retryDelay(d.cfg.RetryMin, d.cfg.RetryMax, j.attempts+1), d.cfg.Horizon); ok {
			o.status, o.next = "pending", &next
			d.m.results.WithLabelValues("retry").Inc()
		} else {
			o.status = "failed"
			d.m.results.WithLabelValues("failed").Inc()
		}
	}
	return o
}

// send makes one attempt to the destination read with the job.
func (d *Deliverer) send(ctx context.Context, j job) error {
	secret, err := d.sealer.Open(j.webhook, j.sealed)
	if err != nil {
		return err
	}
	body := []byte(j.payload)
	ts := time.Now().Unix()
	sig, err := Sign(secret, j.event, ts, body)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, j.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchboard-Webhooks/1")
	req.Header.Set("webhook-id", j.event)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", j.url, err)
	}
	// Drain a little so the connection can be reused; never a whole
	// unbounded body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: answered %s", j.url, resp.Status)
	}
	return nil
}

// nextAttempt is when a delivery that failed at now is tried again, wait
// later, or false when it has failed for good: retries go on for at least
// the horizon after its first attempt, the last one at the horizon itself
// rather than a backoff's step before it.
func nextAttempt(now, first time.Time, wait, horizon time.Duration) (time.Time, bool) {
	deadline := first.Add(horizon)
	if !now.Before(deadline) {
		return time.Time{}, false
	}
	next := now.Add(wait)
	if next.After(deadline) {
		next = deadline
	}
	return next, true
}

// retryDelay is the wait after the n-th failed attempt: min·2ⁿ⁻¹ capped at
// max, with "equal jitter" (between half and all of it) so that the
// retries of many deliveries spread out.
func retryDelay(minD, maxD time.Duration, n int) time.Duration {
	d := minD << min(max(n-1, 0), 30)
	if d <= 0 || d > maxD {
		d = maxD
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// errorText is an attempt's error as last_error keeps it: text PostgreSQL
// takes (valid UTF-8, no NUL) of at most n bytes, cut between characters.
// The text quotes the URL and the receiver's answer, which may hold any
// bytes; one PostgreSQL refuses would fail the whole batch of outcomes it
// is recorded with, again on every retry, for every account.
func errorText(err error, n int) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// unheldAtSQL is when a pending delivery d (a retry) becomes overdue (see
// held): its next attempt time plus what is left of RetryMax after its
// backoff, the exponent capped where the backoff is long at its maximum so
// that no count of attempts overflows it. retryMax and retryMin are the
// statement's parameters holding them in seconds.
func unheldAtSQL(retryMax, retryMin string) string {
	return `(d.next_attempt_at + make_interval(secs => ` + retryMax + ` - least(` + retryMin +
		` * 2 ^ (least(greatest(d.attempts, 1), 60) - 1), ` + retryMax + `)))`
}

// held reports whether an open circuit holds j back. It does not hold back
// a first attempt, nor the first retry (within 2 s, whatever the
// endpoint's state), nor a retry overdue by so much that waiting longer
// would space its attempts more than RetryMax apart (10 minutes): the
// contract's spacing holds however many of an endpoint's queues are
// failing, while the retries in between, which would multiply a down
// receiver's load, wait for the circuit's probe to close it.
func held(j job) bool { return j.attempts >= 2 && !j.overdue }

// circuit is one endpoint's breaker, guarded by Deliverer.mu.
type circuit struct {
	failures    int       // consecutive
	lastSuccess time.Time // of any delivery to the endpoint
	cooldown    time.Duration
	openUntil   time.Time
	probing     bool // a half-open probe is in flight
}

// shown is when the circuit lets held retries go again, as the deliveries
// list shows it (zero: closed).
func (c *circuit) shown(threshold int) time.Time {
	if c.failures < threshold {
		return time.Time{}
	}
	return c.openUntil
}

func (c *circuit) open(now time.Time, threshold int) bool {
	return c.failures >= threshold && now.Before(c.openUntil)
}

// allows reports whether an attempt may start: the circuit is closed, or
// the attempt is not one it holds back (held), or the circuit has
// cooled down and no probe is out. An open circuit holds back retries
// only: failures the receiver gives some conversations (a 500 for one
// contact's events) must not hold back the others' events, and a receiver
// that is down gets each new event about twice (its first attempt and
// first retry), while the retries that would multiply that wait.
func (c *circuit) allows(now time.Time, threshold int, held bool) bool {
	if c.failures < threshold || !held {
		return true
	}
	return !now.Before(c.openUntil) && !c.probing
}

// probes reports whether an attempt allowed now decides the circuit: a
// held retry let through a cooled-down open circuit.
func (c *circuit) probes(threshold int, held bool) bool {
	return held && c.failures >= threshold
}

const recordSQL = `
UPDATE webhook_deliveries d SET status = o.status, attempts = d.attempts + 1, last_error = o.err,
	first_attempt_at = coalesce(d.first_attempt_at, now()),
	next_attempt_at = o.next, delivered_at = CASE WHEN o.status = 'delivered' THEN now() END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS o(webhook_id, event_id, status, err, next)
WHERE d.webhook_id = o.webhook_id AND d.event_id = o.event_id AND d.status = 'pending'`

// maxRecordBatch bounds the outcomes of one recording transaction.
const maxRecordBatch = 2048

// recordLoop writes outcomes in batches (one transaction for all that
// arrived meanwhile, like a group commit), promoting each finished head's
// successor, and attempts the successors at once.
func (d *Deliverer) recordLoop(r *run) {
	ctx := r.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.recordWake:
		}
		d.mu.Lock()
		batch := r.outbox[:min(len(r.outbox), maxRecordBatch)]
		r.outbox = r.outbox[len(batch):]
		if len(r.outbox) > 0 {
			signal(r.recordWake)
		} else {
			r.outbox = nil
		}
		circuits := d.takeCircuitsShownLocked()
		d.mu.Unlock()
		// Every change of a circuit comes with its attempt's outcome, and
		// this loop is the only writer: the last value written is the
		// circuit's latest.
		d.saveCircuits(ctx, circuits)
		if len(batch) == 0 {
			continue
		}
		since := d.beginRead()
		var heads []job
		for {
			var err error
			heads, err = d.record(ctx, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				d.endRead(since)
				return
			}
			// Keeping the batch in memory keeps its heads in flight, so
			// nothing is sent twice meanwhile.
			d.log.Warn("webhooks: recording outcomes failed; retrying", "err", err, "outcomes", len(batch))
			if journal.Sleep(ctx, time.Second) != nil {
				d.endRead(since)
				return
			}
		}
		d.mu.Lock()
		d.gen++
		for _, o := range batch {
			d.finished[o.key] = d.gen
			delete(d.inflight, o.key)
			p := pair{o.webhook, o.conversationID}
			if l := d.lanes[p]; l != nil {
				l.unrecorded--
				d.forgetIdleLocked(p, l)
			}
		}
		now := time.Now()
		for _, j := range heads {
			d.launchLocked(r, j, since, now, false)
		}
		poke := d.backlog
		d.endReadLocked(since)
		d.mu.Unlock()
		if poke {
			d.poke()
		}
	}
}

// circuitShown is what the deliveries list shows of one endpoint's circuit.
type circuitShown struct {
	webhook string
	until   *time.Time // nil: closed
}

// takeCircuitsShownLocked returns the circuits changed since the last call,
// as they are now.
func (d *Deliverer) takeCircuitsShownLocked() []circuitShown {
	if len(d.circuitsShown) == 0 {
		return nil
	}
	out := make([]circuitShown, 0, len(d.circuitsShown))
	for hook := range d.circuitsShown {
		cs := circuitShown{webhook: hook}
		if until := d.circuit(hook).shown(d.cfg.CircuitThreshold); !until.IsZero() {
			cs.until = &until
		}
		out = append(out, cs)
	}
	clear(d.circuitsShown)
	return out
}

// saveCircuits writes circuits for the deliveries list. One that cannot be
// written is marked changed again, for the next round.
func (d *Deliverer) saveCircuits(ctx context.Context, circuits []circuitShown) {
	if len(circuits) == 0 {
		return
	}
	hooks, untils := make([]string, len(circuits)), make([]*time.Time, len(circuits))
	for i, c := range circuits {
		hooks[i], untils[i] = c.webhook, c.until
	}
	if _, err := d.pool.Exec(ctx, `UPDATE webhooks w SET circuit_open_until = c.until
FROM unnest($1::text[], $2::timestamptz[]) AS c(id, until) WHERE w.id = c.id`, hooks, untils); err != nil {
		if ctx.Err() == nil {
			d.log.Warn("webhooks: saving circuits for the deliveries list failed", "err", err)
		}
		d.mu.Lock()
		for _, h := range hooks {
			d.circuitsShown[h] = true
		}
		d.mu.Unlock()
	}
}

// record writes a batch of outcomes and promotes the successors of the
// heads that are done, in one transaction and one round trip, and returns
// the promoted heads ready to attempt. The queues' locks come first, as in
// the fan-out: a row this transaction updated must never wait for a lock
// that the fan-out holds while it waits for that row (a deadlock).
func (d *Deliverer) record(ctx context.Context, batch []outcome) ([]job, error) {
	var hooks, events, statuses, errs []string
	var nexts []*time.Time
	var touched, done pairs
	for _, o := range batch {
		if o.status == "gone" {
			continue
		}
		hooks, events, statuses = append(hooks, o.webhook), append(events, o.event), append(statuses, o.status)
		errs, nexts = append(errs, o.err), append(nexts, o.next)
		touched.add(o.webhook, o.conversationID)
		if o.status != "pending" {
			done.add(o.webhook, o.conversationID)
		}
	}
	if len(hooks) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// A lost outcome means a delivery attempted again: receivers
	// de-duplicate on webhook-id (journal.AsyncCommitSQL).
	b.Queue(journal.AsyncCommitSQL)
	b.Queue(lockQueuesSQL, lockClass, touched.keys())
	b.Queue(recordSQL, hooks, events, statuses, errs, nexts)
	if len(done.hooks) > 0 {
		b.Queue(setHeadsSQL, done.hooks, done.convs)
	}
	b.Queue("COMMIT")
	if len(done.hooks) > 0 {
		b.Queue(endpointsSQL, done.webhooks())
	}
	br := d.pool.SendBatch(ctx, b)
	defer br.Close()
	for _, what := range []string{"begin", "set", "lock queues", "record outcomes"} {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("webhooks: %s: %w", what, err)
		}
	}
	if len(done.hooks) == 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("webhooks: commit outcomes: %w", err)
		}
		return nil, nil
	}
	heads, err := collectJobs(br, nil)
	if err != nil {
		return nil, fmt.Errorf("webhooks: promote queue heads: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("webhooks: commit outcomes: %w", err)
	}
	if err := readEndpoints(br, heads); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return heads, nil
}
