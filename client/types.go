package client

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Enumerations of the API. They are plain strings, so a value a newer
// server adds still decodes.
type (
	// Status is a conversation's status.
	Status string
	// Channel is how a conversation's contact reaches the inbox.
	Channel string
	// Kind is a timeline item's kind.
	Kind string
	// Direction says who wrote a message.
	Direction string
	// CallState is a call's state.
	CallState string
	// DeliveryStatus is where an outbound message is on its way to the contact.
	DeliveryStatus string
	// Sort orders a conversation list.
	Sort string
	// AgentStatus is an agent's availability.
	AgentStatus string
	// WebhookEventType is a webhook event's type.
	WebhookEventType string
)

// Values of the enumerations.
const (
	StatusNew     Status = "new"
	StatusOpen    Status = "open"
	StatusPending Status = "pending"
	StatusClosed  Status = "closed"

	ChannelSMS   Channel = "sms"
	ChannelChat  Channel = "chat"
	ChannelEmail Channel = "email"
	ChannelVoice Channel = "voice"

	KindMessage Kind = "message"
	KindNote    Kind = "note"
	KindCall    Kind = "call"

	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"

	CallRinging    CallState = "ringing"
	CallInProgress CallState = "in_progress"
	CallCompleted  CallState = "completed"
	CallMissed     CallState = "missed"
	CallVoicemail  CallState = "voicemail"

	DeliveryPending     DeliveryStatus = "pending"
	DeliveryQueued      DeliveryStatus = "queued"
	DeliverySent        DeliveryStatus = "sent"
	DeliveryDelivered   DeliveryStatus = "delivered"
	DeliveryFailed      DeliveryStatus = "failed"
	DeliveryUndelivered DeliveryStatus = "undelivered"

	SortRecent      Sort = "recent"
	SortOldest      Sort = "oldest"
	SortLongestWait Sort = "longest_wait"
	SortSLADue      Sort = "sla_due"

	AgentAvailable AgentStatus = "available"
	AgentAway      AgentStatus = "away"

	WebhookMessageCreated      WebhookEventType = "message.created"
	WebhookMessageUpdated      WebhookEventType = "message.updated"
	WebhookCallUpdated         WebhookEventType = "call.updated"
	WebhookConversationUpdated WebhookEventType = "conversation.updated"
)

// Field is a request field that is left out (the zero Field), set to null
// (Null), or set to a value (Set): the three meanings a PATCH gives a
// nullable field such as assignee_id or auto_close_after_s.
type Field[T any] struct {
	set, null bool
	v         T
}

// Set is a field set to v.
func Set[T any](v T) Field[T] { return Field[T]{set: true, v: v} }

// Null is a field set to null (cleared, switched off).
func Null[T any]() Field[T] { return Field[T]{set: true, null: true} }

// IsZero reports a field left out; encoding/json's omitzero asks it.
func (f Field[T]) IsZero() bool { return !f.set }

// MarshalJSON encodes null or the value.
func (f Field[T]) MarshalJSON() ([]byte, error) {
	if f.null || !f.set {
		return []byte("null"), nil
	}
	return json.Marshal(f.v)
}

// Account is a tenant.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// NewAccount is what CreateAccount answers: the account and its first key.
type NewAccount struct {
	Account  Account `json:"account"`
	APIKey   string  `json:"api_key"`
	APIKeyID string  `json:"api_key_id"`
}

// Inbox is an inbox with its automation settings.
type Inbox struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	PhoneNumber       *string `json:"phone_number"`
	AutoCloseAfterS   *int64  `json:"auto_close_after_s"`
	SLAFirstResponseS *int64  `json:"sla_first_response_s"`
	AutoAssign        string  `json:"auto_assign"`
}

// CreateInboxRequest is the body of POST /v1/inboxes.
type CreateInboxRequest struct {
	Name        string `json:"name"`
	PhoneNumber string `json:"phone_number,omitempty"`
}

// InboxUpdate is the body of PATCH /v1/inboxes/{id}; durations are whole
// seconds, Null switches the automation off.
type InboxUpdate struct {
	Name              *string       `json:"name,omitempty"`
	PhoneNumber       Field[string] `json:"phone_number,omitzero"` // Null removes it
	AutoCloseAfterS   Field[int64]  `json:"auto_close_after_s,omitzero"`
	SLAFirstResponseS Field[int64]  `json:"sla_first_response_s,omitzero"`
	AutoAssign        string        `json:"auto_assign,omitempty"` // none or round_robin
}

// AgentUpdate is the body of PATCH /v1/agents/{id}: the fields set change.
type AgentUpdate struct {
	Status AgentStatus `json:"status,omitempty"`
	Name   string      `json:"name,omitempty"`
	Email  string      `json:"email,omitempty"`
}

// Agent is a person answering conversations.
type Agent struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	Email    string      `json:"email"`
	InboxIDs []string    `json:"inbox_ids"`
	Status   AgentStatus `json:"status"`
}

// CreateAgentRequest is the body of POST /v1/agents.
type CreateAgentRequest struct {
	Name     string   `json:"name"`
	Email    string   `json:"email"`
	InboxIDs []string `json:"inbox_ids"`
}

