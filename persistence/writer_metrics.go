package persistence

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricsNamespace prefixes every metric of the node, so they cannot collide
// with another program's in a shared Prometheus.
const metricsNamespace = "switchboard"

// commitBuckets are the upper bounds of commit durations, for the
// Prometheus histogram and the writer's own windowed p99 alike.
var commitBuckets = prometheus.ExponentialBuckets(0.0001, 2, 16)

type writerMetrics struct {
	batch     prometheus.Histogram
	duration  prometheus.Histogram
	pending   prometheus.Gauge
	results   *prometheus.CounterVec
	retries   prometheus.Counter
	snapshots *prometheus.CounterVec
}

func newWriterMetrics(reg prometheus.Registerer) writerMetrics {
	return writerMetrics{
		batch: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "commit_batch_size",
			Help:      "Appends per group-commit transaction.",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 12),
		})),
		duration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "commit_duration_seconds",
			Help:      "Duration of one group-commit batch, from send to COMMIT (with its splits, if any).",
			Buckets:   commitBuckets,
		})),
		pending: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "commit_pending",
			Help:      "Appends accepted by the writer and not yet answered.",
		})),
		results: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "appends_total",
			Help:      "Appends answered by the writer, by result (ok, fenced, duplicate, invalid, error, canceled).",
		}, []string{"result"})),
		retries: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "commit_retries_total",
			Help:      "Batches re-run whole after a conflict a re-run resolves (a key committed by another node, a deadlock).",
		})),
		snapshots: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "snapshots_total",
			Help:      "Conversation snapshots handed to the writer, by result (ok, failed).",
		}, []string{"result"})),
	}
}

// register registers c on reg, or returns the collector already registered
// under the same description (a second writer in one process shares it).
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

// windowQuantile estimates quantiles of durations over a sliding window: a
// ring of slots, each a histogram of the samples that fell in its slice of
// time. A quantile is read as the upper bound of the bucket it falls in, as
// Prometheus's histogram_quantile would at its coarsest.
type windowQuantile struct {
	bounds []float64 // seconds, ascending; a last implicit bucket is +Inf
	slot   time.Duration

	mu    sync.Mutex
	slots []windowSlot
}

type windowSlot struct {
	start  int64 // slot number (unix nanoseconds / slot)
	counts []uint64
}

func newWindowQuantile(bounds []float64, window time.Duration, slots int) *windowQuantile {
	q := &windowQuantile{bounds: bounds, slot: window / time.Duration(slots), slots: make([]windowSlot, slots)}
	for i := range q.slots {
		q.slots[i] = windowSlot{start: -1, counts: make([]uint64, len(bounds)+1)}
	}
	return q
}

func (q *windowQuantile) observe(d time.Duration, now time.Time) {
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

// quantile returns the quantile over the slots of the window ending now, or
// false when there were no samples. Beyond the last bound it is +Inf.
func (q *windowQuantile) quantile(quantile float64, now time.Time) (time.Duration, bool) {
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
