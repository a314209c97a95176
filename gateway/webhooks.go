package gateway

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/domain/validate"
)

// Deliverer is the webhook deliverer as the admin API shows it.
type Deliverer interface {
	Stats() webhooks.Stats
	// LagP99 is the delivery lag's p99 over about the last minute.
	LagP99() (time.Duration, bool)
}

type webhookAPI struct {
	endpoints    *webhooks.Endpoints
	deliverer    Deliverer
	allowPrivate bool
}

// webhookAccount is the account of a caller that may manage webhooks: an
// account key (agents may not).
func (s *Server) webhookAccount(r *http.Request) (string, error) {
	p := principalFrom(r.Context())
	if isAgent(p) {
		return "", errForbidden
	}
	if s.hooks.endpoints == nil {
		return "", errorf(codeUnavailable, "webhooks are not configured on this node")
	}
	return p.AccountID, nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	account, err := s.webhookAccount(r)
	if err != nil {
		return err
	}
	var in struct {
		URL         string    `json:"url"`
		Events      *[]string `json:"events"`
		Description string    `json:"description"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := webhooks.ValidateURL(r.Context(), in.URL, s.hooks.allowPrivate); err != nil {
		if errors.Is(err, webhooks.ErrForbiddenDestination) {
			return errorf(codeInvalid, "url: webhook destinations on loopback, private and link-local addresses are refused")
		}
		return errorf(codeInvalid, "%s", err.Error())
	}
	events := slices.Clone(webhooks.Types)
	if in.Events != nil {
		if len(*in.Events) == 0 {
			return errorf(codeInvalid, "events must name at least one type (or be left out for all)")
		}
		events = nil
		for _, t := range *in.Events {
			if !webhooks.ValidType(t) {
				return errorf(codeInvalid, "events: unknown type %q (want message.created, message.updated, call.updated, conversation.updated)", t)
			}
			if !slices.Contains(events, t) {
				events = append(events, t)
			}
		}
	}
	if err := checked(validate.Text("description", in.Description, 1000)); err != nil {
		return err
	}
	hook, secret, err := s.hooks.endpoints.Create(r.Context(), account, in.URL, events, in.Description)
	if errors.Is(err, webhooks.ErrNoSecretKey) {
		return errorf(codeUnavailable, "webhooks need SWITCHBOARD_SECRET_KEY on the server")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"webhook": hook, "secret": secret})
	return nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	account, err := s.webhookAccount(r)
	if err != nil {
		return err
	}
	hooks, err := s.hooks.endpoints.List(r.Context(), account)
	if err != nil {
		return err
	}
	if hooks == nil {
		hooks = []webhooks.Webhook{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": hooks})
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	account, err := s.webhookAccount(r)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	err = s.hooks.endpoints.Delete(r.Context(), account, r.PathValue("id"))
	if errors.Is(err, webhooks.ErrNotFound) {
		return notFound("webhook")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	account, err := s.webhookAccount(r)
	if err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	if status != "" && status != "pending" && status != "failed" {
		return errorf(codeInvalid, "status must be pending or failed")
	}
	limit, err := intParam(r.URL.Query().Get("limit"), 100, 1, 1000, "limit")
	if err != nil {
		return err
	}
	page, err := s.hooks.endpoints.Deliveries(r.Context(), account, r.PathValue("id"), status, limit, r.URL.Query().Get("cursor"))
	switch {
	case errors.Is(err, webhooks.ErrNotFound):
		return notFound("webhook")
	case errors.Is(err, webhooks.ErrBadCursor):
		return errorf(codeInvalid, "cursor is not one this listing gave")
	case err != nil:
		return err
	}
	if page.Deliveries == nil {
		page.Deliveries = []webhooks.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": page.Deliveries, "next_cursor": cursorOrNull(page.NextCursor)})
	return nil
}

// cursorOrNull is a listing's next_cursor as the API carries it: null on
// the last page.
func cursorOrNull(cursor string) any {
	if cursor == "" {
		return nil
	}
	return cursor
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	account, err := s.webhookAccount(r)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	err = s.hooks.endpoints.Retry(r.Context(), account, r.PathValue("id"), r.PathValue("event_id"))
	switch {
	case errors.Is(err, webhooks.ErrNotFound):
		return notFound("delivery")
	case errors.Is(err, webhooks.ErrDelivered):
		return errorf(codeConflict, "this delivery already succeeded")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "pending"})
	return nil
}

// webhookStats adds the deliverer's figures to /v1/admin/stats.
func (s *Server) webhookStats(out map[string]any) {
	out["webhook_pending"], out["webhook_lag_p99_ms"], out["webhook_active"] = nil, nil, false
	if s.hooks.deliverer == nil {
		return
	}
	st := s.hooks.deliverer.Stats()
	out["webhook_pending"], out["webhook_active"] = st.Pending, st.Active
	out["webhook_delivered_total"], out["webhook_failed_attempts_total"] = st.Delivered, st.Failed
	out["webhook_open_circuits"], out["webhook_last_error"] = st.OpenCircs, st.LastError
	if d, ok := s.hooks.deliverer.LagP99(); ok {
		out["webhook_lag_p99_ms"] = float64(d) / float64(time.Millisecond)
	}
}
