package webhooks

import (
	"errors"
	"time"
)

// pair names a (webhook, conversation) queue.
type pair struct{ webhook, conversation string }

// lane is a queue the leader works on in memory: its attempts run one
// after another on one goroutine, and when a delivery succeeds the next one
// known in memory is sent at once, before the outcome is recorded.
//
// A lane is complete when its queue holds every pending delivery after the
// ones it has sent: then the fan-out appends what it writes for the queue
// (in version order). A lane started by the fan-out from a queue that had
// nothing pending is complete. Any other lane (a head promoted by a
// recording or found by the dispatcher, or a lane whose queue overflowed)
// may have pending rows it does not know of: it refills its queue from the
// database, many deliveries in one read shared with other lanes' refills,
// before it runs dry, and a read that finds less than it asked for makes
// the lane complete again. Without that, such a queue went back to one
// recording per delivery and never caught up under load.
//
// A lane lives until its last outcome is recorded: until then the database
// still shows its deliveries pending and the fan-out cannot start another.
// A lane with deliveries but no worker or endpoint slot waits in
// Deliverer.waiting for one.
type lane struct {
	queue      []job
	tail       int64     // the highest version the lane has taken (sent, in flight or queued)
	running    bool      // a goroutine is attempting its deliveries
	slow       bool      // running, and its attempt gave up its slot (Config.SlowAfter)
	attempts   int       // attempts started, to tell a slow timer's attempt from later ones
	detached   bool      // started by a detached delivery (Endpoints.Retry): it never refills
	waiting    bool      // in Deliverer.waiting
	waitingAt  time.Time // since when
	waited     bool      // its first queued delivery's webhook was read before the wait
	unrecorded int       // outcomes handed to the recorder, not yet committed
	complete   bool
	stop       bool // an attempt failed: nothing more is sent from memory
	// drops counts the times queued deliveries were given back to the
	// database: a refill read before that starts after a stale tail.
	drops      int
	refilling  bool  // a refill read is out
	parked     []job // the fan-out's deliveries of the queue that came during it
	parkedLost bool  // some of those did not fit
}

// maxLaneQueue bounds the deliveries a lane holds in memory; beyond it the
// database holds them (and the lane is no longer complete).
const maxLaneQueue = 256

// refillLow: an incomplete lane asks for more when it holds this few, so
// that the read overlaps its attempts instead of stalling them.
const refillLow = 64

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
	if !d.circuit(j.webhook).allows(now, d.cfg.CircuitThreshold, held(j)) {
		return
	}
	// A detached delivery's lane sends it alone: what follows it in its
	// queue is no lane's business until the queue's own head is attempted.
	l := &lane{complete: complete && !j.detached, detached: j.detached, queue: []job{j}, tail: j.version}
	d.lanes[p] = l
	d.inflight[j.key] = true
	d.runLocked(r, p, l, now)
	if d.lanes[p] == l && j.attempts == 0 {
		// The successors are read while the head is attempted (unless
		// it is a retry, likely to fail again).
		d.refillLocked(r, p, l)
	}
}

// runLocked starts l's goroutine on its first queued delivery if a slot is
// free and the circuit allows, else queues the lane for a slot.
func (d *Deliverer) runLocked(r *run, p pair, l *lane, now time.Time) {
	if len(l.queue) == 0 {
		return
	}
	if !d.slotFreeLocked(p.webhook) {
		d.waitLocked(p, l)
		return
	}
	c, held := d.circuit(p.webhook), held(l.queue[0])
	if !c.allows(now, d.cfg.CircuitThreshold, held) {
		d.stopLocked(p, l) // its head stays due for the dispatcher
		return
	}
	if c.probes(d.cfg.CircuitThreshold, held) {
		c.probing = true // half-open: this attempt decides
	}
	d.running++
	d.perHook[p.webhook]++
	l.running, l.waiting = true, false
	j := l.queue[0]
	l.queue = l.queue[1:]
	if l.waited {
		// Its webhook was read before the wait: read it again.
		j.url, j.sealed, l.waited = "", nil, false
	}
	r.attempts.Go(func() { d.work(r, p, l, j) })
}

// waitLocked queues l for a slot.
func (d *Deliverer) waitLocked(p pair, l *lane) {
	if !l.waiting {
		l.waiting, l.waited, l.waitingAt = true, true, time.Now()
		d.waiting[p.webhook] = append(d.waiting[p.webhook], p)
	}
}

// slotFreeLocked reports whether a lane of hook may start an attempt now:
// below Config.Workers and the endpoint's cap, or, for an endpoint with
// nothing running, in one of Config.Workers more slots kept for such
// endpoints. Without those, an account whose receivers answer slowly held
// every worker, and all of them came free together once per answer time
// (the attempts had started together): another account's receiver waited
// for that wave, 0.3–0.9 s, for each of its deliveries.
func (d *Deliverer) slotFreeLocked(hook string) bool {
	n := d.perHook[hook]
	if n >= d.cfg.MaxPerEndpoint {
		return false
	}
	return d.running < d.cfg.Workers || n == 0 && d.running < 2*d.cfg.Workers
}

