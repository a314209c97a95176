package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/domain/validate"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/wire"
)

type principalKey struct{}

// principal is who is calling: an account (API key) or one of its agents.
type principal = persistence.Principal

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

func isAgent(p principal) bool { return p.AgentID != "" }

// canSeeInbox reports whether p may act in inbox (of accountID).
func canSeeInbox(p principal, accountID, inboxID string) bool {
	if p.AccountID != accountID {
		return false
	}
	return !isAgent(p) || slices.Contains(p.InboxIDs, inboxID)
}

func bearer(r *http.Request) string {
	// The scheme is case-insensitive (RFC 9110, section 11.1).
	h := r.Header.Get("Authorization")
	if len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return strings.TrimSpace(h[len("Bearer "):])
	}
	return ""
}

// authenticated resolves the API key or agent token of the Authorization
// header and takes one request from the credential's rate limit. A token in
// the query string is refused outright: URLs end up in logs and histories,
// so only the websocket, which browsers cannot give headers, accepts one.
func (s *Server) authenticated(next func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Has("access_token") {
			return errorf(codeUnauthorized, "access_token is accepted on GET /v1/ws only; send Authorization: Bearer")
		}
		return s.authorize(w, r, bearer(r), next)
	})
}

// wsAuthenticated is authenticated for GET /v1/ws: the header, or else
// ?access_token= with an agent token (never an API key, which is not meant
// to sit in a browser).
func (s *Server) wsAuthenticated(next func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		r = r.WithContext(s.wsCreds.noteGeneration(r.Context()))
		if secret := bearer(r); secret != "" {
			return s.authorize(w, r, secret, next)
		}
		secret := r.URL.Query().Get("access_token")
		if secret != "" && !persistence.IsAgentToken(secret) {
			return errorf(codeUnauthorized, "access_token takes an agent token only")
		}
		return s.authorize(w, r, secret, next)
	})
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, secret string, next func(http.ResponseWriter, *http.Request) error) error {
	if secret == "" {
		return errUnauthorized
	}
	p, err := s.store.Authenticate(r.Context(), secret)
	if errors.Is(err, persistence.ErrUnauthorized) {
		return errUnauthorized
	}
	if err != nil {
		return errorf(codeUnavailable, "authentication unavailable")
	}
	if err := s.allowRequest(w, p); err != nil {
		return err
	}
	// The path's ids are strings the client sent: the rule every string
	// obeys holds for them too (a control character is invalid_argument,
	// not an id that names nothing).
	if err := checked(validate.Text("path", r.URL.Path, wire.MaxPath)); err != nil {
		return err
	}
	return next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

// admin accepts the admin token only.
func (s *Server) admin(next func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		token := bearer(r)
		if s.cfg.AdminToken == "" || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) != 1 {
			return errUnauthorized
		}
		return next(w, r)
	})
}

// handle adapts an error-returning handler.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			if withheld(err) {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeErr(w, err)
		}
	}
}
