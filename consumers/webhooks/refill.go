package webhooks

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// refill asks for the pending deliveries of a lane's queue after its tail.
type refill struct {
	p     pair
	l     *lane
	after int64 // the lane's tail when asked
	limit int
	drops int // the lane's drops when asked
}

// refillLocked asks for l's next pending deliveries, unless it knows them
// all already or has a read out. The read is shared with the other lanes
// that ask meanwhile.
func (d *Deliverer) refillLocked(r *run, p pair, l *lane) {
	if l.complete || l.stop || l.refilling || l.detached || r.ctx.Err() != nil {
		return
	}
	limit := maxLaneQueue - len(l.queue)
	if limit <= 0 {
		return
	}
	l.refilling, l.parked, l.parkedLost = true, nil, false
	r.refills = append(r.refills, refill{p: p, l: l, after: l.tail, limit: limit, drops: l.drops})
	signal(r.refillWake)
}

// refillSQL reads the next pending deliveries of many queues in one
// statement, joined with their webhook: the webhook read right before the
// first of them may be attempted.
const refillSQL = `
SELECT p.i, q.webhook_id, q.event_id, q.conversation_id, q.version, q.payload, q.attempts, q.committed_at, coalesce(q.first_attempt_at, now()),
	w.url, w.secret_sealed
FROM unnest($1::text[], $2::text[], $3::int8[], $4::int4[]) WITH ORDINALITY AS p(webhook_id, conversation_id, after, n, i)
JOIN webhooks w ON w.id = p.webhook_id
CROSS JOIN LATERAL (SELECT * FROM webhook_deliveries q
	WHERE q.webhook_id = p.webhook_id AND q.conversation_id = p.conversation_id AND q.status = 'pending'
		AND NOT q.detached AND q.version > p.after
	ORDER BY q.version LIMIT p.n) q
ORDER BY p.i, q.version`

// refillLoop serves the lanes' refills, all that asked since the last
// read in one statement.
func (d *Deliverer) refillLoop(r *run) {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.refillWake:
		}
		d.mu.Lock()
		asks := r.refills
		r.refills = nil
		d.mu.Unlock()
		if len(asks) == 0 {
			continue
		}
		rows, err := d.readRefills(r, asks)
		d.m.refills.Inc()
		if err != nil && r.ctx.Err() == nil {
			// The lanes go on without: recordings promote their
			// deliveries, and the next refill asks again.
			d.log.Warn("webhooks: refilling lanes failed", "err", err, "lanes", len(asks))
		}
		d.mu.Lock()
		now := time.Now()
		for i, a := range asks {
			d.applyRefillLocked(r, a, rows[i], err == nil, now)
		}
		d.mu.Unlock()
	}
}

// readRefills returns each ask's deliveries, in version order.
func (d *Deliverer) readRefills(r *run, asks []refill) ([][]job, error) {
	out := make([][]job, len(asks))
	hooks, convs := make([]string, len(asks)), make([]string, len(asks))
	afters, limits := make([]int64, len(asks)), make([]int32, len(asks))
	for i, a := range asks {
		hooks[i], convs[i], afters[i], limits[i] = a.p.webhook, a.p.conversation, a.after, int32(a.limit)
	}
	rows, err := d.pool.Query(r.ctx, refillSQL, hooks, convs, afters, limits)
	if err != nil {
		return out, fmt.Errorf("refill lanes: %w", err)
	}
	var i int
	var j job
	_, err = pgx.ForEachRow(rows, append([]any{&i}, append(j.fields(), &j.url, &j.sealed)...), func() error {
		if i < 1 || i > len(asks) {
			return errors.New("refill lanes: row of no ask")
		}
		out[i-1] = append(out[i-1], j)
		return nil
	})
	if err != nil {
		return make([][]job, len(asks)), fmt.Errorf("refill lanes: %w", err)
	}
	return out, nil
}

// applyRefillLocked queues what a refill read after the lane's tail. A read
// that found fewer than it asked for saw every pending delivery committed
// before it, and the fan-out parked those committed after it started: the
// lane is complete again.
func (d *Deliverer) applyRefillLocked(r *run, a refill, rows []job, ok bool, now time.Time) {
	l := a.l
	parked, lost := l.parked, l.parkedLost
	l.refilling, l.parked, l.parkedLost = false, nil, false
	if !ok || d.lanes[a.p] != l || l.drops != a.drops || l.stop || r.ctx.Err() != nil {
		d.forgetIdleLocked(a.p, l)
		return
	}
	for _, j := range rows {
		if j.version > l.tail && !d.inflight[j.key] {
			d.takeLocked(l, j)
			d.m.refilled.Inc()
		}
	}
	if len(rows) < a.limit && !l.complete {
		complete := !lost
		for _, j := range parked {
			if j.version <= l.tail || d.inflight[j.key] {
				continue
			}
			if len(l.queue) >= maxLaneQueue {
				complete = false
				break
			}
			d.takeLocked(l, j)
		}
		l.complete = complete
	}
	if !l.running && !l.waiting {
		d.runLocked(r, a.p, l, now)
	}
	d.forgetIdleLocked(a.p, l)
}
