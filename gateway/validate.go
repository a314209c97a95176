package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/validate"
	"github.com/switchboard-dev/switchboard/wire"
)

// The rules themselves live in domain/validate and the conversation
// commands' Validate methods; the gateway only decodes and maps.

type contactIn struct {
	Phone  string `json:"phone"`
	Email  string `json:"email"`
	Handle string `json:"handle"`
	Name   string `json:"name"`
}

// domain returns the contact, or nil when the request named none.
func (c *contactIn) domain() conversation.Contact {
	if c == nil {
		return conversation.Contact{}
	}
	return conversation.Contact{Phone: c.Phone, Email: c.Email, Handle: c.Handle, Name: c.Name}
}

var errNoContact = errorf(codeInvalid, "contact is required")

// checked maps a domain validation error onto invalid_argument, with the
// rule's own words (they name the field, never another request's data).
func checked(err error) error {
	var ve *validate.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return errorf(codeInvalid, "%s", ve.Error())
	case errors.Is(err, validate.ErrInvalid):
		return errorf(codeInvalid, "%s", err.Error())
	}
	return err
}

// checkAssignee refuses an assignee that is not an agent of the inbox (an
// agent of another account included). The gateway checks it rather than the
// conversation actor, which has no business reading the agents table; a
// membership removed between this check and the commit is a race the API
// cannot see from a sequential one.
func (s *Server) checkAssignee(ctx context.Context, inboxID string, assignee *string) error {
	if assignee == nil || *assignee == "" {
		return nil
	}
	ok, err := s.store.IsInboxAgent(ctx, inboxID, *assignee)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(codeInvalid, "assignee_id is not an agent of this conversation's inbox")
	}
	return nil
}

// cleanQuery applies the rule every string obeys to a request's query
// parameters, so that a control character in a filter or a search is
// refused here rather than passed on to an actor or the search backend.
func cleanQuery(r *http.Request) error { return wire.CleanQuery(r.URL.Query()) }
