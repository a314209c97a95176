package webhooks

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// Event types (docs/api.md "Webhooks").
const (
	TypeMessageCreated      = "message.created"
	TypeMessageUpdated      = "message.updated"
	TypeCallUpdated         = "call.updated"
	TypeConversationUpdated = "conversation.updated"
)

// Types is every event type, the default of a webhook.
var Types = []string{TypeMessageCreated, TypeMessageUpdated, TypeCallUpdated, TypeConversationUpdated}

// ValidType reports whether t is an event type.
func ValidType(t string) bool { return slices.Contains(Types, t) }

// typeOf maps a journal event type onto a webhook event type: every event
// that is not a message or a call (status, assignment, tags, and whatever
// later issues add, like timers) is a conversation.updated.
func typeOf(eventType string) string {
	switch conversation.EventType(eventType) {
	case conversation.EventInbound, conversation.EventOutbound:
		return TypeMessageCreated
	case conversation.EventMessageStatus:
		return TypeMessageUpdated
	case conversation.EventCall:
		return TypeCallUpdated
	}
	return TypeConversationUpdated
}

// EventID is the id of a conversation event's webhook event, the same on
// every retry and for every webhook, so receivers can de-duplicate on it.
func EventID(conversationID string, version int64) string {
	return fmt.Sprintf("evt_%s_%d", conversationID, version)
}

// Payload is a delivery's body.
type Payload struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	CreatedAt      time.Time       `json:"created_at"`
	AccountID      string          `json:"account_id"`
	InboxID        string          `json:"inbox_id"`
	ConversationID string          `json:"conversation_id"`
	Version        int64           `json:"version"`
	Data           json.RawMessage `json:"data"`
}

// eventParts is what a webhook event takes from a journal event: decoding
// only these skips building the rest (the change, the contact, the timers).
type eventParts struct {
	At      time.Time             `json:"at"`
	Item    *conversation.Item    `json:"item"`
	Summary *conversation.Summary `json:"summary"`
}

// payload builds the body of a journal event's webhook event. The event
// carries the conversation's summary as of that version (Event.Summary).
//
// The body is written by hand, byte for byte what encoding/json writes for
// Payload with data {"conversation", "message" or "call"} (members in
// encoding/json's map order; TestPayloadMatchesEncodingJSON): one is built
// per journal event, and reflection over the summary, then copying data
// through a RawMessage, was two thirds of the encoding's cost.
func payload(conversationID string, version int64, eventType, accountID, inboxID string, raw []byte, committed time.Time) (string, string, error) {
	var ev eventParts
	if err := json.Unmarshal(raw, &ev); err != nil {
		return "", "", fmt.Errorf("webhooks: decode event %s@%d: %w", conversationID, version, err)
	}
	typ := typeOf(eventType)
	at := ev.At
	if at.IsZero() {
		at = committed
	}
	b := make([]byte, 0, 1024)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, EventID(conversationID, version))
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"created_at":`...)
	created, err := at.UTC().MarshalJSON()
	if err != nil {
		return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
	}
	b = append(b, created...)
	b = append(b, `,"account_id":`...)
	b = appendJSONString(b, accountID)
	b = append(b, `,"inbox_id":`...)
	b = appendJSONString(b, inboxID)
	b = append(b, `,"conversation_id":`...)
	b = appendJSONString(b, conversationID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"data":{`...)
	appendItem := func(b []byte) ([]byte, error) {
		if ev.Item == nil {
			return append(b, "null"...), nil
		}
		return ev.Item.AppendJSON(b)
	}
	if typ == TypeCallUpdated {
		b = append(b, `"call":`...)
		if b, err = appendItem(b); err != nil {
			return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
		}
		b = append(b, ',')
	}
	b = append(b, `"conversation":`...)
	if ev.Summary == nil {
		b = append(b, "null"...)
	} else if b, err = ev.Summary.AppendJSON(b); err != nil {
		return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
	}
	if typ == TypeMessageCreated || typ == TypeMessageUpdated {
		b = append(b, `,"message":`...)
		if b, err = appendItem(b); err != nil {
			return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
		}
	}
	b = append(b, "}}"...)
	return typ, string(b), nil
}

// appendJSONString appends s as encoding/json writes a string: as it is
// when nothing in it needs escaping (the ids and types here), or else
// through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
