package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/consumers/journal"
)

// Lag and backlog measurement, and the indexer's Prometheus metrics.

// statsLoop measures lag and backlog from the persisted cursor, on every
// node, so that any node's admin page shows the cluster's indexing state.
func (ix *Indexer) statsLoop(ctx context.Context) {
	t := time.NewTicker(ix.cfg.StatsInterval)
	defer t.Stop()
	for {
		if err := ix.measure(ctx); err != nil && ctx.Err() == nil {
			ix.log.Debug("search indexer could not measure lag", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (ix *Indexer) measure(ctx context.Context) error {
	cur, err := journal.LoadCursor(ctx, ix.pool, ix.cfg.CursorName)
	if err != nil {
		return fmt.Errorf("indexer: measure: %w", err)
	}
	lag, backlog, err := journal.Backlog(ctx, ix.pool, cur, ix.cfg.BacklogLimit)
	if err != nil {
		return fmt.Errorf("indexer: measure: %w", err)
	}
	ix.mu.Lock()
	ix.lagMs, ix.backlog = lag.Milliseconds(), backlog
	ix.mu.Unlock()
	ix.m.lag.Set(lag.Seconds())
	ix.m.backlog.Set(float64(backlog))
	ix.measurements.Add(1)
	return nil
}

type metrics struct {
	lag     prometheus.Gauge
	backlog prometheus.Gauge
	indexed prometheus.Counter
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "switchboard",
			Name:      "index_lag_seconds",
			Help:      "Age of the oldest committed journal entry not yet indexed for search; 0 when caught up.",
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "switchboard",
			Name:      "index_backlog",
			Help:      "Committed journal entries not yet indexed for search.",
		}),
		indexed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "switchboard",
			Name:      "indexed_documents_total",
			Help:      "Documents this node got accepted by the search backend.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchboard",
			Name:      "index_errors_total",
			Help:      "Indexing failures: backend (a failed attempt, retried), poison (a document skipped), database (a lost session).",
		}, []string{"kind"}),
	}
	for _, k := range []string{"backend", "poison", "database"} {
		m.errors.WithLabelValues(k)
	}
	if reg == nil {
		return m
	}
	m.lag = register(reg, m.lag)
	m.backlog = register(reg, m.backlog)
	m.indexed = register(reg, m.indexed)
	m.errors = register(reg, m.errors)
	return m
}

// register registers c, or returns the collector already registered under
// the same description (a second Indexer in one process shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("indexer: register metrics: %v", err))
	}
	return c
}
