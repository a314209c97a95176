package persistence

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/internal/metrics"
)

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
	// wakeFailures counts committed batches whose NOTIFY failed: the
	// consumers then see them at their next poll instead.
	wakeFailures prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer) writerMetrics {
	return writerMetrics{
		batch: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace,
			Name:      "commit_batch_size",
			Help:      "Appends per group-commit transaction.",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 12),
		})),
		duration: metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace,
			Name:      "commit_duration_seconds",
			Help:      "Duration of one group-commit batch, from send to COMMIT (with its splits, if any).",
			Buckets:   commitBuckets,
		})),
		pending: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace,
			Name:      "commit_pending",
			Help:      "Appends accepted by the writer and not yet answered.",
		})),
		results: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "appends_total",
			Help:      "Appends answered by the writer, by result (ok, fenced, duplicate, invalid, error, canceled).",
		}, []string{"result"})),
		retries: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "commit_retries_total",
			Help:      "Batches re-run whole after a conflict a re-run resolves (a key committed by another node, a deadlock).",
		})),
		snapshots: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "snapshots_total",
			Help:      "Conversation snapshots handed to the writer, by result (ok, failed).",
		}, []string{"result"})),
		wakeFailures: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "commit_wakeup_failures_total",
			Help:      "Committed batches whose NOTIFY to the journal's consumers failed (they see the batch at their next poll).",
		})),
	}
}
