// Package conversation is the conversation state machine: pure, I/O-free
// code that decides which event a command produces (Decide) and how an event
// changes the state (Apply). The conversation actor is a thin shell around it
// that commits each event to PostgreSQL before applying it.
package conversation

import (
	"encoding/json"
	"time"
)

// Status of a conversation, as the API names it.
type Status string

const (
	StatusNew     Status = "new"
	StatusOpen    Status = "open"
	StatusPending Status = "pending"
	StatusClosed  Status = "closed"
)

// Valid reports whether s is one of the API's statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusNew, StatusOpen, StatusPending, StatusClosed:
		return true
	}
	return false
}

// Channel a message or call travelled on.
type Channel string

const (
	ChannelSMS   Channel = "sms"
	ChannelChat  Channel = "chat"
	ChannelEmail Channel = "email"
	ChannelVoice Channel = "voice"
)

// Valid reports whether c is one of the API's channels.
func (c Channel) Valid() bool {
	switch c {
	case ChannelSMS, ChannelChat, ChannelEmail, ChannelVoice:
		return true
	}
	return false
}

// Direction of a timeline item.
type Direction string

const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// ItemKind of a timeline item.
type ItemKind string

const (
	KindMessage ItemKind = "message"
	KindNote    ItemKind = "note"
	KindCall    ItemKind = "call"
)

// CallState is the state of a call item.
type CallState string

const (
	CallRinging    CallState = "ringing"
	CallInProgress CallState = "in_progress"
	CallCompleted  CallState = "completed"
	CallMissed     CallState = "missed"
	CallVoicemail  CallState = "voicemail"
)

// Valid reports whether s is one of the API's call states.
func (s CallState) Valid() bool {
	switch s {
	case CallRinging, CallInProgress, CallCompleted, CallMissed, CallVoicemail:
		return true
	}
	return false
}

// Active reports whether the call is still going (shown as active_call).
func (s CallState) Active() bool { return s == CallRinging || s == CallInProgress }

// stage orders a call's states: ringing, then in progress, then any of the
// ended states. A call moves from one ended state to another (missed, then
// a voicemail is left) but never back to an earlier stage.
func (s CallState) stage() int {
	switch s {
	case CallRinging:
		return 0
	case CallInProgress:
		return 1
	}
	return 2
}

// Contact is the other party of a conversation. Exactly one of Phone, Email
// or Handle identifies it; Name is a display name.
type Contact struct {
	ID     string `json:"id"`
	Phone  string `json:"phone,omitempty"`
	Email  string `json:"email,omitempty"`
	Handle string `json:"handle,omitempty"`
	Name   string `json:"name,omitempty"`
	// OptedOut: the contact texted STOP (SMS consent, consent.go).
	OptedOut bool `json:"opted_out"`
}

// MarshalJSON writes every field the API lists for a contact (id, phone,
// email, handle, name), null when unset, rather than dropping absent ones.
// Decoding needs no counterpart: null leaves a string field empty.
//
// It is on every summary's path (one per message, each encoded once), so it
// writes the object itself rather than going through a second json.Marshal
// of an anonymous struct; contactJSONReference is the specification.
func (c Contact) MarshalJSON() ([]byte, error) {
	return c.appendJSON(make([]byte, 0, 96+len(c.ID)+len(c.Phone)+len(c.Email)+len(c.Handle)+len(c.Name))), nil
}

func (c Contact) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, c.ID)
	for _, f := range [...]struct{ key, v string }{{`,"phone":`, c.Phone}, {`,"email":`, c.Email}, {`,"handle":`, c.Handle}, {`,"name":`, c.Name}} {
		b = append(b, f.key...)
		if f.v == "" {
			b = append(b, "null"...)
		} else {
			b = AppendJSONString(b, f.v)
		}
	}
	if c.OptedOut {
		return append(b, `,"opted_out":true}`...)
	}
	return append(b, `,"opted_out":false}`...)
}

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes it: plain printable ASCII as is, anything else (escapes, HTML
// characters, non-ASCII, invalid UTF-8) through json.Marshal. Encoders of
// what carries summaries and items (webhook payloads) write their own
// strings with it too.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Item is one entry of a conversation's timeline: a message, a note or a
// call. Seq is the conversation version at which the item was first appended;
// a call item keeps its seq while its state changes.
type Item struct {
	ID         string    `json:"id"`
	Seq        int64     `json:"seq"`
	Direction  Direction `json:"direction"`
	Kind       ItemKind  `json:"kind"`
	Channel    Channel   `json:"channel"`
	Body       string    `json:"body"`
	CreatedAt  time.Time `json:"created_at"`
	ExternalID string    `json:"external_id,omitempty"`
	ClientID   string    `json:"client_id,omitempty"`
	AuthorID   string    `json:"author_id,omitempty"`

	// Call fields, set when Kind is KindCall.
	CallID       string    `json:"call_id,omitempty"`
	State        CallState `json:"state,omitempty"`
	DurationS    int64     `json:"duration_s,omitempty"`
	RecordingURL string    `json:"recording_url,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`

	// Delivery fields, set on outbound messages (delivery.go).
	Status            DeliveryStatus `json:"status,omitempty"`
	ErrorCode         string         `json:"error_code,omitempty"`
	ProviderMessageID string         `json:"provider_message_id,omitempty"`
}

// LastMessage is the summary's view of the newest timeline item.
type LastMessage struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Direction Direction `json:"direction"`
	Kind      ItemKind  `json:"kind"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// ActiveCall is a ringing or in-progress call shown on the summary.
type ActiveCall struct {
	CallID string    `json:"call_id"`
	State  CallState `json:"state"`
}

// Summary is what inbox lists and updates carry: the API's conversation
// summary. Version grows by exactly 1 with every event of the conversation.
type Summary struct {
	ID             string       `json:"id"`
	AccountID      string       `json:"account_id"`
	InboxID        string       `json:"inbox_id"`
	Contact        Contact      `json:"contact"`
	Status         Status       `json:"status"`
	Addressed      bool         `json:"addressed"`
	AssigneeID     *string      `json:"assignee_id"`
	Tags           []string     `json:"tags"`
	Channel        Channel      `json:"channel"`
	LastMessage    *LastMessage `json:"last_message"`
	LastActivityAt time.Time    `json:"last_activity_at"`
	WaitingSince   *time.Time   `json:"waiting_since"`
	UnreadCount    int64        `json:"unread_count"`
	ActiveCall     *ActiveCall  `json:"active_call"`
	Version        int64        `json:"version"`

	// Automation (automation.go): set only through an event's Timers.
	SnoozeUntil *time.Time `json:"snooze_until"`
	SLADueAt    *time.Time `json:"sla_due_at"`
	SLABreached bool       `json:"sla_breached"`
}