// startWaitingLocked gives free slots to the lanes waiting for one: each
// to the oldest waiting lane of the fairest endpoint.
func (d *Deliverer) startWaitingLocked(r *run) {
	now := time.Now()
	for {
		hook := d.fairestWaitingLocked()
		if hook == "" || !d.slotFreeLocked(hook) {
			return
		}
		p := d.waiting[hook][0]
		d.waiting[hook] = d.waiting[hook][1:]
		d.lanes[p].waiting = false
		d.runLocked(r, p, d.lanes[p], now)
	}
}

// fairestWaitingLocked is the endpoint a free slot goes to: of those with a
// lane waiting and below their cap, the one with the fewest attempts
// running, and of those the one whose lane has waited longest. Serving endpoints in the order their lanes began
// to wait let one account's slow receivers, whose lanes keep their slots
// from one delivery to the next, queue every other endpoint's lanes behind
// theirs for as long as their backlog lasted: a healthy receiver of
// another account waited tens of seconds. It drops the entries at the
// front of each queue whose lane no longer waits.
func (d *Deliverer) fairestWaitingLocked() string {
	best, fewest, since := "", 0, time.Time{}
	for hook, ps := range d.waiting {
		for len(ps) > 0 {
			if l := d.lanes[ps[0]]; l != nil && l.waiting {
				break
			}
			ps = ps[1:]
		}
		if len(ps) == 0 {
			delete(d.waiting, hook)
			continue
		}
		d.waiting[hook] = ps
		n := d.perHook[hook]
		if n >= d.cfg.MaxPerEndpoint {
			continue
		}
		at := d.lanes[ps[0]].waitingAt
		if best == "" || n < fewest || n == fewest && at.Before(since) {
			best, fewest, since = hook, n, at
		}
	}
	return best
}

// yieldLocked tells a lane of p's endpoint that has just finished an
// attempt, while every worker is busy, to give its slot to a waiting lane
// of another endpoint instead of sending its next delivery: to one that
// has nothing running, or two fewer attempts than p's. (A margin of one
// would have lanes of two endpoints at equal shares trade slots after
// every attempt.)
func (d *Deliverer) yieldLocked(p pair) bool {
	if d.running < d.cfg.Workers {
		return false
	}
	hook := d.fairestWaitingLocked()
	if hook == "" || hook == p.webhook {
		return false
	}
	n := d.perHook[hook]
	return n == 0 || n+1 < d.perHook[p.webhook]
}

// parkLocked appends a delivery the fan-out wrote behind a queue's head to
// the queue's complete lane, starting the lane again if it had run dry. An
// incomplete lane leaves it to the database, except while a refill read is
// out: that read may have started before the delivery committed, so it is
// kept until the read's answer.
func (d *Deliverer) parkLocked(r *run, j job, now time.Time) {
	p := pair{j.webhook, j.conversationID}
	l := d.lanes[p]
	if l == nil || l.stop || j.url == "" || j.version <= l.tail || d.inflight[j.key] || r.ctx.Err() != nil {
		return
	}
	if !l.complete {
		if l.refilling {
			if len(l.parked) < maxLaneQueue {
				l.parked = append(l.parked, j)
			} else {
				l.parkedLost = true
			}
		}
		return
	}
	if len(l.queue) >= maxLaneQueue {
		// It stays pending in the database, where the lane's refills
		// find it once the queue has room.
		l.complete = false
		return
	}
	d.takeLocked(l, j)
	if !l.running && !l.waiting {
		d.runLocked(r, p, l, now)
	}
}

// takeLocked queues j on l.
func (d *Deliverer) takeLocked(l *lane, j job) {
	d.inflight[j.key] = true
	l.queue = append(l.queue, j)
	l.tail = j.version
}

