// Package gateway is Switchboard's HTTP face: the REST API and websocket
// sessions of API.md, authentication of its three credentials, the admin
// API, health, metrics and the embedded web pages.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/persistence"
)

// Config of the gateway.
type Config struct {
	AdminToken string
	// AllowedOrigins for websocket upgrades (host patterns); empty allows
	// same-origin only.
	AllowedOrigins []string
	// WS tunes websocket sessions; zero values take the defaults.
	WS WSConfig
}

// Server serves the API. Create it with New and mount Handler().
type Server struct {
	cfg      Config
	store    *persistence.Store
	engine   *actors.Engine
	node     *cluster.Node
	actorsM  *actors.Metrics
	log      *slog.Logger
	gatherer prometheus.Gatherer
	metrics  *httpMetrics
	started  time.Time

	// Which account and inbox a thing belongs to never changes, so the
	// answers are cached rather than read per request.
	inboxes sync.Map // inbox id → persistence.Inbox
	convs   sync.Map // conversation id → convRef
	ingest  *rateMeter

	indexer       Indexer
	searcher      Searcher
	commits       CommitLatency
	wsConnections atomic.Int64
	ws            *wsHub
}

type convRef struct{ accountID, inboxID string }

// Deps are the parts the gateway fronts.
type Deps struct {
	Store        *persistence.Store
	Engine       *actors.Engine
	Node         *cluster.Node
	ActorMetrics *actors.Metrics
	Registry     *prometheus.Registry
	Log          *slog.Logger
	// Indexer is nil on a node that does not index.
	Indexer Indexer
	// Search answers GET /v1/search.
	Search Searcher
	// Commits is the node's persistence actor, for the admin page's commit p99.
	Commits CommitLatency
}

// New builds a gateway.
func New(cfg Config, d Deps) *Server {
	s := &Server{cfg: cfg, store: d.Store, engine: d.Engine, node: d.Node, actorsM: d.ActorMetrics, log: d.Log,
		gatherer: d.Registry, started: time.Now(), ingest: newRateMeter(), indexer: d.Indexer, searcher: d.Search,
		commits: d.Commits}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.metrics = newHTTPMetrics(d.Registry)
	s.ws = newWSHub(cfg.WS)
	return s
}

// Handler routes every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.metrics.instrument(pattern, h)) }

	route("GET /healthz", s.healthz)
	route("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))

	route("POST /v1/admin/accounts", s.admin(s.createAccount))
	route("GET /v1/admin/cluster", s.admin(s.clusterInfo))
	route("GET /v1/admin/stats", s.admin(s.stats))
	mux.Handle("/debug/pprof/", s.profiles())
	route("POST /v1/admin/indexer/pause", s.admin(s.setIndexerPaused(true)))
	route("POST /v1/admin/indexer/resume", s.admin(s.setIndexerPaused(false)))

	route("POST /v1/inboxes", s.authenticated(s.createInbox))
	route("GET /v1/inboxes", s.authenticated(s.listInboxes))
	route("POST /v1/agents", s.authenticated(s.createAgent))
	route("POST /v1/inboxes/{inbox_id}/messages", s.authenticated(s.inboundMessage))
	route("POST /v1/inboxes/{inbox_id}/calls", s.authenticated(s.callEvent))
	route("GET /v1/inboxes/{inbox_id}/conversations", s.authenticated(s.listConversations))
	route("GET /v1/inboxes/{inbox_id}/counts", s.authenticated(s.counts))
	route("POST /v1/conversations/{id}/messages", s.authenticated(s.reply))
	route("PATCH /v1/conversations/{id}", s.authenticated(s.updateConversation))
	route("GET /v1/conversations/{id}", s.authenticated(s.getConversation))
	route("GET /v1/conversations/{id}/messages", s.authenticated(s.listMessages))
	route("GET /v1/search", s.authenticated(s.searchMessages))
	route("GET /v1/ws", s.authenticated(s.websocket))

	route("GET /{$}", s.page("console.html"))
	route("GET /admin/{$}", s.page("admin.html"))
	mux.Handle("GET /assets/", s.assets())

	route("/v1/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(codeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "cluster": "ok"}
	ready := true
	if err := s.store.Ping(ctx); err != nil {
		checks["database"], ready = err.Error(), false
	}
	if s.node == nil || !s.node.IsMember() {
		checks["cluster"], ready = "not joined", false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
}

// httpMetrics are request latency histograms by route.
type httpMetrics struct {
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "REST request latency by route and status.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"route", "code"})}
	if reg != nil {
		reg.MustRegister(m.duration)
	}
	return m
}

func (m *httpMetrics) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		m.duration.WithLabelValues(route, strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (and websocket hijacking) reach the
// underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// rateMeter counts events per second over a sliding window of seconds.
type rateMeter struct {
	mu      sync.Mutex
	buckets [10]int64
	second  int64
}

func newRateMeter() *rateMeter { return &rateMeter{} }

func (m *rateMeter) add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(time.Now().Unix())
	m.buckets[m.second%int64(len(m.buckets))] += n
}

func (m *rateMeter) advance(now int64) {
	if now-m.second >= int64(len(m.buckets)) {
		clear(m.buckets[:])
		m.second = now
		return
	}
	for m.second < now {
		m.second++
		m.buckets[m.second%int64(len(m.buckets))] = 0
	}
}

// perSecond is the average rate over the last complete seconds.
func (m *rateMeter) perSecond() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().Unix()
	m.advance(now)
	var sum int64
	n := int64(len(m.buckets)) - 1
	for i := int64(1); i <= n; i++ {
		sum += m.buckets[(now-i)%int64(len(m.buckets))]
	}
	return float64(sum) / float64(n)
}
