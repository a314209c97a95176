package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/persistence"
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
	h := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(token)
	}
	return ""
}

// authenticated resolves the API key or agent token (header, or
// ?access_token= for websockets, which browsers cannot give headers).
func (s *Server) authenticated(next func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		secret := bearer(r)
		if secret == "" {
			secret = r.URL.Query().Get("access_token")
		}
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
		return next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
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
