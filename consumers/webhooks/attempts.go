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
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// job is a due delivery: the head of its (webhook, conversation) queue.
type job struct {
	key
	conversationID string
	version        int64
	payload        string
	attempts       int
	committedAt    time.Time
	queuedAt       time.Time
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

func (d *Deliverer) dispatchLoop(ctx context.Context, attempts *sync.WaitGroup, outcomes chan<- outcome) {
	t := time.NewTicker(d.cfg.DispatchInterval)
	defer t.Stop()
	for {
		if err := d.dispatch(ctx, attempts, outcomes); err != nil && ctx.Err() == nil {
			d.log.Warn("webhooks: looking for due deliveries failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// dueSQL takes at most $3 heads per endpoint, so that the heads of an
// endpoint that may only take a few (a half-open circuit, at its cap) never
// fill the window and starve the other endpoints.
const dueSQL = `
SELECT webhook_id, event_id, conversation_id, version, payload, attempts, committed_at, created_at
FROM (SELECT *, row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at) AS rn
	FROM webhook_deliveries
	WHERE status = 'pending' AND next_attempt_at <= now() AND NOT (webhook_id = ANY ($1))) due
WHERE rn <= $3
ORDER BY next_attempt_at
LIMIT $2`

// dispatch starts attempts for due heads while workers are free, skipping
// endpoints whose circuit is open or that are at their cap.
func (d *Deliverer) dispatch(ctx context.Context, attempts *sync.WaitGroup, outcomes chan<- outcome) error {
	d.mu.Lock()
	gen := d.gen
	free := d.cfg.Workers - len(d.inflight)
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
	d.mu.Unlock()
	if free <= 0 {
		return nil
	}
	if skip == nil {
		skip = []string{}
	}
	rows, err := d.pool.Query(ctx, dueSQL, skip, window, perHook)
	if err != nil {
		return fmt.Errorf("due deliveries: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (job, error) {
		var j job
		err := r.Scan(&j.webhook, &j.event, &j.conversationID, &j.version, &j.payload, &j.attempts, &j.committedAt, &j.queuedAt)
		return j, err
	})
	if err != nil {
		return fmt.Errorf("due deliveries: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// A head whose outcome was recorded while the query ran may still show
	// as due in its result: it must not be sent again.
	defer maps.DeleteFunc(d.finished, func(_ key, g uint64) bool { return g <= gen })
	now = time.Now()
	for _, j := range jobs {
		if d.finished[j.key] > gen {
			continue
		}
		if len(d.inflight) >= d.cfg.Workers {
			break
		}
		if d.inflight[j.key] || d.perHook[j.webhook] >= d.cfg.MaxPerEndpoint {
			continue
		}
		c := d.circuit(j.webhook)
		if !c.allows(now, d.cfg.CircuitThreshold) {
			continue
		}
		if c.failures >= d.cfg.CircuitThreshold {
			c.probing = true // half-open: this attempt decides
		}
		d.inflight[j.key] = true
		d.perHook[j.webhook]++
		attempts.Go(func() {
			o := d.attempt(ctx, j)
			select {
			case outcomes <- o:
			case <-ctx.Done():
			}
		})
	}
	return nil
}

func (d *Deliverer) circuit(hook string) *circuit {
	c := d.circuits[hook]
	if c == nil {
		c = &circuit{}
		d.circuits[hook] = c
	}
	return c
}

// errGone: the webhook was deleted; its deliveries went with it.
var errGone = errors.New("webhook deleted")

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
	case errors.Is(err, errGone), ctx.Err() != nil:
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
		d.m.duration.Observe(now.Sub(start).Seconds())
	case errors.Is(err, errGone), ctx.Err() != nil:
		o.status = "gone" // nothing to record
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

// send makes one attempt. It reads the webhook's row right before, so that
// no attempt starts after the webhook's DELETE answered, on any node.
func (d *Deliverer) send(ctx context.Context, j job) error {
	var url string
	var sealed []byte
	err := d.pool.QueryRow(ctx, `SELECT url, secret_sealed FROM webhooks WHERE id = $1`, j.webhook).Scan(&url, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("read webhook: %w", err)
	}
	secret, err := d.sealer.Open(j.webhook, sealed)
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
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(body))
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
		return fmt.Errorf("POST %s: %w", url, err)
	}
	// Drain a little so the connection can be reused; never a whole
	// unbounded body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: answered %s", url, resp.Status)
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
// arrived meanwhile), promoting each finished head's successor, then lets
// the dispatcher see the queues again.
func (d *Deliverer) recordLoop(ctx context.Context, outcomes <-chan outcome) {
	for {
		var batch []outcome
		select {
		case <-ctx.Done():
			return
		case o := <-outcomes:
			batch = append(batch, o)
		}
	drain:
		for len(batch) < 512 {
			select {
			case o := <-outcomes:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		for {
			err := d.record(ctx, batch)
			if err == nil || ctx.Err() != nil {
				break
			}
			// Keeping the batch in memory keeps its heads in flight, so
			// nothing is sent twice meanwhile.
			d.log.Warn("webhooks: recording outcomes failed; retrying", "err", err, "outcomes", len(batch))
			if sleep(ctx, time.Second) != nil {
				return
			}
		}
		d.mu.Lock()
		d.gen++
		for _, o := range batch {
			d.finished[o.key] = d.gen
			delete(d.inflight, o.key)
			if d.perHook[o.webhook]--; d.perHook[o.webhook] <= 0 {
				delete(d.perHook, o.webhook)
			}
		}
		d.mu.Unlock()
		d.poke()
	}
}

func (d *Deliverer) record(ctx context.Context, batch []outcome) error {
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
		return nil
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, recordSQL, hooks, events, statuses, errs, nexts); err != nil {
			return fmt.Errorf("record outcomes: %w", err)
		}
		return p.setHeads(ctx, tx)
	})
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
