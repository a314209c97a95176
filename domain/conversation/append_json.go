package conversation

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// AppendJSON appends the summary's JSON to b, exactly as encoding/json
// writes it from the field tags (TestSummaryJSONMatchesReference). A
// summary is encoded once per event, and reflection was most of that cost
// (0.9 µs here against 5.9). Summary has no MarshalJSON: through it
// encoding/json would copy and re-validate the output, slower than
// reflection where a summary is encoded inside something else (snapshots).
func (s *Summary) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, s.ID)
	b = append(b, `,"account_id":`...)
	b = AppendJSONString(b, s.AccountID)
	b = append(b, `,"inbox_id":`...)
	b = AppendJSONString(b, s.InboxID)
	b = append(b, `,"contact":`...)
	b = s.Contact.appendJSON(b)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, string(s.Status))
	b = append(b, `,"addressed":`...)
	b = strconv.AppendBool(b, s.Addressed)
	b = append(b, `,"assignee_id":`...)
	if s.AssigneeID == nil {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, *s.AssigneeID)
	}
	b = append(b, `,"tags":`...)
	if s.Tags == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONStrings(b, s.Tags)
	}
	b = append(b, `,"channel":`...)
	b = AppendJSONString(b, string(s.Channel))
	b = append(b, `,"last_message":`...)
	if m := s.LastMessage; m == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = AppendJSONString(b, m.ID)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, m.Seq, 10)
		b = append(b, `,"direction":`...)
		b = AppendJSONString(b, string(m.Direction))
		b = append(b, `,"kind":`...)
		b = AppendJSONString(b, string(m.Kind))
		b = append(b, `,"body":`...)
		b = AppendJSONString(b, m.Body)
		b = append(b, `,"created_at":`...)
		if b, err = appendJSONTime(b, m.CreatedAt); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	b = append(b, `,"last_activity_at":`...)
	if b, err = appendJSONTime(b, s.LastActivityAt); err != nil {
		return nil, err
	}
	b = append(b, `,"waiting_since":`...)
	if b, err = appendJSONTimePtr(b, s.WaitingSince); err != nil {
		return nil, err
	}
	b = append(b, `,"unread_count":`...)
	b = strconv.AppendInt(b, s.UnreadCount, 10)
	b = append(b, `,"active_call":`...)
	if c := s.ActiveCall; c == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"call_id":`...)
		b = AppendJSONString(b, c.CallID)
		b = append(b, `,"state":`...)
		b = AppendJSONString(b, string(c.State))
		b = append(b, '}')
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, s.Version, 10)
	b = append(b, `,"snooze_until":`...)
	if b, err = appendJSONTimePtr(b, s.SnoozeUntil); err != nil {
		return nil, err
	}
	b = append(b, `,"sla_due_at":`...)
	if b, err = appendJSONTimePtr(b, s.SLADueAt); err != nil {
		return nil, err
	}
	b = append(b, `,"sla_breached":`...)
	b = strconv.AppendBool(b, s.SLABreached)
	return append(b, '}'), nil
}

var errJSONYear = errors.New("conversation: time year outside of range [0,9999]")

// JSONSizeHint is a capacity in which the summary's JSON fits unless its
// strings need escaping: its strings and the frames around them
// (summaryFrames). A fixed guess fell short for most summaries, and every
// encoding then grew its buffer once more.
func (s *Summary) JSONSizeHint() int {
	n := summaryFrames.summary + len(s.ID) + len(s.AccountID) + len(s.InboxID) + len(s.Status) + len(s.Channel) +
		len(s.Contact.ID) + len(s.Contact.Phone) + len(s.Contact.Email) + len(s.Contact.Handle) + len(s.Contact.Name)
	if s.AssigneeID != nil {
		n += len(*s.AssigneeID)
	}
	for _, t := range s.Tags {
		n += len(t) + len(`"",`)
	}
	if m := s.LastMessage; m != nil {
		n += summaryFrames.lastMessage + len(m.ID) + len(m.Direction) + len(m.Kind) + len(m.Body)
	}
	if c := s.ActiveCall; c != nil {
		n += summaryFrames.activeCall + len(c.CallID) + len(c.State)
	}
	return n
}

// summaryFrames are the lengths of a summary's JSON without its strings'
// contents, at their largest (the longest numbers and times): the summary
// without a last message or an active call, and what each adds.
var summaryFrames = func() (f struct{ summary, lastMessage, activeCall int }) {
	at := time.Date(2000, 1, 1, 0, 0, 0, 999999999, time.FixedZone("", -(23*3600+59*60)))
	none := ""
	s := Summary{AssigneeID: &none, Tags: []string{}, LastActivityAt: at, WaitingSince: &at, SnoozeUntil: &at, SLADueAt: &at,
		UnreadCount: math.MinInt64, Version: math.MinInt64} // false encodes longer than true
	size := func() int {
		b, err := s.AppendJSON(nil)
		if err != nil {
			panic(err) // fixed values: fails in every test run, never later
		}
		return len(b)
	}
	f.summary = size()
	s.LastMessage = &LastMessage{Seq: math.MinInt64, CreatedAt: at}
	f.lastMessage = size() - f.summary
	s.LastMessage, s.ActiveCall = nil, &ActiveCall{}
	f.activeCall = size() - f.summary
	return f
}()

// appendJSONStrings writes a non-nil list of strings as a JSON array.
func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, t := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, t)
	}
	return append(b, ']')
}

// appendJSONTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, which refuses years it cannot write).
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, errJSONYear
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

func appendJSONTimePtr(b []byte, t *time.Time) ([]byte, error) {
	if t == nil {
		return append(b, "null"...), nil
	}
	return appendJSONTime(b, *t)
}

// AppendJSON appends the item's JSON to b, as encoding/json writes it from
// the field tags (TestItemJSONMatchesReference), but for one member: an
// inbound message always carries external_id, null when the integration
// sent none, since the API names it in every inbound message. An item is
// encoded once per message, beside its summary; Item.MarshalJSON is this
// too, so every encoding of an item is the same.
func (it *Item) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, it.ID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, it.Seq, 10)
	b = append(b, `,"direction":`...)
	b = AppendJSONString(b, string(it.Direction))
	b = append(b, `,"kind":`...)
	b = AppendJSONString(b, string(it.Kind))
	b = append(b, `,"channel":`...)
	b = AppendJSONString(b, string(it.Channel))
	b = append(b, `,"body":`...)
	b = AppendJSONString(b, it.Body)
	b = append(b, `,"created_at":`...)
	if b, err = appendJSONTime(b, it.CreatedAt); err != nil {
		return nil, err
	}
	if it.ExternalID == "" && it.Direction == Inbound && it.Kind == KindMessage {
		b = append(b, `,"external_id":null`...)
	}
	for _, f := range [...]struct{ key, v string }{
		{`,"external_id":`, it.ExternalID}, {`,"client_id":`, it.ClientID}, {`,"author_id":`, it.AuthorID},
		{`,"call_id":`, it.CallID}, {`,"state":`, string(it.State)},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = AppendJSONString(b, f.v)
		}
	}
	if it.DurationS != 0 {
		b = append(b, `,"duration_s":`...)
		b = strconv.AppendInt(b, it.DurationS, 10)
	}
	if it.RecordingURL != "" {
		b = append(b, `,"recording_url":`...)
		b = AppendJSONString(b, it.RecordingURL)
	}
	if !it.UpdatedAt.IsZero() {
		b = append(b, `,"updated_at":`...)
		if b, err = appendJSONTime(b, it.UpdatedAt); err != nil {
			return nil, err
		}
	}
	for _, f := range [...]struct{ key, v string }{
		{`,"status":`, string(it.Status)}, {`,"error_code":`, it.ErrorCode}, {`,"provider_message_id":`, it.ProviderMessageID},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = AppendJSONString(b, f.v)
		}
	}
	return append(b, '}'), nil
}

// MarshalJSON is AppendJSON.
func (it Item) MarshalJSON() ([]byte, error) {
	return it.AppendJSON(make([]byte, 0, it.JSONSizeHint()))
}

// JSONSizeHint is a capacity in which most items' JSON fits.
func (it *Item) JSONSizeHint() int {
	return 256 + len(it.Body) + len(it.RecordingURL)
}

// AppendJSON appends the event's JSON to b, exactly as encoding/json writes
// it from the field tags (TestEventJSONMatchesReference): the writer encodes
// every event once for the journal, and reflection was ~3% of a node's CPU
// at ingest.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"type":`...)
	b = AppendJSONString(b, string(e.Type))
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"at":`...)
	if b, err = appendJSONTime(b, e.At); err != nil {
		return nil, err
	}
	for _, f := range [...]struct{ key, v string }{
		{`,"idempotency_key":`, e.IdempotencyKey}, {`,"account_id":`, e.AccountID}, {`,"inbox_id":`, e.InboxID},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = AppendJSONString(b, f.v)
		}
	}
	if e.Contact != nil {
		b = append(b, `,"contact":`...)
		b = e.Contact.appendJSON(b)
	}
	if e.Item != nil {
		b = append(b, `,"item":`...)
		if b, err = e.Item.AppendJSON(b); err != nil {
			return nil, err
		}
	}
	if c := e.Change; c != nil {
		b = append(b, `,"change":`...)
		b = c.appendJSON(b)
	}
	if e.ActorID != "" {
		b = append(b, `,"actor_id":`...)
		b = AppendJSONString(b, e.ActorID)
	}
	if t := e.Timers; t != nil {
		b = append(b, `,"timers":`...)
		if b, err = t.appendJSON(b); err != nil {
			return nil, err
		}
	}
	if e.AssignPending != nil {
		b = append(b, `,"assign_pending":`...)
		b = strconv.AppendBool(b, *e.AssignPending)
	}
	if e.Summary != nil {
		b = append(b, `,"summary":`...)
		if b, err = e.Summary.AppendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// JSONSizeHint is a capacity in which most events' JSON fits, item and
// summary included.
func (e *Event) JSONSizeHint() int {
	n := 256
	if e.Item != nil {
		n += e.Item.JSONSizeHint()
	}
	if e.Summary != nil {
		n += e.Summary.JSONSizeHint()
	}
	return n
}

func (c *Change) appendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := ""
	if c.Status != nil {
		b = append(b, `"status":`...)
		b = AppendJSONString(b, string(*c.Status))
		sep = ","
	}
	if c.Addressed != nil {
		b = append(append(b, sep...), `"addressed":`...)
		b = strconv.AppendBool(b, *c.Addressed)
		sep = ","
	}
	if c.AssigneeID != nil {
		b = append(append(b, sep...), `"assignee_id":`...)
		b = AppendJSONString(b, *c.AssigneeID)
		sep = ","
	}
	for _, f := range [...]struct {
		key  string
		tags []string
	}{{`"tags_add":`, c.TagsAdd}, {`"tags_remove":`, c.TagsRemove}} {
		if len(f.tags) > 0 {
			b = append(append(b, sep...), f.key...)
			b = appendJSONStrings(b, f.tags)
			sep = ","
		}
	}
	return append(b, '}')
}

func (t *Timers) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	sep := ""
	if t.SnoozeUntil != nil {
		b = append(b, `"snooze_until":`...)
		if b, err = appendJSONTime(b, *t.SnoozeUntil); err != nil {
			return nil, err
		}
		sep = ","
	}
	if t.SLADueAt != nil {
		b = append(append(b, sep...), `"sla_due_at":`...)
		if b, err = appendJSONTime(b, *t.SLADueAt); err != nil {
			return nil, err
		}
		sep = ","
	}
	if t.SLABreached {
		b = append(append(b, sep...), `"sla_breached":true`...)
	}
	return append(b, '}'), nil
}
