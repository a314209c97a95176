package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard/search"
)

// Searcher answers full-text queries; the gateway never reads inbox lists
// from it.
type Searcher interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
}

// searchMessages is GET /v1/search: full text over every message, within
// the caller's inboxes only.
func (s *Server) searchMessages(w http.ResponseWriter, r *http.Request) error {
	if s.searcher == nil {
		return errorf(codeUnavailable, "search is not configured on this node")
	}
	if err := cleanQuery(r); err != nil {
		return err
	}
	q := r.URL.Query()
	text := strings.TrimSpace(q.Get("q"))
	if text == "" {
		return errorf(codeInvalid, "q is required")
	}
	if len(text) > 1024 {
		return errorf(codeInvalid, "q must be at most 1024 bytes")
	}
	limit, err := intParam(q.Get("limit"), search.DefaultLimit, 1, search.MaxLimit, "limit")
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	var inboxes []string
	if id := q.Get("inbox_id"); id != "" {
		ib, err := s.inbox(r, id)
		if err != nil {
			return err
		}
		inboxes = []string{ib.ID}
	} else if isAgent(p) {
		inboxes = p.InboxIDs
	} else {
		all, err := s.store.ListInboxes(r.Context(), p.AccountID)
		if err != nil {
			return err
		}
		for _, ib := range all {
			inboxes = append(inboxes, ib.ID)
		}
	}
	res, err := s.searcher.Search(r.Context(), search.Query{AccountID: p.AccountID, InboxIDs: inboxes, Text: text, Limit: limit})
	if err != nil {
		s.log.Warn("search backend failed", "err", err)
		return errorf(codeUnavailable, "search is temporarily unavailable; inbox lists are not affected")
	}
	if res.Hits == nil {
		res.Hits = []search.Hit{}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
