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
	body, err := appendPayload(make([]byte, 0, 1024), Payload{ID: EventID(conversationID, version), Type: typ, CreatedAt: at.UTC(),
		AccountID: accountID, InboxID: inboxID, ConversationID: conversationID, Version: version}, &ev)
	if err != nil {
		return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
	}
	return typ, string(body), nil
}

// appendPayload writes p with ev's data ({"conversation", and "message" or
// "call"}) in place of p.Data, byte for byte what encoding/json writes for
// it, data as a map (TestPayloadMatchesEncodingJSON). One is built per
// journal event, and reflection over the summary, then copying data
// through a RawMessage, was two thirds of the encoding's cost.
func appendPayload(b []byte, p Payload, ev *eventParts) ([]byte, error) {
	created, err := p.CreatedAt.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b = append(b, `{"id":`...)
	b = conversation.AppendJSONString(b, p.ID)
	b = append(b, `,"type":`...)
	b = conversation.AppendJSONString(b, p.Type)
	b = append(b, `,"created_at":`...)
	b = append(b, created...)
	b = append(b, `,"account_id":`...)
	b = conversation.AppendJSONString(b, p.AccountID)
	b = append(b, `,"inbox_id":`...)
	b = conversation.AppendJSONString(b, p.InboxID)
	b = append(b, `,"conversation_id":`...)
	b = conversation.AppendJSONString(b, p.ConversationID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	item := func(b []byte) ([]byte, error) {
		if ev.Item == nil {
			return append(b, "null"...), nil
		}
		return ev.Item.AppendJSON(b)
	}
	// Members in encoding/json's map order: call, conversation, message.
	b = append(b, `,"data":{`...)
	if p.Type == TypeCallUpdated {
		if b, err = item(append(b, `"call":`...)); err != nil {
			return nil, err
		}
		b = append(b, ',')
	}
	b = append(b, `"conversation":`...)
	if ev.Summary == nil {
		b = append(b, "null"...)
	} else if b, err = ev.Summary.AppendJSON(b); err != nil {
		return nil, err
	}
	if p.Type == TypeMessageCreated || p.Type == TypeMessageUpdated {
		if b, err = item(append(b, `,"message":`...)); err != nil {
			return nil, err
		}
	}
	return append(b, "}}"...), nil
}
