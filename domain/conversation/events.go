package conversation

import "time"

// EventType names what happened. It is stored in the journal's event_type
// column and in the event JSON.
type EventType string

const (
	// EventInbound: the contact sent a message (Item set, Direction inbound).
	EventInbound EventType = "inbound_message"
	// EventOutbound: an agent or integration replied or wrote a note
	// (Item set, Direction outbound, Kind message or note).
	EventOutbound EventType = "outbound_message"
	// EventCall: a call item was created or changed state (Item set, Kind call).
	EventCall EventType = "call"
	// EventUpdate: status, addressed, assignee or tags changed (Change set).
	EventUpdate EventType = "update"
)

// Event is one committed change of a conversation. Events are stored as JSON
// in the journal; the indexer reads Item.Body of message and note events.
type Event struct {
	Type    EventType `json:"type"`
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	// IdempotencyKey is the key of the command that produced the event; the
	// cluster may deliver a command twice and the actor answers the second
	// delivery from the first event.
	IdempotencyKey string `json:"idempotency_key,omitempty"`

	// Conversation identity, set on the first event so that the journal alone
	// can rebuild the state.
	AccountID string   `json:"account_id,omitempty"`
	InboxID   string   `json:"inbox_id,omitempty"`
	Contact   *Contact `json:"contact,omitempty"`

	Item   *Item   `json:"item,omitempty"`
	Change *Change `json:"change,omitempty"`
	// ActorID is the agent who caused an outbound or update event, if any;
	// ActorAutomation for what timers and round-robin decide.
	ActorID string `json:"actor_id,omitempty"`
	// Timers, when set, are the snooze and SLA fields after the event.
	Timers *Timers `json:"timers,omitempty"`
	// AssignPending, when set, is whether round-robin owes an assignment
	// after the event (assign.go).
	AssignPending *bool `json:"assign_pending,omitempty"`
	// Summary is the conversation as it is after the event, set by the
	// actor before the append so that journal consumers (the webhook
	// deliverer) can tell what the conversation looked like at that version.
	// Apply ignores it.
	Summary *Summary `json:"summary,omitempty"`
}

// Change is the effect of an update command. Nil fields are unchanged.
type Change struct {
	Status     *Status  `json:"status,omitempty"`
	Addressed  *bool    `json:"addressed,omitempty"`
	AssigneeID *string  `json:"assignee_id,omitempty"` // "" clears the assignee
	TagsAdd    []string `json:"tags_add,omitempty"`
	TagsRemove []string `json:"tags_remove,omitempty"`
}
