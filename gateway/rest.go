package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/switchboard-dev/switchboard/actors"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/validate"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/wire"
)

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := checked(validate.Name("name", in.Name)); err != nil {
		return err
	}
	acc, key, err := s.store.CreateAccount(r.Context(), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"account": map[string]string{"id": acc.ID, "name": acc.Name}, "api_key": key, "api_key_id": acc.APIKeyID})
	return nil
}

func (s *Server) createInbox(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if isAgent(p) {
		return errForbidden
	}
	var in struct {
		Name        string `json:"name"`
		PhoneNumber string `json:"phone_number"`
	}
	if err := decode(w, r, &in, "phone_number"); err != nil {
		return err
	}
	if err := checked(validate.Name("name", in.Name)); err != nil {
		return err
	}
	if in.PhoneNumber != "" {
		if err := checked(validate.Phone("phone_number", in.PhoneNumber)); err != nil {
			return err
		}
	}
	ib, err := s.store.CreateInbox(r.Context(), p.AccountID, in.Name, in.PhoneNumber)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inboxJSON(ib))
	return nil
}

func inboxJSON(ib persistence.Inbox) map[string]any {
	var phone any
	if ib.PhoneNumber != "" {
		phone = ib.PhoneNumber
	}
	return map[string]any{"id": ib.ID, "name": ib.Name, "phone_number": phone}
}

