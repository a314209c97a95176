// Package gateway is Switchboard's HTTP face: the public REST API and
// websocket sessions, authentication of its three credentials, the admin
// API, health, metrics and the embedded web pages.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/gateway/apidoc"
	"github.com/switchboard-dev/switchboard/internal/metrics"
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
	// Limits are the per-credential rate limits (limits.go).
	Limits Limits
	// CacheSize bounds each lookup cache (inboxes, conversations) in
	// entries; zero takes DefaultCacheSize.
	CacheSize int
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
	// sessionProps configure the websocket sessions' actors.
	sessionProps []actor.PropsOption
	started      time.Time

	refs   *refCache
	ingest *rateMeter

	indexer       Indexer
	searcher      Searcher
	commits       CommitLatency
	wsConnections atomic.Int64
	draining      atomic.Bool // Drain was called
	ws            *wsHub
	routes        []string // the patterns Handler serves, for Routes

	hooks   *webhookAPI
	limits  *limiters
	wsCreds *wsCredentials
}

// target names the conversation id (of this ref) for a command by agent
// ("" for an integration).
func (r convRef) target(id, agent string) actors.Target {
	return actors.Target{ConversationID: id, AccountID: r.accountID, InboxID: r.inboxID, ActorID: agent}
}

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
	// Webhooks stores webhook endpoints; Deliverer reports delivery state.
	Webhooks            *webhooks.Endpoints
	Deliverer           Deliverer
	WebhookAllowPrivate bool
	// Commits is the node's persistence actor, for the admin page's commit p99.
	Commits CommitLatency
	// Dispatcher runs the websocket sessions' mailboxes (internal/workers);
	// nil is protoactor's default.
	Dispatcher actor.Dispatcher
}

// New builds a gateway.
func New(cfg Config, d Deps) *Server {
	s := &Server{cfg: cfg, store: d.Store, engine: d.Engine, node: d.Node, actorsM: d.ActorMetrics, log: d.Log,
		gatherer: d.Registry, started: time.Now(), refs: newRefCache(cfg.CacheSize), ingest: newRateMeter(), indexer: d.Indexer, searcher: d.Search,
		commits: d.Commits}
	if d.Dispatcher != nil {
		s.sessionProps = append(s.sessionProps, actor.WithDispatcher(d.Dispatcher))
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.hooks = &webhookAPI{endpoints: d.Webhooks, deliverer: d.Deliverer, allowPrivate: d.WebhookAllowPrivate}
	s.metrics = newHTTPMetrics(d.Registry)
	s.ws = newWSHub(cfg.WS)
	s.limits = newLimiters(cfg.Limits, d.Registry)
	s.wsCreds = newWSCredentials(cfg.Limits.WSPerCredential)
	metrics.Register(d.Registry, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "ws_connections", Help: "Open websocket connections on this node.",
	}, func() float64 { return float64(s.wsConnections.Load()) }))
	return s
}