// work attempts a lane's deliveries in order: the next one only after its
// predecessor succeeded, each after reading its webhook (unless it was read
// right before the lane started), so that a deleted webhook gets no
// further attempt.
func (d *Deliverer) work(r *run, p pair, l *lane, j job) {
	for {
		if j.url == "" {
			if err := d.check(r, &j); err != nil {
				if r.ctx.Err() == nil && !errors.Is(err, errWebhookGone) {
					d.log.Warn("webhooks: reading a webhook failed", "err", err)
				}
				// Nothing to record: the delivery stays pending (or went
				// with its webhook); the dispatcher finds it once promoted.
				d.mu.Lock()
				l.queue = append([]job{j}, l.queue...) // given back with the rest
				l.stop = true
				d.stopLocked(p, l)
				d.startWaitingLocked(r)
				d.mu.Unlock()
				return
			}
		}
		d.mu.Lock()
		l.attempts++
		n := l.attempts
		d.mu.Unlock()
		slow := time.AfterFunc(d.cfg.SlowAfter, func() { d.slowDown(r, p, l, n) })
		o := d.attempt(r.ctx, j)
		slow.Stop()
		d.mu.Lock()
		l.unrecorded++
		r.outbox = append(r.outbox, o)
		next, more := d.nextLocked(r, p, l, o)
		switch {
		case more && l.slow && !d.speedUpLocked(p, l):
			// No slot for the next attempt: the lane waits for one.
			l.queue = append([]job{next}, l.queue...)
			d.releaseLocked(p, l)
			d.waitLocked(p, l)
			more = false
		case more && !l.slow && d.yieldLocked(p):
			l.queue = append([]job{next}, l.queue...)
			d.releaseLocked(p, l)
			d.waitLocked(p, l)
			d.startWaitingLocked(r)
			more = false
		}
		d.mu.Unlock()
		signal(r.recordWake)
		if !more {
			return
		}
		j = next
		j.url, j.sealed = "", nil // read again right before its attempt
	}
}

// slowDown moves a lane whose attempt n is still waiting for its answer
// out of its worker and endpoint slot into a slow one, if one is free, and
// gives the freed slot to a waiting lane.
func (d *Deliverer) slowDown(r *run, p pair, l *lane, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !l.running || l.slow || l.attempts != n || r.ctx.Err() != nil ||
		d.slow >= d.cfg.MaxSlow || d.slowPerHook[p.webhook] >= d.cfg.MaxSlowPerEndpoint {
		return
	}
	d.freeSlotLocked(p.webhook)
	l.slow = true
	d.slow++
	d.slowPerHook[p.webhook]++
	d.m.slowAttempts.Inc()
	d.startWaitingLocked(r)
	if d.backlog {
		d.poke()
	}
}

// speedUpLocked moves a slow lane back into a worker and endpoint slot for
// its next attempt, if one is free.
func (d *Deliverer) speedUpLocked(p pair, l *lane) bool {
	if !d.slotFreeLocked(p.webhook) {
		return false
	}
	d.releaseLocked(p, l)
	l.running = true
	d.running++
	d.perHook[p.webhook]++
	return true
}

// releaseLocked frees the slot a running lane holds, slow or not.
func (d *Deliverer) releaseLocked(p pair, l *lane) {
	if !l.running {
		return
	}
	l.running = false
	if !l.slow {
		d.freeSlotLocked(p.webhook)
		return
	}
	l.slow = false
	d.slow--
	if d.slowPerHook[p.webhook]--; d.slowPerHook[p.webhook] <= 0 {
		delete(d.slowPerHook, p.webhook)
	}
}

func (d *Deliverer) freeSlotLocked(hook string) {
	d.running--
	if d.perHook[hook]--; d.perHook[hook] <= 0 {
		delete(d.perHook, hook)
	}
}

// nextLocked decides after an attempt: the lane's next delivery if this
// one succeeded and the endpoint's circuit is closed, else the lane stops.
// An incomplete lane running low asks for a refill.
func (d *Deliverer) nextLocked(r *run, p pair, l *lane, o outcome) (job, bool) {
	if o.status != "delivered" {
		l.stop = true
	}
	if !l.stop && r.ctx.Err() == nil && d.circuit(p.webhook).failures < d.cfg.CircuitThreshold {
		if len(l.queue) <= refillLow {
			d.refillLocked(r, p, l)
		}
		if len(l.queue) > 0 {
			next := l.queue[0]
			l.queue = l.queue[1:]
			return next, true
		}
	}
	d.stopLocked(p, l)
	d.startWaitingLocked(r)
	return job{}, false
}

// stopLocked ends a lane's goroutine (or its wait) and frees its slot (the
// caller then starts a waiting lane). Deliveries it still held stay
// pending in the database, where recordings promote them.
func (d *Deliverer) stopLocked(p pair, l *lane) {
	if len(l.queue) > 0 {
		for _, q := range l.queue {
			delete(d.inflight, q.key)
		}
		l.complete = false
		l.tail = l.queue[0].version - 1
		l.drops++
	}
	l.queue, l.waiting = nil, false
	d.releaseLocked(p, l)
	d.forgetIdleLocked(p, l)
}

// forgetIdleLocked removes a lane that has nothing left to do.
func (d *Deliverer) forgetIdleLocked(p pair, l *lane) {
	if d.lanes[p] == l && l.unrecorded <= 0 && !l.running && !l.waiting && !l.refilling && len(l.queue) == 0 {
		delete(d.lanes, p)
	}
}

// signal wakes a loop waiting on c (capacity 1) without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
