package conversation

import (
	"fmt"
	"time"
)

// DeliveryStatus is how far a carrier got with an outbound message.
type DeliveryStatus string

const (
	DeliveryPending     DeliveryStatus = "pending"
	DeliveryQueued      DeliveryStatus = "queued"
	DeliverySent        DeliveryStatus = "sent"
	DeliveryDelivered   DeliveryStatus = "delivered"
	DeliveryFailed      DeliveryStatus = "failed"
	DeliveryUndelivered DeliveryStatus = "undelivered"
)

// EventMessageStatus: an outbound message's delivery status moved forward
// (Item set: the message as it is now, at its original seq).
const EventMessageStatus EventType = "message_status"

// ErrMessageNotFound: the message named is not an outbound message of the
// conversation. It wraps ErrNotFound.
var ErrMessageNotFound = fmt.Errorf("%w: no such outbound message", ErrNotFound)

// Reportable reports whether an integration may report s (pending is only
// ever the initial status).
func (s DeliveryStatus) Reportable() bool {
	switch s {
	case DeliveryQueued, DeliverySent, DeliveryDelivered, DeliveryFailed, DeliveryUndelivered:
		return true
	}
	return false
}

// Final reports whether nothing may follow s.
func (s DeliveryStatus) Final() bool {
	return s == DeliveryDelivered || s == DeliveryFailed || s == DeliveryUndelivered
}

// rank orders the non-failure statuses along the happy path.
func (s DeliveryStatus) rank() int {
	switch s {
	case DeliveryPending:
		return 0
	case DeliveryQueued:
		return 1
	case DeliverySent:
		return 2
	case DeliveryDelivered:
		return 3
	}
	return -1
}

// Advance returns the status after a carrier reports next on a message at
// cur, and whether that is a change. Carriers report out of order and more
// than once, so anything that is not a step forward changes nothing: the
// status only moves pending → queued → sent → delivered, and to failed or
// undelivered from any status that is not final.
func Advance(cur, next DeliveryStatus) (DeliveryStatus, bool) {
	if cur == "" {
		cur = DeliveryPending
	}
	if cur.Final() || !next.Reportable() || next == cur {
		return cur, false
	}
	if next == DeliveryFailed || next == DeliveryUndelivered {
		return next, true
	}
	if next.rank() > cur.rank() {
		return next, true
	}
	return cur, false
}

// StatusCommand: the integration reports how delivery of an outbound
// message went. Current is the message as stored: the state does not keep
// every message in memory, so the actor loads it (nil when there is no item
// with that id in the conversation).
type StatusCommand struct {
	MessageID         string
	Status            DeliveryStatus
	ErrorCode         string
	ProviderMessageID string
	Current           *Item
}

// decideStatus is Decide for a StatusCommand: an event updating the item in
// place, or (nil, nil) when the report changes nothing.
func decideStatus(s *State, ev *Event, c *StatusCommand, now time.Time) (*Event, error) {
	if !s.Exists() {
		return nil, ErrNotFound
	}
	if !c.Status.Reportable() {
		return nil, fmt.Errorf("%w: status must be one of queued, sent, delivered, failed, undelivered", ErrInvalid)
	}
	it := c.Current
	if it == nil || it.ID != c.MessageID || it.Direction != Outbound || it.Kind != KindMessage {
		return nil, ErrMessageNotFound
	}
	next, changed := Advance(it.Status, c.Status)
	if !changed {
		return nil, nil
	}
	updated := *it
	updated.Status = next
	if c.ErrorCode != "" {
		updated.ErrorCode = c.ErrorCode
	}
	if c.ProviderMessageID != "" {
		updated.ProviderMessageID = c.ProviderMessageID
	}
	updated.UpdatedAt = now
	ev.Type = EventMessageStatus
	ev.Item = &updated
	return ev, nil
}
