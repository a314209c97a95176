package gateway

import (
	"math"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard/consumers/indexer"
)

// Indexer is the search indexer as operators drive it.
type Indexer interface {
	Pause()
	Resume()
	Stats() indexer.Stats
}

// setIndexerPaused pauses or resumes indexing: operators stall it for
// search-backend maintenance, and nothing but search lag notices.
func (s *Server) setIndexerPaused(paused bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.indexer == nil {
			return errorf(codeUnavailable, "no indexer runs on this node")
		}
		if paused {
			s.indexer.Pause()
		} else {
			s.indexer.Resume()
		}
		s.log.Info("indexer changed by operator", "paused", paused)
		writeJSON(w, http.StatusOK, map[string]any{"paused": paused})
		return nil
	}
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{
		"ingest_per_s":         s.ingest.perSecond(),
		"commit_p99_ms":        s.commitP99.quantileMs(0.99),
		"active_conversations": s.actorsM.ActiveConversations(),
		"active_inboxes":       s.actorsM.ActiveInboxes(),
		"ws_connections":       s.wsConnections.Load(),
		"uptime_s":             int64(time.Since(s.started).Seconds()),
		"index_lag_ms":         nil,
		"index_backlog":        nil,
		"indexer_paused":       false,
	}
	if s.indexer != nil {
		st := s.indexer.Stats()
		out["index_lag_ms"], out["index_backlog"], out["indexer_paused"] = st.LagMs, st.Backlog, st.Paused
		out["indexed_total"], out["index_last_error"] = st.Indexed, st.LastError
	}
	s.webhookStats(out)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// windowQuantile estimates a quantile of a Prometheus histogram over the
// last minute or so, from the difference between two gathers: a lifetime
// p99 would hide a recent problem behind hours of good history.
type windowQuantile struct {
	gatherer prometheus.Gatherer
	name     string

	mu   sync.Mutex
	prev []snapshotAt
}

type snapshotAt struct {
	at      time.Time
	buckets []*dto.Bucket
	count   uint64
}

func newWindowQuantile(g prometheus.Gatherer, name string) *windowQuantile {
	return &windowQuantile{gatherer: g, name: name}
}

func (q *windowQuantile) read() (snapshotAt, bool) {
	families, err := q.gatherer.Gather()
	if err != nil {
		return snapshotAt{}, false
	}
	for _, f := range families {
		if f.GetName() != q.name || len(f.GetMetric()) == 0 {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		return snapshotAt{at: time.Now(), buckets: h.GetBucket(), count: h.GetSampleCount()}, true
	}
	return snapshotAt{}, false
}

// quantileMs returns the quantile in milliseconds over the window (the
// bucket's upper bound), or nil when there were no samples.
func (q *windowQuantile) quantileMs(quantile float64) any {
	if q.gatherer == nil {
		return nil
	}
	cur, ok := q.read()
	if !ok {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	base := snapshotAt{}
	// Keep snapshots for a minute; measure against the oldest one.
	for len(q.prev) > 0 && time.Since(q.prev[0].at) > time.Minute {
		q.prev = q.prev[1:]
	}
	if len(q.prev) > 0 {
		base = q.prev[0]
	}
	if len(q.prev) == 0 || time.Since(q.prev[len(q.prev)-1].at) > 5*time.Second {
		q.prev = append(q.prev, cur)
	}
	total := cur.count - base.count
	if total == 0 {
		return nil
	}
	want := uint64(math.Ceil(quantile * float64(total)))
	for i, b := range cur.buckets {
		n := b.GetCumulativeCount()
		if i < len(base.buckets) {
			n -= base.buckets[i].GetCumulativeCount()
		}
		if n >= want {
			return b.GetUpperBound() * 1000
		}
	}
	return math.Inf(1)
}

// profiles serves net/http/pprof behind the admin token: operators profile
// a live node without restarting it.
func (s *Server) profiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s.admin(func(w http.ResponseWriter, r *http.Request) error {
		mux.ServeHTTP(w, r)
		return nil
	})
}
