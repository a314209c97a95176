package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/gateway/ratelimit"
	"github.com/switchboard-dev/switchboard/internal/metrics"
)

// Limits are the per-credential limits of docs/api.md "Limits and bad input".
// Rates are per second per credential, 0 = none; every limit is per node.
type Limits struct {
	// AgentRate limits each agent token's requests (bursts of twice the
	// rate) and, separately, its websocket frames (bursts of one second's
	// worth: "20 frames/s" is at most 20 at once).
	AgentRate float64
	// KeyRate limits each account API key's requests (bursts of one second).
	KeyRate float64
	// WSPerCredential is the most websockets one credential holds open on a
	// node; the next upgrade gets 429. Default 20.
	WSPerCredential int
}

// limiters hold the token buckets of every credential kind; the kinds are
// apart so that, for instance, an agent's websocket frames do not use up its
// REST budget.
type limiters struct {
	agent, key, frames *ratelimit.Limiter
	// refused counts what the limits turned away, by kind (agent, key, frame).
	refused *prometheus.CounterVec
}

func newLimiters(l Limits, reg prometheus.Registerer) *limiters {
	ls := &limiters{
		agent:  ratelimit.New(l.AgentRate, int(2*l.AgentRate), 0),
		key:    ratelimit.New(l.KeyRate, int(l.KeyRate), 0),
		frames: ratelimit.New(l.AgentRate, int(l.AgentRate), 0),
		refused: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "rate_limited_total",
			Help: "Requests (agent, key) and websocket frames (frame) refused by a per-credential rate limit.",
		}, []string{"kind"})),
	}
	return ls
}

// allowRequest takes one request from p's bucket; over the limit it sets
// Retry-After and returns the 429.
func (s *Server) allowRequest(w http.ResponseWriter, p principal) error {
	lim, kind := s.limits.key, "key"
	if isAgent(p) {
		lim, kind = s.limits.agent, "agent"
	}
	if ok, wait := lim.Allow(p.CredentialID); !ok {
		s.limits.refused.WithLabelValues(kind).Inc()
		secs := ratelimit.RetryAfterSeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return errorf(codeRateLimited, "this credential is over its rate limit; retry in %d s", secs)
	}
	return nil
}

// allowFrame takes one websocket frame from an agent's frame bucket; account
// keys are limited per request only.
func (s *Server) allowFrame(ctx context.Context) error {
	p := principalFrom(ctx)
	if !isAgent(p) {
		return nil
	}
	if ok, wait := s.limits.frames.Allow(p.CredentialID); !ok {
		s.limits.refused.WithLabelValues("frame").Inc()
		return errorf(codeRateLimited, "over %g frames/s; frame dropped, retry in %d s", s.cfg.Limits.AgentRate, ratelimit.RetryAfterSeconds(wait))
	}
	return nil
}

// Timeouts bound how long a client may take to send a request (docs/api.md "Slow
// clients"). Zero values take the defaults.
type Timeouts struct {
	// Header: the request line and headers. Default 10s.
	Header time.Duration
	// Body: the body, counted from the end of the headers. Default 30s.
	Body time.Duration
	// Idle: a keep-alive connection waiting for its next request. Default 120s.
	Idle time.Duration
	// Work: the server's own work on a request, counted from the end of
	// its body (from the headers for a request without one); past it the
	// request's context ends and it answers 503 unavailable. It bounds
	// what a database or cluster that stopped answering costs a client,
	// who would otherwise wait as long as they do. Websockets have none.
	// Default 30s.
	Work time.Duration
}

// WithDefaults fills the zero values.
func (t Timeouts) WithDefaults() Timeouts {
	if t.Header <= 0 {
		t.Header = 10 * time.Second
	}
	if t.Body <= 0 {
		t.Body = 30 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 120 * time.Second
	}
	if t.Work <= 0 {
		t.Work = 30 * time.Second
	}
	return t
}

// Deadlines wraps the node's handler with t's Body and Work deadlines.
//
// A body must arrive within t.Body of the headers. http.Server.ReadTimeout
// cannot say that (it counts from the first byte, headers included), and
// it would also cut every handler that runs longer (net/http cancels a
// request whose connection's read deadline passes). So the deadline is set
// only while a body is being read, and cleared once it is whole; requests
// without a body get none. A websocket upgrade has none (one with a body
// is refused), so its connection, which outlives the request, never
// carries the deadline; a Connection: Upgrade header alone does not lift
// it.
//
// The request's context ends t.Work after its body is whole (after the
// headers without a body; t.Body + t.Work after them while the body is not
// yet read), except for a websocket upgrade, whose session lives on that
// context.
func Deadlines(h http.Handler, t Timeouts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerHasToken(r.Header, "Upgrade", "websocket") && r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		if r.ContentLength == 0 {
			work := time.AfterFunc(t.Work, func() { cancel(errWorkTimeout) })
			defer work.Stop()
			h.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		// What runs before the body is read (the credential's lookup) is
		// bounded by the body's time and the work's together.
		work := time.AfterFunc(t.Body+t.Work, func() { cancel(errWorkTimeout) })
		defer work.Stop()
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(t.Body))
		r = r.WithContext(ctx)
		r.Body = &deadlineBody{ReadCloser: r.Body, whole: func() {
			_ = rc.SetReadDeadline(time.Time{})
			work.Reset(t.Work)
		}}
		h.ServeHTTP(w, r)
	})
}

// errWorkTimeout ends a request's context after Timeouts.Work.
var errWorkTimeout = errors.New("gateway: the request's work outlasted its deadline")

// deadlineBody calls whole once its body has been read to the end.
type deadlineBody struct {
	io.ReadCloser
	whole func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.whole)
	}
	return n, err
}