func (s *Server) listInboxes(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	all, err := s.store.ListInboxes(r.Context(), p.AccountID)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, ib := range all {
		if canSeeInbox(p, ib.AccountID, ib.ID) {
			out = append(out, inboxJSON(ib))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"inboxes": out})
	return nil
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	if isAgent(p) {
		return errForbidden
	}
	var in struct {
		Name     string   `json:"name"`
		Email    string   `json:"email"`
		InboxIDs []string `json:"inbox_ids"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := checked(validate.Name("name", in.Name)); err != nil {
		return err
	}
	if err := checked(validate.Email("email", in.Email)); err != nil {
		return err
	}
	if in.InboxIDs == nil {
		in.InboxIDs = []string{}
	}
	for i, id := range in.InboxIDs {
		if err := checked(validate.ID(fmt.Sprintf("inbox_ids[%d]", i), id)); err != nil {
			return err
		}
	}
	agent, token, err := s.store.CreateAgent(r.Context(), p.AccountID, in.Name, in.Email, in.InboxIDs)
	if errors.Is(err, persistence.ErrNotFound) {
		return errorf(codeInvalid, "inbox_ids names an inbox that does not exist in this account")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"agent": map[string]any{
		"id": agent.ID, "name": agent.Name, "email": agent.Email, "inbox_ids": agent.InboxIDs, "status": agent.Status}, "token": token})
	return nil
}

// inbox returns the inbox named in the path if the caller may use it;
// otherwise not_found, whether or not it exists elsewhere.
func (s *Server) inbox(r *http.Request, id string) (persistence.Inbox, error) {
	return s.inboxFor(r.Context(), id)
}

// inboxFor is inbox for a context carrying the principal (REST or websocket).
func (s *Server) inboxFor(ctx context.Context, id string) (persistence.Inbox, error) {
	p := principalFrom(ctx)
	if validate.ID("inbox_id", id) != nil {
		return persistence.Inbox{}, notFound("inbox") // no such id was ever issued
	}
	ib, ok := s.refs.inboxes.Get(id)
	if !ok {
		var err error
		ib, err = s.store.GetInbox(ctx, id)
		if errors.Is(err, persistence.ErrNotFound) {
			return ib, notFound("inbox")
		}
		if err != nil {
			return ib, err
		}
		s.refs.inboxes.Add(id, ib)
	}
	if !canSeeInbox(p, ib.AccountID, ib.ID) {
		return ib, notFound("inbox")
	}
	return ib, nil
}

// conversationRef returns the account and inbox of a conversation the
// caller may use.
func (s *Server) conversationRef(r *http.Request, id string) (convRef, error) {
	return s.conversationRefFor(r.Context(), id)
}

// conversationRefFor is conversationRef for a context carrying the principal.
func (s *Server) conversationRefFor(ctx context.Context, id string) (convRef, error) {
	p := principalFrom(ctx)
	if validate.ID("conversation_id", id) != nil {
		return convRef{}, notFound("conversation") // no such id was ever issued
	}
	ref, ok := s.refs.convs.Get(id)
	if !ok {
		acc, ib, err := s.store.ConversationRef(ctx, id)
		if errors.Is(err, persistence.ErrNotFound) {
			return ref, notFound("conversation")
		}
		if err != nil {
			return ref, err
		}
		ref = convRef{accountID: acc, inboxID: ib}
		s.refs.convs.Add(id, ref)
	}
	if !canSeeInbox(p, ref.accountID, ref.inboxID) {
		return ref, notFound("conversation")
	}
	return ref, nil
}

// inboundIn is POST /v1/inboxes/{inbox_id}/messages.
type inboundIn struct {
	Contact    *contactIn `json:"contact"`
	Body       string     `json:"body"`
	Channel    string     `json:"channel"`
	ExternalID string     `json:"external_id"`
}

func (in *inboundIn) validate() error {
	if in.Contact == nil {
		return errNoContact
	}
	return checked((&conversation.InboundCommand{Contact: in.Contact.domain(), Body: in.Body,
		Channel: conversation.Channel(in.Channel), ExternalID: in.ExternalID}).Validate())
}

// callIn is POST /v1/inboxes/{inbox_id}/calls.
type callIn struct {
	Contact      *contactIn `json:"contact"`
	CallID       string     `json:"call_id"`
	State        string     `json:"state"`
	DurationS    *int64     `json:"duration_s"`
	RecordingURL string     `json:"recording_url"`
}

func (in *callIn) validate() error {
	if in.Contact == nil {
		return errNoContact
	}
	var dur int64
	if in.DurationS != nil {
		dur = *in.DurationS
	}
	return checked((&conversation.CallCommand{Contact: in.Contact.domain(), CallID: in.CallID,
		State: conversation.CallState(in.State), DurationS: dur, RecordingURL: in.RecordingURL}).Validate())
}

func (s *Server) inboundMessage(w http.ResponseWriter, r *http.Request) error {
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	var in inboundIn
	if err := decodeInbound(w, r, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	p := principalFrom(r.Context())
	convID := conversation.ID(ib.ID, contactKey(in.Contact))
	res, err := s.engine.Inbound(r.Context(), actors.Target{ConversationID: convID, AccountID: ib.AccountID, InboxID: ib.ID, ActorID: p.AgentID},
		conversation.InboundCommand{Contact: in.Contact.domain(), Body: in.Body, Channel: conversation.Channel(in.Channel), ExternalID: in.ExternalID})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	} else {
		s.ingest.add(1)
	}
	// Cache the conversation that answered: a duplicate external_id from
	// another contact answers with the original's, and convID was never
	// created (caching it would let GET .../messages answer 200 for it).
	answered := convID
	if res.Duplicate { // only then may the answer be another contact's conversation
		answered = conversationIDOf(res.Summary, convID)
	}
	s.refs.convs.Add(answered, convRef{accountID: ib.AccountID, inboxID: ib.ID})
	writeMembers(w, status, member{"conversation_id", jsonString(answered)}, member{"message", res.Item},
		member{"conversation", res.Summary})
	return nil
}

// conversationIDOf reads the id from a summary: a duplicate external_id may
// answer with another contact's conversation.
func conversationIDOf(summary json.RawMessage, fallback string) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(summary, &v) == nil && v.ID != "" {
		return v.ID
	}
	return fallback
}

func contactKey(c *contactIn) string {
	return conversation.ContactKey(conversation.Contact{Phone: c.Phone, Email: c.Email, Handle: c.Handle})
}

func (s *Server) callEvent(w http.ResponseWriter, r *http.Request) error {
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	var in callIn
	if err := decode(w, r, &in, "recording_url"); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	var dur int64
	if in.DurationS != nil {
		dur = *in.DurationS
	}
	p := principalFrom(r.Context())
	convID := conversation.ID(ib.ID, contactKey(in.Contact))
	res, err := s.engine.Call(r.Context(), actors.Target{ConversationID: convID, AccountID: ib.AccountID, InboxID: ib.ID, ActorID: p.AgentID},
		conversation.CallCommand{Contact: in.Contact.domain(), CallID: in.CallID, State: conversation.CallState(in.State), DurationS: dur, RecordingURL: in.RecordingURL})
	if err != nil {
		return err
	}
	s.refs.convs.Add(convID, convRef{accountID: ib.AccountID, inboxID: ib.ID})
	writeMembers(w, http.StatusOK, member{"conversation_id", jsonString(convID)}, member{"call", res.Item},
		member{"conversation", res.Summary})
	return nil
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ref, err := s.conversationRef(r, id)
	if err != nil {
		return err
	}
	var in replyIn
	if err := decode(w, r, &in, "kind", "client_id"); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	res, err := s.sendReply(r.Context(), ref, id, in.Body, in.Kind, in.ClientID, in.IfVersion)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(res.Item, '\n'))
	return nil
}

// replyIn is a reply or note (REST body and websocket `send`).
type replyIn struct {
	Body      string `json:"body"`
	Kind      string `json:"kind"`
	ClientID  string `json:"client_id"`
	IfVersion *int64 `json:"if_version"`
}

func (in *replyIn) validate() error {
	return checked((&conversation.ReplyCommand{Body: in.Body, Kind: conversation.ItemKind(in.Kind), ClientID: in.ClientID}).Validate())
}

func (s *Server) sendReply(ctx context.Context, ref convRef, id, body, kind, clientID string, ifVersion *int64) (res replyResult, err error) {
	p := principalFrom(ctx)
	out, err := s.engine.Reply(ctx, ref.target(id, p.AgentID), conversation.ReplyCommand{Body: body, Kind: conversation.ItemKind(kind), ClientID: clientID, IfVersion: ifVersion})
	return replyResult{Item: out.Item, Summary: out.Summary, Duplicate: out.Duplicate}, err
}

type replyResult struct {
	Item, Summary json.RawMessage
	Duplicate     bool
}

// updateIn is PATCH /v1/conversations/{id}. assignee_id distinguishes
// absent (unchanged) from null (unassign).
type updateIn struct {
	Status     *string         `json:"status"`
	Addressed  *bool           `json:"addressed"`
	AssigneeID json.RawMessage `json:"assignee_id"`
	TagsAdd    []string        `json:"tags_add"`
	TagsRemove []string        `json:"tags_remove"`
	IfVersion  *int64          `json:"if_version"`
	// SnoozeUntil distinguishes absent from null (clear) like assignee_id.
	SnoozeUntil json.RawMessage `json:"snooze_until"`
}

// toCommand decodes the update and validates it with the domain's rules.
func (in *updateIn) toCommand() (conversation.UpdateCommand, error) {
	u := conversation.UpdateCommand{IfVersion: in.IfVersion}
	u.Addressed, u.TagsAdd, u.TagsRemove = in.Addressed, in.TagsAdd, in.TagsRemove
	if in.Status != nil {
		st := conversation.Status(*in.Status)
		u.Status = &st
	}
	if len(in.AssigneeID) > 0 {
		var a *string
		if err := json.Unmarshal(in.AssigneeID, &a); err != nil {
			return u, errorf(codeInvalid, "assignee_id must be a string or null")
		}
		empty := ""
		if a == nil {
			a = &empty
		} else if *a == "" {
			return u, errorf(codeInvalid, "assignee_id must be an agent id or null")
		}
		u.AssigneeID = a
	}
	until, clear, err := in.snooze()
	if err != nil {
		return u, err
	}
	if until != nil || clear {
		u.Snooze = &conversation.SnoozeRequest{Until: until}
	}
	if err := checked(u.Validate()); err != nil {
		return u, err
	}
	return u, nil
}

func (s *Server) updateConversation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ref, err := s.conversationRef(r, id)
	if err != nil {
		return err
	}
	var in updateIn
	if err := decode(w, r, &in); err != nil {
		return err
	}
	summary, err := s.update(r.Context(), ref, id, &in)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(summary, '\n'))
	return nil
}

func (s *Server) update(ctx context.Context, ref convRef, id string, in *updateIn) (json.RawMessage, error) {
	u, err := in.toCommand()
	if err != nil {
		return nil, err
	}
	if err := s.checkAssignee(ctx, ref.inboxID, u.AssigneeID); err != nil {
		return nil, err
	}
	p := principalFrom(ctx)
	res, err := s.engine.Update(ctx, ref.target(id, p.AgentID), u)
	return res.Summary, err
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ref, err := s.conversationRef(r, id)
	if err != nil {
		return err
	}
	res, err := s.engine.Get(r.Context(), ref.target(id, ""))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(res.Summary, '\n'))
	return nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	if err := cleanQuery(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.conversationRef(r, id); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 50, 1, 200, "limit")
	if err != nil {
		return err
	}
	before, err := intParam(q.Get("before"), 0, 1, 1<<62, "before")
	if err != nil {
		return err
	}
	items, next, err := s.store.ListItems(r.Context(), id, int64(before), limit)
	if err != nil {
		return err
	}
	if items == nil {
		items = []conversation.Item{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": items, "next_before": next})
	return nil
}

func intParam(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errorf(codeInvalid, "%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) error {
	if err := cleanQuery(r); err != nil {
		return err
	}
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	q, err := wire.ListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	page, err := s.engine.List(r.Context(), ib.AccountID, ib.ID, p.AgentID, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": page.Conversations, "next_cursor": cursorOrNull(page.NextCursor),
		"total": page.Total, "epoch": page.Epoch, "seq": page.Seq})
	return nil
}

func (s *Server) counts(w http.ResponseWriter, r *http.Request) error {
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	raw, epoch, seq, err := s.engine.Counts(r.Context(), ib.AccountID, ib.ID, p.AgentID)
	if err != nil {
		return err
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	out["epoch"], out["seq"] = epoch, seq
	writeJSON(w, http.StatusOK, out)
	return nil
}
