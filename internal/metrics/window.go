package metrics

import (
	"math"
	"sync"
	"time"
)

// Window estimates quantiles of durations over a sliding window: a
// ring of slots, each a histogram of the samples that fell in its slice of
// time. A quantile is read as the upper bound of the bucket it falls in, as
// Prometheus's histogram_quantile would at its coarsest.
//
// Components keep one beside their Prometheus histogram so that they can
// answer "p99 over the last minute" themselves (the admin stats), rather
// than have someone read their histogram back from the registry by name.
type Window struct {
	bounds []float64 // seconds, ascending; a last implicit bucket is +Inf
	slot   time.Duration

	mu    sync.Mutex
	slots []windowSlot
}

type windowSlot struct {
	start  int64 // slot number (unix nanoseconds / slot)
	counts []uint64
}

// NewWindow keeps slots histograms over window, with the given bucket bounds.
func NewWindow(bounds []float64, window time.Duration, slots int) *Window {
	q := &Window{bounds: bounds, slot: window / time.Duration(slots), slots: make([]windowSlot, slots)}
	for i := range q.slots {
		q.slots[i] = windowSlot{start: -1, counts: make([]uint64, len(bounds)+1)}
	}
	return q
}

func (q *Window) Observe(d time.Duration, now time.Time) {
	n := now.UnixNano() / int64(q.slot)
	b := len(q.bounds)
	for i, ub := range q.bounds {
		if d.Seconds() <= ub {
			b = i
			break
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := &q.slots[n%int64(len(q.slots))]
	if s.start != n {
		s.start = n
		clear(s.counts)
	}
	s.counts[b]++
}

// Quantile returns the quantile over the slots of the window ending now, or
// false when there were no samples. Beyond the last bound it is +Inf.
func (q *Window) Quantile(quantile float64, now time.Time) (time.Duration, bool) {
	n := now.UnixNano() / int64(q.slot)
	counts := make([]uint64, len(q.bounds)+1)
	var total uint64
	q.mu.Lock()
	for _, s := range q.slots {
		if s.start < 0 || n-s.start >= int64(len(q.slots)) {
			continue
		}
		for i, c := range s.counts {
			counts[i] += c
			total += c
		}
	}
	q.mu.Unlock()
	if total == 0 {
		return 0, false
	}
	want := uint64(math.Ceil(quantile * float64(total)))
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= want {
			if i == len(q.bounds) {
				return time.Duration(math.MaxInt64), true
			}
			return time.Duration(q.bounds[i] * float64(time.Second)), true
		}
	}
	return time.Duration(math.MaxInt64), true
}
