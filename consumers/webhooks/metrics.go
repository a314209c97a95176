package webhooks

import (
	"context"
	"fmt"
	sbmetrics "github.com/switchboard-dev/switchboard/internal/metrics"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	results *prometheus.CounterVec
	lag     prometheus.Histogram
	// lagWindow answers the admin stats' p99 over the last minute.
	lagWindow *sbmetrics.Window
	duration  prometheus.Histogram
	pending   *prometheus.GaugeVec
	fannedOut prometheus.Counter
	// fanOuts: journal batches fanned out (one transaction each);
	// fanOutErrors: fan-outs that failed and were tried again.
	fanOuts, fanOutErrors prometheus.Counter
	// refills: reads of lanes' next deliveries; refilled: deliveries
	// those reads brought back into memory.
	refills, refilled prometheus.Counter
	// slowAttempts: attempts that outlasted Config.SlowAfter and gave
	// their slot to another lane.
	slowAttempts prometheus.Counter
	// purged: rows deleted by retention, by status; purgeBatch: the
	// duration of each purge statement.
	purged     *prometheus.CounterVec
	purgeBatch prometheus.Histogram
}

// lagBuckets bound delivery lags, for the histogram and the window alike.
var lagBuckets = prometheus.ExponentialBuckets(0.001, 2, 22)

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		lagWindow: sbmetrics.NewWindow(lagBuckets, time.Minute, 12),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "deliveries_total",
			Help: "Delivery attempts by result: delivered, retry (failed, will retry), failed (given up after the horizon).",
		}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "delivery_lag_seconds",
			Help:    "From an event's commit to its receiver's 2xx answer.",
			Buckets: lagBuckets,
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "attempt_duration_seconds",
			Help:    "Duration of successful delivery attempts (the receiver's answer time).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "pending",
			Help: "Deliveries waiting, per webhook endpoint.",
		}, []string{"webhook_id"}),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "fanned_out_total",
			Help: "Deliveries written from the journal by this node.",
		}),
		fanOuts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "fanout_rounds_total",
			Help: "Journal batches this node fanned out, each in one transaction (Config.Gather spaces them out).",
		}),
		fanOutErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "fanout_errors_total",
			Help: "Fan-out transactions that failed and were tried again.",
		}),
		refills: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "lane_refills_total",
			Help: "Reads of pending deliveries for lanes that had lost their complete in-memory view (one read serves many lanes).",
		}),
		refilled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "lane_refilled_total",
			Help: "Deliveries those reads brought back into lanes.",
		}),
		slowAttempts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "slow_attempts_total",
			Help: "Attempts still unanswered after the slow threshold, which gave their worker and endpoint slot to another conversation's deliveries.",
		}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "deliveries_purged_total",
			Help: "Delivery rows deleted after their retention, by status: delivered, failed; or because their webhook was deleted: orphaned.",
		}, []string{"status"}),
		purgeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: sbmetrics.Namespace, Subsystem: "webhook", Name: "purge_statement_seconds",
			Help:    "Duration of one retention statement (at most Config.PurgeBatch rows).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	for _, r := range []string{"delivered", "retry", "failed"} {
		m.results.WithLabelValues(r)
	}
	m.purged.WithLabelValues("delivered")
	m.purged.WithLabelValues("failed")
	m.purged.WithLabelValues("orphaned")
	if reg == nil {
		return m
	}
	m.results = sbmetrics.Register(reg, m.results)
	m.lag = sbmetrics.Register(reg, m.lag)
	m.duration = sbmetrics.Register(reg, m.duration)
	m.pending = sbmetrics.Register(reg, m.pending)
	m.fannedOut = sbmetrics.Register(reg, m.fannedOut)
	m.fanOuts = sbmetrics.Register(reg, m.fanOuts)
	m.fanOutErrors = sbmetrics.Register(reg, m.fanOutErrors)
	m.refills = sbmetrics.Register(reg, m.refills)
	m.refilled = sbmetrics.Register(reg, m.refilled)
	m.slowAttempts = sbmetrics.Register(reg, m.slowAttempts)
	m.purged = sbmetrics.Register(reg, m.purged)
	m.purgeBatch = sbmetrics.Register(reg, m.purgeBatch)
	return m
}

// statsLoop measures pending deliveries per endpoint on every node, so that
// any node's admin page shows the cluster's state.
func (d *Deliverer) statsLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.StatsInterval)
	defer t.Stop()
	for {
		if err := d.measure(ctx); err != nil && ctx.Err() == nil {
			d.log.Debug("webhooks: could not measure pending deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Deliverer) measure(ctx context.Context) error {
	rows, err := d.pool.Query(ctx, `SELECT d.webhook_id, count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.status = 'pending' GROUP BY d.webhook_id`)
	if err != nil {
		return fmt.Errorf("webhooks: measure: %w", err)
	}
	var hook string
	var n, total int64
	d.m.pending.Reset()
	_, err = pgx.ForEachRow(rows, []any{&hook, &n}, func() error {
		d.m.pending.WithLabelValues(hook).Set(float64(n))
		total += n
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhooks: measure: %w", err)
	}
	d.mu.Lock()
	d.pending = total
	d.mu.Unlock()
	return nil
}
