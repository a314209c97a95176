package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/domain/validate"
)

// Client frame types (docs/api.md, client → server).
const (
	TypePing               = "ping"
	TypeSubscribe          = "subscribe"
	TypeUnsubscribe        = "unsubscribe"
	TypeWatch              = "watch"
	TypeUnwatch            = "unwatch"
	TypeTyping             = "typing"
	TypeSend               = "send"
	TypeUpdateConversation = "update_conversation"
)

// ClientFrame is a decoded client → server frame. Each type uses the fields
// docs/api.md gives it; DecodeClientFrame has checked that the ones it requires
// are there.
type ClientFrame struct {
	Type           string          `json:"type"`
	ID             json.RawMessage `json:"id"`
	InboxID        string          `json:"inbox_id"`
	ConversationID string          `json:"conversation_id"`
	// Filter is a subscribe's filter as sent; Query is what it says.
	Filter map[string]json.RawMessage `json:"filter"`
	Query  inbox.Query                `json:"-"`
	Resume *Resume                    `json:"resume"`
	// Summaries: a watch that also wants the summary after every event.
	Summaries bool `json:"summaries"`
	// send
	Body     string `json:"body"`
	Kind     string `json:"kind"`
	ClientID string `json:"client_id"`
	// update_conversation (IfVersion also on send)
	UpdateFields
}

// Resume is a subscribe's position to resume from.
type Resume struct {
	Epoch string `json:"epoch"`
	Seq   *int64 `json:"seq"`
}

// UpdateFields are update_conversation's fields, as PATCH
// /v1/conversations/{id} has them. AssigneeID is raw so that null (unassign)
// and absent (unchanged) differ.
type UpdateFields struct {
	Status     *string         `json:"status"`
	Addressed  *bool           `json:"addressed"`
	AssigneeID json.RawMessage `json:"assignee_id"`
	TagsAdd    []string        `json:"tags_add"`
	TagsRemove []string        `json:"tags_remove"`
	IfVersion  *int64          `json:"if_version"`
	// SnoozeUntil is raw like AssigneeID: null clears it.
	SnoozeUntil json.RawMessage `json:"snooze_until"`
}

// DecodeClientFrame decodes one client frame. On error it returns what it
// could read of the frame (its ID, to answer with as ref) and an
// invalid_argument Error: a bad frame gets an error frame, never a dropped
// connection.
func DecodeClientFrame(raw []byte) (ClientFrame, error) {
	var f ClientFrame
	// encoding/json would turn invalid UTF-8 into U+FFFD silently; the API
	// refuses it like any other bad string.
	if !utf8.Valid(raw) {
		return ClientFrame{ID: RefOf(raw)}, Errorf(CodeInvalid, "frame is not valid UTF-8")
	}
	if err := DecodeOne(raw, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return ClientFrame{ID: RefOf(raw)}, WrongType(typeErr)
		case errors.Is(err, ErrTrailingData):
			return ClientFrame{ID: cleanRef(f.ID)}, Errorf(CodeInvalid, "one JSON object per frame")
		case errors.Is(err, ErrLoneSurrogate), errors.Is(err, ErrControlChar):
			return ClientFrame{ID: RefOf(raw)}, Errorf(CodeInvalid, "%v", err)
		}
		return ClientFrame{}, Errorf(CodeInvalid, "malformed JSON: %v", err)
	}
	err := f.check()
	if err == nil && f.Type == TypeSend {
		err = RefuseEmpty(raw, "kind", "client_id")
	}
	if err != nil {
		return ClientFrame{Type: f.Type, ID: f.ID}, err
	}
	return f, nil
}