// NewAgent is what CreateAgent answers: the agent and its first token.
type NewAgent struct {
	Agent Agent  `json:"agent"`
	Token string `json:"token"`
}

// NewAPIKey is a freshly made API key; the key itself is shown only once.
type NewAPIKey struct {
	ID     string `json:"id"`
	APIKey string `json:"api_key"`
}

// APIKey is a key as listed (never the key itself).
type APIKey struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

// ContactRef names the contact of an inbound message or call: one of Phone
// (E.164), Email or Handle.
type ContactRef struct {
	Phone  string `json:"phone,omitempty"`
	Email  string `json:"email,omitempty"`
	Handle string `json:"handle,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Contact is a conversation's contact.
type Contact struct {
	ID       string  `json:"id"`
	Phone    *string `json:"phone"`
	Email    *string `json:"email"`
	Handle   *string `json:"handle"`
	Name     *string `json:"name"`
	OptedOut bool    `json:"opted_out"`
}

// LastMessage is the newest timeline item of a conversation summary.
type LastMessage struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Direction Direction `json:"direction"`
	Kind      Kind      `json:"kind"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// ActiveCall is a ringing or in-progress call.
type ActiveCall struct {
	CallID string    `json:"call_id"`
	State  CallState `json:"state"`
}

// Conversation is a conversation summary, what lists and updates carry.
// Version grows by exactly 1 with every event of the conversation.
type Conversation struct {
	ID             string       `json:"id"`
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
	SnoozeUntil    *time.Time   `json:"snooze_until"`
	SLADueAt       *time.Time   `json:"sla_due_at"`
	SLABreached    bool         `json:"sla_breached"`
}

// Item is a timeline item: a message, a note or a call.
type Item struct {
	ID         string    `json:"id"`
	Seq        int64     `json:"seq"`
	Direction  Direction `json:"direction"`
	Kind       Kind      `json:"kind"`
	Channel    Channel   `json:"channel"`
	Body       string    `json:"body"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ExternalID string    `json:"external_id"`
	ClientID   string    `json:"client_id"`
	AuthorID   string    `json:"author_id"`
	// Outbound messages: delivery status as the integration reported it.
	Status            DeliveryStatus `json:"status"`
	ErrorCode         string         `json:"error_code"`
	ProviderMessageID string         `json:"provider_message_id"`
	// Calls.
	CallID       string    `json:"call_id"`
	State        CallState `json:"state"`
	DurationS    int64     `json:"duration_s"`
	RecordingURL string    `json:"recording_url"`
}

// InboundMessage is the body of POST /v1/inboxes/{id}/messages. ExternalID
// (the carrier's id) makes it idempotent, and so retried.
type InboundMessage struct {
	Contact    ContactRef `json:"contact"`
	Body       string     `json:"body"`
	Channel    Channel    `json:"channel,omitempty"`
	ExternalID string     `json:"external_id,omitempty"`
}

// InboundResult answers an inbound message. Duplicate is true when the
// ExternalID was seen before and Message is the original.
type InboundResult struct {
	ConversationID string       `json:"conversation_id"`
	Message        Item         `json:"message"`
	Conversation   Conversation `json:"conversation"`
	Duplicate      bool         `json:"-"`
}

// CallEvent is the body of POST /v1/inboxes/{id}/calls.
type CallEvent struct {
	Contact      ContactRef `json:"contact"`
	CallID       string     `json:"call_id"`
	State        CallState  `json:"state"`
	DurationS    int64      `json:"duration_s,omitempty"`
	RecordingURL string     `json:"recording_url,omitempty"`
}

// CallResult answers a call event.
type CallResult struct {
	ConversationID string       `json:"conversation_id"`
	Call           Item         `json:"call"`
	Conversation   Conversation `json:"conversation"`
}

// Reply is an agent's reply or internal note. Reply and Stream.Send fill in
// a random ClientID when it is empty, so that a retry never stores it twice.
// With IfVersion set the server refuses it (ErrConflict) unless the
// conversation is still at that version.
type Reply struct {
	Body      string `json:"body"`
	Kind      Kind   `json:"kind,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	IfVersion *int64 `json:"if_version,omitempty"`
}

// ConversationUpdate is the body of PATCH /v1/conversations/{id} (and of the
// websocket's update_conversation). AssigneeID: Null unassigns; SnoozeUntil:
// a future time, with status pending.
type ConversationUpdate struct {
	Status      Status           `json:"status,omitempty"`
	Addressed   *bool            `json:"addressed,omitempty"`
	AssigneeID  Field[string]    `json:"assignee_id,omitzero"`
	TagsAdd     []string         `json:"tags_add,omitempty"`
	TagsRemove  []string         `json:"tags_remove,omitempty"`
	SnoozeUntil Field[time.Time] `json:"snooze_until,omitzero"`
	IfVersion   *int64           `json:"if_version,omitempty"`
}

// Version is a helper for the IfVersion fields.
func Version(v int64) *int64 { return &v }

// ListQuery selects and orders a conversation list; it is also a websocket
// subscription's filter (where Cursor does not apply). Zero fields are left
// out: the server's defaults apply (every status but closed, sort recent,
// 50 a page).
type ListQuery struct {
	Status    []Status
	Addressed *bool
	Assignee  string // "me", "none" or an agent id
	Channel   Channel
	Tag       string
	Sort      Sort
	Limit     int
	Cursor    string
}

func (q ListQuery) values() url.Values {
	v := url.Values{}
	if len(q.Status) > 0 {
		parts := make([]string, len(q.Status))
		for i, s := range q.Status {
			parts[i] = string(s)
		}
		v.Set("status", strings.Join(parts, ","))
	}
	if q.Addressed != nil {
		v.Set("addressed", strconv.FormatBool(*q.Addressed))
	}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("assignee", q.Assignee)
	set("channel", string(q.Channel))
	set("tag", q.Tag)
	set("sort", string(q.Sort))
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set("cursor", q.Cursor)
	return v
}

// filter is the query as a subscribe frame's filter; nil when empty.
func (q ListQuery) filter() map[string]any {
	f := map[string]any{}
	for k, vs := range q.values() {
		if k != "cursor" {
			f[k] = vs[0]
		}
	}
	if len(f) == 0 {
		return nil
	}
	return f
}

// ConversationPage is one page of a conversation list, read at the inbox
// state (Epoch, Seq). NextCursor is empty on the last page.
type ConversationPage struct {
	Conversations []Conversation `json:"conversations"`
	NextCursor    string         `json:"next_cursor"`
	Total         int64          `json:"total"`
	Epoch         string         `json:"epoch"`
	Seq           int64          `json:"seq"`
}

// Counts are an inbox's counts; Mine and MineUnaddressed need an agent token.
type Counts struct {
	Open            int64  `json:"open"`
	New             int64  `json:"new"`
	Pending         int64  `json:"pending"`
	Closed          int64  `json:"closed"`
	Unaddressed     int64  `json:"unaddressed"`
	Unassigned      int64  `json:"unassigned"`
	Mine            *int64 `json:"mine"`
	MineUnaddressed *int64 `json:"mine_unaddressed"`
	SLABreached     int64  `json:"sla_breached"`
	Epoch           string `json:"epoch,omitempty"`
	Seq             int64  `json:"seq,omitempty"`
}

// MessagesQuery pages a timeline backwards: Before a seq (0: from the
// newest), Limit items (0: the server's default, 50).
type MessagesQuery struct {
	Before int64
	Limit  int
}

// MessagePage is a page of a timeline, newest first; NextBefore is nil on
// the last page.
type MessagePage struct {
	Messages   []Item `json:"messages"`
	NextBefore *int64 `json:"next_before"`
}

// SearchQuery is a full-text search; InboxID and Limit are optional.
type SearchQuery struct {
	Q       string
	InboxID string
	Limit   int
}

// SearchHit is a message that matched.
type SearchHit struct {
	ConversationID string    `json:"conversation_id"`
	InboxID        string    `json:"inbox_id"`
	MessageID      string    `json:"message_id"`
	Seq            int64     `json:"seq"`
	Body           string    `json:"body"`
	Snippet        string    `json:"snippet"`
	CreatedAt      time.Time `json:"created_at"`
}

// SearchResult is the hits and how many were found.
type SearchResult struct {
	Hits  []SearchHit `json:"hits"`
	Found int64       `json:"found"`
}

// DeliveryReport is the carrier's news about an outbound message.
type DeliveryReport struct {
	Status            DeliveryStatus `json:"status"`
	ErrorCode         string         `json:"error_code,omitempty"`
	ProviderMessageID string         `json:"provider_message_id,omitempty"`
}

// DeliveryResult is the message as it now is, and its conversation.
type DeliveryResult struct {
	Message      Item         `json:"message"`
	Conversation Conversation `json:"conversation"`
}

// Webhook is a registered endpoint (never its secret).
type Webhook struct {
	ID          string             `json:"id"`
	URL         string             `json:"url"`
	Events      []WebhookEventType `json:"events"`
	Description *string            `json:"description"`
	CreatedAt   time.Time          `json:"created_at"`
}

// CreateWebhookRequest is the body of POST /v1/webhooks; no Events means
// every type.
type CreateWebhookRequest struct {
	URL         string             `json:"url"`
	Events      []WebhookEventType `json:"events,omitempty"`
	Description string             `json:"description,omitempty"`
}

// NewWebhook is the webhook and its signing secret, shown only once: keep
// it for VerifyWebhook.
type NewWebhook struct {
	Webhook Webhook `json:"webhook"`
	Secret  string  `json:"secret"`
}

// Delivery is a pending or failed webhook delivery.
type Delivery struct {
	EventID        string           `json:"event_id"`
	Type           WebhookEventType `json:"type"`
	ConversationID string           `json:"conversation_id"`
	Version        int64            `json:"version"`
	Status         string           `json:"status"`
	Attempts       int              `json:"attempts"`
	LastError      *string          `json:"last_error"`
	NextAttemptAt  *time.Time       `json:"next_attempt_at"`
}