// Handler routes every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes = s.routes[:0]
	route := func(pattern string, h http.HandlerFunc) {
		s.routes = append(s.routes, pattern)
		mux.Handle(pattern, s.metrics.instrument(pattern, h))
	}

	route("GET /healthz", s.healthz)
	route("GET /v1/openapi.json", s.openAPI)
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
	route("GET /v1/inboxes/{inbox_id}", s.authenticated(s.getInbox))
	route("PATCH /v1/inboxes/{inbox_id}", s.authenticated(s.patchInbox))
	route("PATCH /v1/agents/{agent_id}", s.authenticated(s.patchAgent))
	route("POST /v1/inboxes/{inbox_id}/messages", s.authenticated(s.inboundMessage))
	route("POST /v1/inboxes/{inbox_id}/calls", s.authenticated(s.callEvent))
	route("GET /v1/inboxes/{inbox_id}/conversations", s.authenticated(s.listConversations))
	route("GET /v1/inboxes/{inbox_id}/counts", s.authenticated(s.counts))
	route("POST /v1/conversations/{id}/messages", s.authenticated(s.reply))
	route("PATCH /v1/conversations/{id}", s.authenticated(s.updateConversation))
	route("GET /v1/conversations/{id}", s.authenticated(s.getConversation))
	route("GET /v1/conversations/{id}/messages", s.authenticated(s.listMessages))
	route("GET /v1/search", s.authenticated(s.searchMessages))
	route("POST /v1/conversations/{id}/messages/{message_id}/status", s.authenticated(s.messageStatus))
	route("POST /v1/webhooks", s.authenticated(s.createWebhook))
	route("GET /v1/webhooks", s.authenticated(s.listWebhooks))
	route("DELETE /v1/webhooks/{id}", s.authenticated(s.deleteWebhook))
	route("GET /v1/webhooks/{id}/deliveries", s.authenticated(s.listDeliveries))
	route("POST /v1/webhooks/{id}/deliveries/{event_id}/retry", s.authenticated(s.retryDelivery))
	route("GET /v1/agents", s.authenticated(s.listAgents))
	route("GET /v1/me", s.authenticated(s.me))
	route("GET /v1/inboxes/{inbox_id}/agents", s.authenticated(s.inboxAgents))
	route("DELETE /v1/agents/{agent_id}", s.authenticated(s.deleteAgent))
	route("POST /v1/agents/{agent_id}/tokens", s.authenticated(s.createAgentToken))
	route("DELETE /v1/agents/{agent_id}/tokens", s.authenticated(s.revokeAgentTokens))
	route("POST /v1/api-keys", s.authenticated(s.createAPIKey))
	route("GET /v1/api-keys", s.authenticated(s.listAPIKeys))
	route("DELETE /v1/api-keys/{id}", s.authenticated(s.deleteAPIKey))
	route("GET /v1/ws", s.wsAuthenticated(s.websocket))

	route("GET /{$}", s.page("console.html"))
	route("GET /admin/{$}", s.page("admin.html"))
	mux.Handle("GET /assets/", s.assets())

	noSuchEndpoint := func(w http.ResponseWriter, r *http.Request) error {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return errorf(codeMethodNotAllowed, "%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
		}
		return errorf(codeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}
	// Under /v1/admin/ only the admin token learns that a path is not an
	// endpoint; every other caller gets the 401 the admin API gives it.
	route("/v1/admin/", s.admin(noSuchEndpoint))
	route("/v1/", s.handle(noSuchEndpoint))
	// Everything else, a wrong method on a page included: the API's error
	// shape rather than the mux's plain text.
	route("/", s.handle(noSuchEndpoint))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() && !headerHasToken(r.Header, "Upgrade", "websocket") {
			// net/http closes the connection after this answer.
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})
}

// Drain begins a graceful stop: from now on every answer closes its
// keep-alive connection (Connection: close) and /readyz answers 503
// "draining", so that clients and load balancers move to other nodes
// while this one still answers. Without it, the stop closed idle
// keep-alive connections under clients that were just sending a request
// on them, which they saw reset with no way to tell whether it was taken.
func (s *Server) Drain() { s.draining.Store(true) }

// catchAll are the patterns that answer for paths no endpoint serves.
var catchAll = []string{"/", "/v1/", "/v1/admin/"}

// allowedMethods lists the methods an endpoint serves at r's path, for the
// 405 of a method it does not: the mux would answer 405 itself, but the
// catch-all patterns (which give every miss the API's error shape) match
// any method first.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := mux.Handler(&probe); pattern != "" && !slices.Contains(catchAll, pattern) {
			allow = append(allow, m)
		}
	}
	return allow
}

// Routes lists the patterns ("METHOD /path/{param}") that Handler serves,
// so that a test can hold the OpenAPI document to them.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := apidoc.JSON()
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(doc)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// Which check failed is public; why is not (a database error names
	// hosts, users and settings), so the reason goes to the log.
	failed := ""
	if s.draining.Load() {
		failed = "draining"
	} else if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		failed = "database"
	} else if s.node == nil || !s.node.IsMember() {
		failed = "cluster"
	}
	if failed != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed, "ready": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "ready": true})
}

// httpMetrics are request latency histograms and requests in flight, by
// route.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	return &httpMetrics{
		duration: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "http_request_duration_seconds", Help: "REST request latency by route and status.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"route", "code"})),
		inFlight: metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Name: "http_requests_in_flight", Help: "REST requests being handled, by route (a slow client's body included).",
		}, []string{"route"})),
	}
}

func (m *httpMetrics) instrument(route string, h http.Handler) http.Handler {
	inFlight := m.inFlight.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		inFlight.Inc()
		defer inFlight.Dec()
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
