package webhooks

import (
	"encoding/json"
	"fmt"
	"slices"
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

// payload builds the body of a journal event's webhook event. The event
// carries the conversation's summary as of that version (Event.Summary).
func payload(conversationID string, version int64, eventType, accountID, inboxID string, raw []byte, committed time.Time) (string, string, error) {
	var ev conversation.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return "", "", fmt.Errorf("webhooks: decode event %s@%d: %w", conversationID, version, err)
	}
	typ := typeOf(eventType)
	data := map[string]any{"conversation": ev.Summary}
	switch typ {
	case TypeMessageCreated, TypeMessageUpdated:
		data["message"] = ev.Item
	case TypeCallUpdated:
		data["call"] = ev.Item
	}
	at := ev.At
	if at.IsZero() {
		at = committed
	}
	d, err := json.Marshal(data)
	if err != nil {
		return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
	}
	body, err := json.Marshal(Payload{ID: EventID(conversationID, version), Type: typ, CreatedAt: at.UTC(), AccountID: accountID,
		InboxID: inboxID, ConversationID: conversationID, Version: version, Data: d})
	if err != nil {
		return "", "", fmt.Errorf("webhooks: encode event %s@%d: %w", conversationID, version, err)
	}
	return typ, string(body), nil
}