// check requires each type's fields, in the order a client would fix them,
// and holds the frame's strings to the rules every string obeys.
func (f *ClientFrame) check() error {
	if len(f.ID) > 0 && cleanRef(f.ID) == nil {
		f.ID = nil // not to be echoed back as the error's ref
		return Errorf(CodeInvalid, "id: every string in it must be valid text of at most %d characters without control characters", validate.MaxKey)
	}
	if f.Resume != nil {
		if err := validate.Key("resume.epoch", f.Resume.Epoch); err != nil {
			return Errorf(CodeInvalid, "%v", err)
		}
	}
	for _, id := range []struct{ field, v string }{{"inbox_id", f.InboxID}, {"conversation_id", f.ConversationID}} {
		if id.v == "" {
			continue // whether it is required depends on the type
		}
		// As in a REST path: a control character is invalid, an id too
		// long to exist is not found.
		if err := validate.Text(id.field, id.v, MaxPath); err != nil {
			return Errorf(CodeInvalid, "%v", err)
		}
	}
	switch f.Type {
	case TypePing:
		return nil
	case TypeSubscribe:
		if f.InboxID == "" {
			return Errorf(CodeInvalid, "inbox_id is required")
		}
		q, err := FilterQuery(f.Filter)
		if err != nil {
			return err
		}
		f.Query = q
		if f.Resume != nil && (f.Resume.Epoch == "" || f.Resume.Seq == nil || *f.Resume.Seq < 0) {
			return Errorf(CodeInvalid, "resume needs epoch and seq")
		}
		return nil
	case TypeUnsubscribe:
		if f.InboxID == "" {
			return Errorf(CodeInvalid, "inbox_id is required")
		}
		return nil
	case TypeWatch, TypeUnwatch, TypeTyping, TypeSend, TypeUpdateConversation:
		if f.ConversationID == "" {
			return Errorf(CodeInvalid, "conversation_id is required")
		}
		return nil
	case "":
		return Errorf(CodeInvalid, "type is required")
	}
	return Errorf(CodeInvalid, "unknown frame type %q", f.Type)
}

// RefOf digs the id out of a frame that did not decode as a whole; nil
// unless it is fit to echo (see cleanRef).
func RefOf(raw []byte) json.RawMessage {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(raw, &v)
	return cleanRef(v.ID)
}

// cleanRef is id when it may be echoed back as a ref: valid UTF-8 without
// lone surrogate escapes, every string in it (an id may be any JSON value)
// under the rule every string obeys, and small. Else nil: a ref the server
// echoed would carry the bad bytes into a frame a client must reject
// (invalid UTF-8 fails the whole connection, 1007).
func cleanRef(id json.RawMessage) json.RawMessage {
	if len(id) == 0 || len(id) > maxRef || !utf8.Valid(id) || badText(id) != nil {
		return nil
	}
	var v any
	if json.Unmarshal(id, &v) != nil || !cleanValue(v) {
		return nil
	}
	return id
}

// maxRef bounds an id echoed as a ref.
const maxRef = 1024

func cleanValue(v any) bool {
	switch x := v.(type) {
	case string:
		return validate.Key("id", x) == nil
	case []any:
		for _, e := range x {
			if !cleanValue(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			if !cleanValue(k) || !cleanValue(e) {
				return false
			}
		}
	}
	return true
}

// WrongType words a JSON type mismatch with the field's name as the client
// wrote it: encoding/json puts the Go names of embedded structs in the path
// ("UpdateFields.if_version"), which the API's lower-case names never are.
func WrongType(e *json.UnmarshalTypeError) *Error {
	parts := strings.Split(e.Field, ".")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" && !unicode.IsUpper(rune(p[0])) {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return Errorf(CodeInvalid, "a value has the wrong type")
	}
	return Errorf(CodeInvalid, "field %q has the wrong type", strings.Join(kept, "."))
}

// RefuseEmpty refuses a body or frame whose named top-level members are the
// empty string: left out, an optional enum or URL takes its default; given
// as "", it is a value the API does not know (invalid_argument), which
// decoding into a string alone cannot tell apart.
func RefuseEmpty(raw []byte, names ...string) error {
	for _, name := range names {
		if v := gjson.GetBytes(raw, name); v.Type == gjson.String && v.Str == "" {
			return Errorf(CodeInvalid, "%s must not be empty: leave it out for the default", name)
		}
	}
	return nil
}
