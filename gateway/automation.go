package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/validate"
	"github.com/switchboard-dev/switchboard/persistence"
)

// Automation endpoints: inbox settings (GET/PATCH /v1/inboxes/{id}) and
// agent availability (PATCH /v1/agents/{id}).

func inboxSettingsJSON(in persistence.Inbox, st persistence.InboxSettings) map[string]any {
	out := inboxJSON(in)
	out["auto_close_after_s"] = st.AutoCloseAfterS
	out["sla_first_response_s"] = st.SLAFirstResponseS
	out["auto_assign"] = st.AutoAssign
	return out
}

func (s *Server) getInbox(w http.ResponseWriter, r *http.Request) error {
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	// Read afresh: the cached inbox is for tenancy, which never changes;
	// the name and settings do.
	fresh, err := s.store.GetInbox(r.Context(), ib.ID)
	if err != nil {
		return err
	}
	st, err := s.store.GetInboxSettings(r.Context(), ib.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inboxSettingsJSON(fresh, st))
	return nil
}

// optionalSeconds is a duration field of the inbox PATCH: absent, null
// (off) or whole seconds ≥ 1, written as any JSON number of that value (an
// encoder may write 30 as 30.0 or 3e1).
type optionalSeconds struct {
	set   bool
	value *int64
	bad   bool // a number, but not whole seconds in range
}

func (o *optionalSeconds) UnmarshalJSON(b []byte) error {
	o.set = true
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) == 0 || b[0] == '"' {
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[int64]()}
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < 1 || f > maxAutomationSeconds {
		o.bad = true
		return nil
	}
	v := int64(f)
	o.value = &v
	return nil
}

func (s *Server) patchInbox(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	ib, err := s.inbox(r, r.PathValue("inbox_id"))
	if err != nil {
		return err
	}
	if isAgent(p) {
		return errForbidden
	}
	var in struct {
		Name              *string         `json:"name"`
		PhoneNumber       json.RawMessage `json:"phone_number"`
		AutoCloseAfterS   optionalSeconds `json:"auto_close_after_s"`
		SLAFirstResponseS optionalSeconds `json:"sla_first_response_s"`
		AutoAssign        json.RawMessage `json:"auto_assign"`
	}
	if err := decode(w, r, &in, "phone_number"); err != nil {
		return err
	}
	patch := persistence.InboxPatch{Name: in.Name}
	if in.Name != nil {
		if err := checked(validate.Name("name", *in.Name)); err != nil {
			return err
		}
	}
	if len(in.PhoneNumber) > 0 {
		// null removes the number, as it is optional at creation.
		var phone string
		if !bytes.Equal(in.PhoneNumber, []byte("null")) {
			if json.Unmarshal(in.PhoneNumber, &phone) != nil {
				return errorf(codeInvalid, "phone_number must be an E.164 number or null")
			}
			if err := checked(validate.Phone("phone_number", phone)); err != nil {
				return err
			}
		}
		patch.PhoneNumber = &phone
	}
	for _, f := range []struct {
		name  string
		v     optionalSeconds
		set   **int64
		clear *bool
	}{
		{"auto_close_after_s", in.AutoCloseAfterS, &patch.AutoCloseAfterS, &patch.ClearAutoClose},
		{"sla_first_response_s", in.SLAFirstResponseS, &patch.SLAFirstResponseS, &patch.ClearSLA},
	} {
		switch {
		case !f.v.set:
		case f.v.bad:
			return errorf(codeInvalid, "%s must be whole seconds from 1 to %d, or null", f.name, maxAutomationSeconds)
		case f.v.value == nil:
			*f.clear = true
		default:
			*f.set = f.v.value
		}
	}
	if len(in.AutoAssign) > 0 {
		// null is the default, none, as a null duration is off.
		policy := string(conversation.AutoAssignNone)
		if !bytes.Equal(in.AutoAssign, []byte("null")) {
			if json.Unmarshal(in.AutoAssign, &policy) != nil || !conversation.AutoAssign(policy).Valid() {
				return errorf(codeInvalid, "auto_assign must be none or round_robin")
			}
		}
		patch.AutoAssign = &policy
	}
	updated, st, err := s.engine.UpdateInbox(r.Context(), ib.AccountID, ib.ID, patch)
	if errors.Is(err, persistence.ErrNotFound) {
		return notFound("inbox")
	}
	if err != nil {
		return err
	}
	s.refs.inboxes.Add(ib.ID, updated)
	writeJSON(w, http.StatusOK, inboxSettingsJSON(updated, st))
	return nil
}

// maxAutomationSeconds caps the durations at ten years: beyond that a
// deadline overflows nothing but means nothing either.
const maxAutomationSeconds = 10 * 365 * 24 * 3600

func (s *Server) patchAgent(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	id := r.PathValue("agent_id")
	if isAgent(p) && p.AgentID != id {
		return s.refuseAgent(r.Context(), p, id)
	}
	var in struct {
		Status *string `json:"status"`
		Name   *string `json:"name"`
		Email  *string `json:"email"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	switch {
	case in.Status == nil && in.Name == nil && in.Email == nil:
		return errorf(codeInvalid, "status, name or email is required")
	case in.Status != nil && *in.Status != persistence.AgentAvailable && *in.Status != persistence.AgentAway:
		return errorf(codeInvalid, "status must be available or away")
	case isAgent(p) && (in.Name != nil || in.Email != nil):
		// An agent sets its availability; who it is, the account decides.
		return errForbidden
	}
	if in.Name != nil {
		if err := checked(validate.Name("name", *in.Name)); err != nil {
			return err
		}
	}
	if in.Email != nil {
		if err := checked(validate.Email("email", *in.Email)); err != nil {
			return err
		}
	}
	ag, err := s.store.UpdateAgent(r.Context(), p.AccountID, id, persistence.AgentPatch{Status: in.Status, Name: in.Name, Email: in.Email})
	if errors.Is(err, persistence.ErrNotFound) {
		return notFound("agent")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ag)
	return nil
}

// snoozeIn reads the snooze_until of a conversation PATCH or
// update_conversation frame into the update: a time sets it, null clears it.
func (in *updateIn) snooze() (until *time.Time, clear bool, err error) {
	if len(in.SnoozeUntil) == 0 {
		return nil, false, nil
	}
	if bytes.Equal(in.SnoozeUntil, []byte("null")) {
		return nil, true, nil
	}
	var raw string
	if err := json.Unmarshal(in.SnoozeUntil, &raw); err != nil {
		return nil, false, errorf(codeInvalid, "snooze_until must be an RFC 3339 time or null")
	}
	// RFC 3339 allows a lower-case "t" and "z" (section 5.6); Go's layout
	// does not, and nothing else in the format has a letter.
	var t time.Time
	if err := t.UnmarshalText([]byte(strings.ToUpper(raw))); err != nil {
		return nil, false, errorf(codeInvalid, "snooze_until must be an RFC 3339 time or null")
	}
	return &t, false, nil
}
