package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
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
	queuedAt       time.Time
	url            string
	sealed         []byte
}

// fields are the scan targets of jobColumns.
func (j *job) fields() []any {
	return []any{&j.webhook, &j.event, &j.conversationID, &j.version, &j.payload, &j.attempts, &j.committedAt, &j.queuedAt}
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

// pair names a (webhook, conversation) queue.
type pair struct{ webhook, conversation string }

// lane is a queue the leader works on in memory: its attempts run one
// after another on one goroutine, and when a delivery succeeds the next one
// known in memory is sent at once, before the outcome is recorded. A lane
// started by the fan-out from a queue that had nothing pending is complete:
// every later delivery of the queue comes through the fan-out in version
// order and is appended, so its queue holds every pending delivery after
// the one in flight. Any other lane (a head promoted by a recording or
// found by the dispatcher) may have pending rows it does not know of, so
// nothing is appended to it and its successors come from the database. A
// lane lives until its last outcome is recorded: until then the database
// still shows its deliveries pending and the fan-out cannot start another.
// A lane with deliveries but no worker or endpoint slot waits in
// Deliverer.waiting for one.
type lane struct {
	queue      []job
	running    bool // a goroutine is attempting its deliveries
	waiting    bool // in Deliverer.waiting
	unrecorded int  // outcomes handed to the recorder, not yet committed
	complete   bool
	stop       bool // an attempt failed: nothing more is sent from memory
}

// maxLaneQueue bounds the deliveries a lane holds in memory; beyond it the
// database holds them (and the lane is no longer complete).
const maxLaneQueue = 256

// start attempts heads read since generation since.
func (d *Deliverer) start(r *run, heads []job, since uint64) {
	if len(heads) == 0 {
		return
	}
	d.mu.Lock()
	now := time.Now()
	for _, j := range heads {
		d.launchLocked(r, j, since, now, false)
	}
	d.mu.Unlock()
}

// launchLocked starts a lane for head j unless its webhook is gone, it is
// in memory already, its outcome was recorded after the read that returned
// it, or its endpoint's circuit is open (then it stays due for the
// dispatcher). Without a free slot the lane waits for one.
func (d *Deliverer) launchLocked(r *run, j job, since uint64, now time.Time, complete bool) {
	p := pair{j.webhook, j.conversationID}
	if j.url == "" || d.finished[j.key] > since || d.inflight[j.key] || r.ctx.Err() != nil {
		return
	}
	if l := d.lanes[p]; l != nil {
		if !complete {
			return // the lane's recordings promote it, or the dispatcher
		}
		// The fan-out found nothing pending in the queue: this lane's
		// deliveries are all recorded, and from here it knows everything.
		l.complete, l.stop = true, false
		d.parkLocked(r, j, now)
		return
	}
	if !d.circuit(j.webhook).allows(now, d.cfg.CircuitThreshold) {
		return
	}
	l := &lane{complete: complete, queue: []job{j}}
	d.lanes[p] = l
	d.inflight[j.key] = true
	d.runLocked(r, p, l, now)
}

// runLocked starts l's goroutine on its first queued delivery if a slot is
// free and the circuit allows, else queues the lane for a slot.
func (d *Deliverer) runLocked(r *run, p pair, l *lane, now time.Time) {
	if d.running >= d.cfg.Workers || d.perHook[p.webhook] >= d.cfg.MaxPerEndpoint {
		if !l.waiting {
			l.waiting = true
			d.waiting = append(d.waiting, p)
		}
		return
	}
	c := d.circuit(p.webhook)
	if !c.allows(now, d.cfg.CircuitThreshold) {
		d.stopLocked(p, l) // its head stays due for the dispatcher
		return
	}
	if c.failures >= d.cfg.CircuitThreshold {
		c.probing = true // half-open: this attempt decides
	}
	d.running++
	d.perHook[p.webhook]++
	l.running, l.waiting = true, false
	j := l.queue[0]
	l.queue = l.queue[1:]
	r.attempts.Go(func() { d.work(r, p, l, j) })
}

// startWaitingLocked gives freed slots to the lanes waiting for one, in
// the order they began to wait.
func (d *Deliverer) startWaitingLocked(r *run) {
	now := time.Now()
	for _, p := range d.waiting {
		if d.running >= d.cfg.Workers {
			break
		}
		l := d.lanes[p]
		if l == nil || !l.waiting {
			continue
		}
		if d.perHook[p.webhook] >= d.cfg.MaxPerEndpoint {
			continue // stays behind: kept by the rebuild below
		}
		l.waiting = false
		d.runLocked(r, p, l, now)
	}
	// Keep those still waiting, in order.
	kept := d.waiting[:0]
	for _, p := range d.waiting {
		if l := d.lanes[p]; l != nil && l.waiting {
			kept = append(kept, p)
		}
	}
	d.waiting = slices.Clip(kept)
}

// parkLocked appends a delivery the fan-out wrote behind a queue's head to
// the queue's complete lane, starting the lane again if it had run dry.
func (d *Deliverer) parkLocked(r *run, j job, now time.Time) {
	p := pair{j.webhook, j.conversationID}
	l := d.lanes[p]
	if l == nil || !l.complete || l.stop || d.inflight[j.key] || r.ctx.Err() != nil {
		return
	}
	if len(l.queue) >= maxLaneQueue {
		// It stays pending in the database, promoted when its
		// predecessor's outcome is recorded; the lane no longer knows
		// every pending delivery.
		l.complete = false
		return
	}
	d.inflight[j.key] = true
	l.queue = append(l.queue, j)
	if !l.running && !l.waiting {
		d.runLocked(r, p, l, now)
	}
}

// work attempts a lane's deliveries in order: the next one only after its
// predecessor succeeded, each after reading its webhook (the first was
// read with it), so that a deleted webhook gets no further attempt.
func (d *Deliverer) work(r *run, p pair, l *lane, j job) {
	for {
		o := d.attempt(r.ctx, j)
		d.mu.Lock()
		l.unrecorded++
		next, more := d.nextLocked(r, p, l, o)
		d.mu.Unlock()
		select {
		case r.outcomes <- o:
		case <-r.ctx.Done():
			return
		}
		if !more {
			return
		}
		j = next
		if err := d.refresh(r.ctx, &j); err != nil {
			if r.ctx.Err() == nil && !errors.Is(err, pgx.ErrNoRows) {
				d.log.Warn("webhooks: reading a webhook failed", "err", err)
			}
			// Nothing to record: the delivery stays pending (or went
			// with its webhook); the dispatcher finds it once promoted.
			d.mu.Lock()
			delete(d.inflight, j.key)
			l.complete, l.stop = false, true // j is no longer in memory
			d.stopLocked(p, l)
			d.startWaitingLocked(r)
			d.mu.Unlock()
			return
		}
	}
}

// refresh reads j's webhook right before its attempt.
func (d *Deliverer) refresh(ctx context.Context, j *job) error {
	return d.pool.QueryRow(ctx, `SELECT url, secret_sealed FROM webhooks WHERE id = $1`, j.webhook).Scan(&j.url, &j.sealed)
}

// nextLocked decides after an attempt: the lane's next delivery if this
// one succeeded and the endpoint's circuit is closed, else the lane stops.
func (d *Deliverer) nextLocked(r *run, p pair, l *lane, o outcome) (job, bool) {
	if o.status == "delivered" && !l.stop && len(l.queue) > 0 && r.ctx.Err() == nil &&
		d.circuit(p.webhook).failures < d.cfg.CircuitThreshold {
		next := l.queue[0]
		l.queue = l.queue[1:]
		return next, true
	}
	if o.status != "delivered" {
		l.stop = true
	}
	d.stopLocked(p, l)
	d.startWaitingLocked(r)
	return job{}, false
}

// stopLocked ends a lane's goroutine (or its wait) and frees its slot
// (the caller then starts a waiting lane). Deliveries it still held stay pending in the database,
// where recordings promote them.
func (d *Deliverer) stopLocked(p pair, l *lane) {
	for _, q := range l.queue {
		delete(d.inflight, q.key)
		l.complete = false
	}
	l.queue, l.waiting = nil, false
	if l.running {
		l.running = false
		d.running--
		if d.perHook[p.webhook]--; d.perHook[p.webhook] <= 0 {
			delete(d.perHook, p.webhook)
		}
	}
	if l.unrecorded == 0 {
		delete(d.lanes, p)
	}
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
// fill the window and starve the other endpoints. The join with webhooks
// is the check, right before the attempts, that the webhook still exists.
const dueSQL = `
SELECT due.webhook_id, due.event_id, due.conversation_id, due.version, due.payload, due.attempts, due.committed_at, due.created_at,
	w.url, w.secret_sealed
FROM (SELECT *, row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at) AS rn
	FROM webhook_deliveries
	WHERE status = 'pending' AND next_attempt_at <= now() AND NOT (webhook_id = ANY ($1))) due
JOIN webhooks w ON w.id = due.webhook_id
WHERE due.rn <= $3
ORDER BY due.next_attempt_at
LIMIT $2`

// dispatch starts attempts for due heads while workers are free, skipping
// endpoints whose circuit is open or that are at their cap.
func (d *Deliverer) dispatch(r *run) error {
	d.mu.Lock()
	free := d.cfg.Workers - d.running
	if free <= 0 {
		d.mu.Unlock()
		return nil
	}
	var skip []string
	now := time.Now()
	for hook, c := range d.circuits {
		if !c.allows(now, d.cfg.CircuitThreshold) {
			skip = append(skip, hook)
		}
	}
	for hook, n := range d.perHook {
		if n >= d.cfg.MaxPerEndpoint {
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
	if skip == nil {
		skip = []string{}
	}
	defer d.endRead(since)
	rows, err := d.pool.Query(r.ctx, dueSQL, skip, window, perHook)
	if err != nil {
		d.setBacklog()
		return fmt.Errorf("due deliveries: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (job, error) {
		var j job
		err := row.Scan(append(j.fields(), &j.url, &j.sealed)...)
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
	switch {
	case err == nil:
		c.failures, c.cooldown = 0, 0
	case ctx.Err() != nil:
	default:
		c.failures++
		// Failures of attempts that were already in flight when the
		// circuit opened do not lengthen its cooldown.
		if c.failures >= d.cfg.CircuitThreshold && !now.Before(c.openUntil) {
			c.cooldown = min(max(2*c.cooldown, d.cfg.CircuitMin), d.cfg.CircuitMax)
			c.openUntil = now.Add(c.cooldown)
		}
		d.lastError = err.Error()
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
		o.err = truncate(err.Error(), 500)
		d.failed.Add(1)
		wait := retryDelay(d.cfg.RetryMin, d.cfg.RetryMax, j.attempts+1)
		if now.Add(wait).Sub(j.queuedAt) > d.cfg.Horizon {
			o.status = "failed"
			d.m.results.WithLabelValues("failed").Inc()
		} else {
			next := now.Add(wait)
			o.status, o.next = "pending", &next
			d.m.results.WithLabelValues("retry").Inc()
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// circuit is one endpoint's breaker, guarded by Deliverer.mu.
type circuit struct {
	failures  int // consecutive
	cooldown  time.Duration
	openUntil time.Time
	probing   bool // a half-open probe is in flight
}

func (c *circuit) open(now time.Time, threshold int) bool {
	return c.failures >= threshold && now.Before(c.openUntil)
}

// allows reports whether an attempt may start: the circuit is closed, or it
// has cooled down and no probe is out.
func (c *circuit) allows(now time.Time, threshold int) bool {
	if c.failures < threshold {
		return true
	}
	return !now.Before(c.openUntil) && !c.probing
}

const recordSQL = `
UPDATE webhook_deliveries d SET status = o.status, attempts = d.attempts + 1, last_error = o.err,
	next_attempt_at = o.next, delivered_at = CASE WHEN o.status = 'delivered' THEN now() END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS o(webhook_id, event_id, status, err, next)
WHERE d.webhook_id = o.webhook_id AND d.event_id = o.event_id AND d.status = 'pending'`

// recordLoop writes outcomes in batches (one transaction for all that
// arrived meanwhile, like a group commit), promoting each finished head's
// successor, and attempts the successors at once.
func (d *Deliverer) recordLoop(r *run) {
	ctx := r.ctx
	for {
		var batch []outcome
		select {
		case <-ctx.Done():
			return
		case o := <-r.outcomes:
			batch = append(batch, o)
		}
	drain:
		for len(batch) < 512 {
			select {
			case o := <-r.outcomes:
				batch = append(batch, o)
			default:
				break drain
			}
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
			if sleep(ctx, time.Second) != nil {
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
				if l.unrecorded--; l.unrecorded <= 0 && !l.running && !l.waiting && len(l.queue) == 0 {
					delete(d.lanes, p)
				}
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

// record writes a batch of outcomes and promotes the successors of the
// heads that are done, in one transaction and one round trip, and returns
// the promoted heads ready to attempt.
func (d *Deliverer) record(ctx context.Context, batch []outcome) ([]job, error) {
	var hooks, events, statuses, errs []string
	var nexts []*time.Time
	var p pairs
	for _, o := range batch {
		if o.status == "gone" {
			continue
		}
		hooks, events, statuses = append(hooks, o.webhook), append(events, o.event), append(statuses, o.status)
		errs, nexts = append(errs, o.err), append(nexts, o.next)
		if o.status != "pending" {
			p.add(o.webhook, o.conversationID)
		}
	}
	if len(hooks) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(recordSQL, hooks, events, statuses, errs, nexts)
	if len(p.hooks) > 0 {
		b.Queue(lockQueuesSQL, lockClass, p.keys())
		b.Queue(setHeadsSQL, p.hooks, p.convs)
	}
	b.Queue("COMMIT")
	if len(p.hooks) > 0 {
		b.Queue(endpointsSQL, p.webhooks())
	}
	br := d.pool.SendBatch(ctx, b)
	defer br.Close()
	for _, what := range []string{"begin", "record outcomes"} {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("webhooks: %s: %w", what, err)
		}
	}
	if len(p.hooks) == 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("webhooks: commit outcomes: %w", err)
		}
		return nil, nil
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("webhooks: lock queues: %w", err)
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
