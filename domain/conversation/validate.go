package conversation

import (
	"fmt"

	"github.com/switchboard-dev/switchboard/domain/validate"
)

// Validate checks a command's own fields against the API's rules, before
// any state is consulted: Decide runs it, and the gateway runs it before a
// command travels, so REST and websocket input are refused with the same
// words and nothing reaches PostgreSQL that it would refuse.
func (c Command) Validate() error {
	n := 0
	for _, set := range []bool{c.Inbound != nil, c.Call != nil, c.Reply != nil, c.Update != nil, c.Tick != nil, c.Status != nil, c.Assign != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: a command needs exactly one payload", ErrInvalid)
	}
	switch {
	case c.Inbound != nil:
		return c.Inbound.Validate()
	case c.Call != nil:
		return c.Call.Validate()
	case c.Reply != nil:
		return c.Reply.Validate()
	case c.Update != nil:
		return c.Update.Validate()
	case c.Status != nil:
		return c.Status.Validate()
	default:
		return nil // a tick has no fields of its own
	}
}

// Validate checks a carrier's delivery report.
func (c *StatusCommand) Validate() error {
	if err := validate.OneOf("status", string(c.Status), string(DeliveryQueued), string(DeliverySent),
		string(DeliveryDelivered), string(DeliveryFailed), string(DeliveryUndelivered)); err != nil {
		return err
	}
	if err := validate.Key("error_code", c.ErrorCode); err != nil {
		return err
	}
	return validate.Key("provider_message_id", c.ProviderMessageID)
}

// Validate requires exactly one identifier, well formed, and a clean name.
func (c Contact) Validate() error {
	n := 0
	for _, v := range []string{c.Phone, c.Email, c.Handle} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return &validate.Error{Field: "contact", Reason: "needs exactly one of phone, email or handle"}
	}
	var err error
	switch {
	case c.Phone != "":
		err = validate.Phone("contact.phone", c.Phone)
	case c.Email != "":
		err = validate.Email("contact.email", c.Email)
	default:
		err = validate.Handle("contact.handle", c.Handle)
	}
	if err != nil {
		return err
	}
	return validate.ContactName("contact.name", c.Name)
}

// Validate checks an inbound message.
func (c *InboundCommand) Validate() error {
	if err := c.Contact.Validate(); err != nil {
		return err
	}
	if err := validate.Body("body", c.Body); err != nil {
		return err
	}
	if c.Channel != "" {
		if err := validate.OneOf("channel", string(c.Channel), string(ChannelSMS), string(ChannelChat), string(ChannelEmail)); err != nil {
			return err
		}
	}
	return validate.Key("external_id", c.ExternalID)
}

// Validate checks a call event.
func (c *CallCommand) Validate() error {
	if err := c.Contact.Validate(); err != nil {
		return err
	}
	if err := validate.Handle("call_id", c.CallID); err != nil {
		return err
	}
	if !c.State.Valid() {
		return &validate.Error{Field: "state", Reason: "must be one of ringing, in_progress, completed, missed, voicemail"}
	}
	if c.DurationS < 0 {
		return &validate.Error{Field: "duration_s", Reason: "must not be negative"}
	}
	if c.RecordingURL != "" {
		return validate.URL("recording_url", c.RecordingURL)
	}
	return nil
}

// Validate checks a reply or note.
func (c *ReplyCommand) Validate() error {
	if err := validate.Body("body", c.Body); err != nil {
		return err
	}
	if c.Kind != "" && c.Kind != KindMessage && c.Kind != KindNote {
		return &validate.Error{Field: "kind", Reason: "must be message or note"}
	}
	return validate.Key("client_id", c.ClientID)
}

// Validate checks an update's values; that the tags fit the conversation
// and that the assignee is an agent of its inbox are checked where the
// state is known (Decide, and the gateway against the agents table).
func (c *UpdateCommand) Validate() error {
	if c.Status != nil && !c.Status.Valid() {
		return &validate.Error{Field: "status", Reason: "must be one of new, open, pending, closed"}
	}
	if c.AssigneeID != nil && *c.AssigneeID != "" { // "" unassigns
		if err := validate.ID("assignee_id", *c.AssigneeID); err != nil {
			return err
		}
	}
	if err := validate.Tags("tags_add", c.TagsAdd); err != nil {
		return err
	}
	if err := validate.Tags("tags_remove", c.TagsRemove); err != nil {
		return err
	}
	// More distinct tags than a conversation may hold can never be added;
	// repeats, and any number of names to remove, are harmless.
	if n := distinct(c.TagsAdd); n > validate.MaxTags {
		return &validate.Error{Field: "tags_add", Reason: fmt.Sprintf("adds %d tags; a conversation has at most %d", n, validate.MaxTags)}
	}
	return nil
}

func distinct(tags []string) int {
	if len(tags) <= validate.MaxTags {
		return len(tags) // enough for the bound it is compared with
	}
	seen := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		seen[t] = struct{}{}
	}
	return len(seen)
}
