package loadtest

import (
	"context"
	"time"
)

// clock is what the pacer needs of time, so tests can drive it without
// waiting.
type clock interface {
	Now() time.Time
	// SleepUntil returns when t has come or ctx is done (then ctx.Err()).
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer schedules sends open loop: send i is due at start + i/rate whatever
// became of earlier sends. A closed loop (send, wait, send) quietly offers
// less load exactly when the server slows down and hides the slowness from
// the latency figures (coordinated omission); an open loop keeps offering
// the same load, and latencies are measured from the due time.
type pacer struct {
	start time.Time
	end   time.Time // sends due at or after end are not scheduled
	rate  float64   // sends per second
}

func (p pacer) due(i int64) time.Time {
	return p.start.Add(time.Duration(float64(i) * float64(time.Second) / p.rate))
}

// total is the number of sends due in [start, end).
func (p pacer) total() int64 {
	n := int64(p.end.Sub(p.start).Seconds() * p.rate)
	// Float rounding can put the boundary one send either way; settle it by
	// the same arithmetic due() uses.
	for n > 0 && !p.due(n-1).Before(p.end) {
		n--
	}
	for p.due(n).Before(p.end) {
		n++
	}
	return n
}

// run calls emit for every due send, in order, at (or, when behind, after)
// its due time. A blocked emit delays later calls but not their due times,
// so after a stall the pacer catches up in a burst. emit returns false to
// stop early (the window closed or the run was cancelled). run returns how
// many sends were emitted; the rest of total() were not sent.
func (p pacer) run(ctx context.Context, clk clock, emit func(i int64, due time.Time) bool) int64 {
	n := p.total()
	for i := int64(0); i < n; i++ {
		due := p.due(i)
		if err := clk.SleepUntil(ctx, due); err != nil {
			return i
		}
		if !emit(i, due) {
			return i
		}
	}
	return n
}
