package gateway

import (
	"context"
	"github.com/switchboard-dev/switchboard/wire"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen"
)

// wsCredentials is the node's register of open websockets by credential: it
// caps how many one credential holds, and finds a revoked credential's
// connections to close them.
//
// A revocation can race with an upgrade whose credential it revokes (the
// upgrade authenticated before the commit, and registers after the
// notice). generation closes that gap: every notice bumps it, an upgrade
// notes it before authenticating, and a connection registered after a bump
// it did not see re-checks its credential.
type wsCredentials struct {
	max int

	mu         sync.Mutex
	count      map[string]int // credential id → slots reserved
	open       map[*wsConn]principal
	generation uint64
}

func newWSCredentials(max int) *wsCredentials {
	if max <= 0 {
		max = 20
	}
	return &wsCredentials{max: max, count: map[string]int{}, open: map[*wsConn]principal{}}
}

// wsSlot is one reserved place of a credential; release is idempotent.
type wsSlot struct {
	reg        *wsCredentials
	p          principal
	generation uint64
	wc         *wsConn
	once       sync.Once
	// revoked is set when the credential is found revoked: the connection
	// is closing, and no further frame of it is handled.
	revoked atomic.Bool
}

type wsGenerationKey struct{}

// noteGeneration marks ctx, before authentication, with the generation of
// revocations seen so far.
func (r *wsCredentials) noteGeneration(ctx context.Context) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return context.WithValue(ctx, wsGenerationKey{}, r.generation)
}

// reserve takes a slot for the caller of ctx, or answers 429.
func (r *wsCredentials) reserve(ctx context.Context) (*wsSlot, error) {
	p := principalFrom(ctx)
	gen, _ := ctx.Value(wsGenerationKey{}).(uint64)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count[p.CredentialID] >= r.max {
		return nil, errorf(codeRateLimited, "this credential already holds %d websockets on this node; close one first", r.max)
	}
	r.count[p.CredentialID]++
	return &wsSlot{reg: r, p: p, generation: gen}, nil
}

// attach registers the slot's connection. It reports whether a revocation
// was announced since the caller authenticated: the credential must then be
// checked again.
func (sl *wsSlot) attach(wc *wsConn) (recheck bool) {
	r := sl.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	sl.wc = wc
	r.open[wc] = sl.p
	return r.generation != sl.generation
}

func (sl *wsSlot) release() {
	if sl == nil {
		return
	}
	sl.once.Do(func() {
		r := sl.reg
		r.mu.Lock()
		defer r.mu.Unlock()
		if sl.wc != nil {
			delete(r.open, sl.wc)
		}
		if r.count[sl.p.CredentialID]--; r.count[sl.p.CredentialID] <= 0 {
			delete(r.count, sl.p.CredentialID)
		}
	})
}

// revoke bumps the generation and returns the open connections whose
// principal matches.
func (r *wsCredentials) revoke(match func(principal) bool) map[*wsConn]principal {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.generation++
	out := map[*wsConn]principal{}
	for wc, p := range r.open {
		if match(p) {
			out[wc] = p
		}
	}
	return out
}

// closeRevoked closes the websockets of what rv revoked. Every node calls it
// for every revocation (the revoking node at once, the others on the notice).
func (s *Server) closeRevoked(rv persistence.Revocation) {
	conns := s.wsCreds.revoke(func(p principal) bool {
		if p.AccountID != rv.AccountID {
			return false
		}
		return rv.AgentID != "" && p.AgentID == rv.AgentID || rv.CredentialID != "" && p.CredentialID == rv.CredentialID
	})
	for wc := range conns {
		wc.closeRevoked()
	}
}

// closeRevoked stops handling the connection's frames, ends its session
// (its presence goes at once) and closes it with 1008 through the close
// handshake, so that the client reads why.
func (wc *wsConn) closeRevoked() {
	wc.slot.revoked.Store(true)
	go wc.closeWithHandshake(websocket.StatusPolicyViolation, "credentials revoked")
}

// admitFrame says whether to handle a client frame: not once the
// credential is revoked, and not over an agent's frame rate (the client
// gets a rate_limited error frame; the connection stays).
func (wc *wsConn) admitFrame(raw []byte) bool {
	if wc.slot != nil && wc.slot.revoked.Load() {
		return false
	}
	if err := wc.s.allowFrame(wc.ctx); err != nil {
		wc.sendError(wire.RefOf(raw), err)
		return false
	}
	return true
}

// recheckWebsockets closes every open websocket (or only one) whose
// credential is gone: the repair for notices that may have been missed.
func (s *Server) recheckWebsockets(ctx context.Context, only *wsConn) {
	conns := s.wsCreds.revoke(func(principal) bool { return only == nil })
	if only != nil {
		s.wsCreds.mu.Lock()
		if p, ok := s.wsCreds.open[only]; ok {
			conns[only] = p
		}
		s.wsCreds.mu.Unlock()
	}
	live := map[string]bool{}
	for wc, p := range conns {
		ok, seen := live[p.CredentialID]
		if !seen {
			var err error
			if ok, err = s.store.CredentialLive(ctx, p.CredentialID); err != nil {
				s.log.Warn("websocket credential check failed", "err", err)
				return
			}
			live[p.CredentialID] = ok
		}
		if !ok {
			wc.closeRevoked()
		}
	}
}

// FollowRevocations closes websockets of credentials revoked on any node,
// until ctx ends. The node runs it for its lifetime.
func (s *Server) FollowRevocations(ctx context.Context, hub *listen.Hub) {
	_ = s.store.FollowRevocations(ctx, hub, s.closeRevoked, func(ctx context.Context) { s.recheckWebsockets(ctx, nil) })
}
