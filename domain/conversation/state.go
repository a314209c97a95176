package conversation

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/domain/validate"
)

// Errors Decide returns. The gateway maps them onto API error codes.
var (
	ErrInvalid  = validate.ErrInvalid
	ErrNotFound = errors.New("conversation not found")
	ErrConflict = errors.New("version conflict")
)

// Bounds on what a state remembers, so that snapshots stay small however
// long the history: older keys are answered from PostgreSQL.
const (
	recentKeysKept = 256
	callsKept      = 256
	MaxBodyBytes   = validate.MaxBodyBytes
)

// State is everything the conversation actor holds in memory. It is saved as
// a snapshot (JSON) and rebuilt from snapshot + journal tail.
type State struct {
	Summary    Summary `json:"summary"`
	ContactKey string  `json:"contact_key"`
	// Calls maps a call_id to its timeline item, so that later events of the
	// call update that item in place.
	Calls []Item `json:"calls,omitempty"`
	// RecentKeys remembers the idempotency keys of the latest events, so a
	// command the cluster delivers twice is answered from the first event.
	RecentKeys []KeyRef `json:"recent_keys,omitempty"`
	// AssignPending: round-robin owes this conversation an assignment
	// (assign.go).
	AssignPending bool `json:"assign_pending,omitempty"`
	// ReopenedAt is when a status change last took the conversation out of
	// closed or pending (an agent reopening it, a snooze waking). Auto-close
	// counts idle time from it or the last activity, whichever is later: a
	// conversation reopened after a long silence is not closed again at once.
	ReopenedAt time.Time `json:"reopened_at,omitzero"`
}

// KeyRef ties an idempotency key to the version of the event it produced.
type KeyRef struct {
	Key     string `json:"key"`
	Version int64  `json:"version"`
	// ItemSeq is the seq of the item the event created or changed, 0 if none.
	ItemSeq int64 `json:"item_seq,omitempty"`
	// hash is keyHash(Key), 0 when unknown (a key restored from a
	// snapshot): SeenKey compares it before the key itself, so its scan
	// reads the slice alone instead of each key's bytes elsewhere in
	// memory (~2% of a node's CPU at ingest).
	hash uint64
}

// keyHash is 64-bit FNV-1a, never 0.
func keyHash(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h | 1
}

// Exists reports whether the conversation has any event.
func (s *State) Exists() bool { return s.Summary.Version > 0 }

// Version is the conversation's current version.
func (s *State) Version() int64 { return s.Summary.Version }

// SeenKey returns what the event a key produced, if remembered.
func (s *State) SeenKey(key string) (KeyRef, bool) {
	if key == "" {
		return KeyRef{}, false
	}
	h := keyHash(key)
	for _, k := range s.RecentKeys {
		if (k.hash == 0 || k.hash == h) && k.Key == key {
			return k, true
		}
	}
	return KeyRef{}, false
}

// ForgetsCalls reports whether the state has dropped calls from memory, so
// that a call it does not remember may still have an item.
func (s *State) ForgetsCalls() bool { return len(s.Calls) >= callsKept }

// Call returns the item of a call, if remembered.
func (s *State) Call(callID string) (Item, bool) {
	for _, c := range s.Calls {
		if c.CallID == callID {
			return c, true
		}
	}
	return Item{}, false
}

// Command is a request to change a conversation. Exactly one of the payload
// fields is set.
type Command struct {
	// IdempotencyKey makes the command safe to deliver twice.
	IdempotencyKey string
	AccountID      string
	InboxID        string
	// ActorID is the agent issuing the command ("" for an integration).
	ActorID string

	Inbound *InboundCommand
	Call    *CallCommand
	Reply   *ReplyCommand
	Update  *UpdateCommand
	Tick    *TickCommand
	Assign  *AssignCommand

	// Settings are the inbox's automation settings, which decide the
	// snooze and SLA fields of every event (automation.go).
	Settings Settings
	Status   *StatusCommand
}

// InboundCommand: the contact sent a message.
type InboundCommand struct {
	Contact    Contact
	Body       string
	Channel    Channel
	ExternalID string
}

// CallCommand: a call event from the telephony integration.
type CallCommand struct {
	Contact      Contact
	CallID       string
	State        CallState
	DurationS    int64
	RecordingURL string
	// Earlier is the call's item as PostgreSQL holds it, read by the actor
	// when the state no longer remembers the call (ForgetsCalls): a call
	// stays one item however many came after it.
	Earlier *Item
}

// ReplyCommand: a reply or an internal note.
type ReplyCommand struct {
	Body     string
	Kind     ItemKind // KindMessage or KindNote
	ClientID string
	// IfVersion, when set, must equal the current version: the agent
	// drafted against that version.
	IfVersion *int64
}

// UpdateCommand changes status, addressed, assignee or tags. IfVersion, when
// set, must equal the current version.
type UpdateCommand struct {
	Change
	IfVersion *int64
	// Snooze, when set, sets (Until) or clears snooze_until.
	Snooze *SnoozeRequest
}

// Decide validates cmd against s and returns the event it produces, with
// Version = s.Version()+1. It returns (nil, nil) when the command changes
// nothing (an update to the values already held). newID makes item ids.
func Decide(s *State, cmd Command, now time.Time, newID func() string) (*Event, error) {
	// PostgreSQL keeps microseconds: a time read back (a search hit's
	// created_at) must equal the one answered.
	now = now.UTC().Truncate(time.Microsecond)
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	ev, err := decide(s, cmd, now, newID)
	if ev == nil || err != nil {
		return ev, err
	}
	// One look at the state after ev serves both: assignment reads none of
	// the timer fields that finishTimers may add to ev.
	after := &Next(s, ev).Summary
	finishTimers(ev, after, cmd, now)
	finishAssign(s, ev, after, cmd)
	if ev.Type == EventUpdate && ev.Change.empty() && ev.Timers == nil && ev.AssignPending == nil {
		return nil, nil // a tick or snooze that changes nothing
	}
	return ev, nil
}

func decide(s *State, cmd Command, now time.Time, newID func() string) (*Event, error) {
	ev := &Event{Version: s.Version() + 1, At: now, IdempotencyKey: cmd.IdempotencyKey, ActorID: cmd.ActorID}
	switch {
	case cmd.Inbound != nil:
		c := cmd.Inbound
		ch := c.Channel
		if ch == "" {
			ch = defaultChannel(c.Contact)
		}
		ev.Type = EventInbound
		identify(s, ev, cmd, c.Contact)
		ev.Item = &Item{ID: newID(), Seq: ev.Version, Direction: Inbound, Kind: KindMessage, Channel: ch,
			Body: c.Body, CreatedAt: now, ExternalID: c.ExternalID}
	case cmd.Call != nil:
		c := cmd.Call
		ev.Type = EventCall
		identify(s, ev, cmd, c.Contact)
		item, ok := s.Call(c.CallID)
		if !ok && c.Earlier != nil {
			item, ok = *c.Earlier, true
		}
		if !ok {
			item = Item{ID: newID(), Seq: ev.Version, Direction: Inbound, Kind: KindCall, Channel: ChannelVoice,
				CreatedAt: now, CallID: c.CallID}
		}
		// Telephony events arrive late and out of order: a ringing after
		// the hang-up would show an ended call as active for good. Such an
		// event is still activity (docs/api.md: every call event is), but
		// the call stays as it is.
		if !ok || c.State.stage() >= item.State.stage() {
			item.State = c.State
			if c.DurationS > 0 {
				item.DurationS = c.DurationS
			}
			if c.RecordingURL != "" {
				item.RecordingURL = c.RecordingURL
			}
			item.Body = callBody(item)
			item.UpdatedAt = now
		}
		ev.Item = &item
	case cmd.Reply != nil:
		c := cmd.Reply
		if !s.Exists() {
			return nil, ErrNotFound
		}
		if c.IfVersion != nil && *c.IfVersion != s.Version() {
			return nil, fmt.Errorf("%w: if_version %d, current version %d", ErrConflict, *c.IfVersion, s.Version())
		}
		kind := c.Kind
		if kind == "" {
			kind = KindMessage
		}
		if err := checkConsent(s, kind); err != nil {
			return nil, err
		}
		ev.Type = EventOutbound
		ev.Item = &Item{ID: newID(), Seq: ev.Version, Direction: Outbound, Kind: kind, Channel: replyChannel(&s.Summary),
			Body: c.Body, CreatedAt: now, ClientID: c.ClientID, AuthorID: cmd.ActorID}
		if kind == KindMessage {
			ev.Item.Status = DeliveryPending
		}
	case cmd.Update != nil:
		c := cmd.Update
		if !s.Exists() {
			return nil, ErrNotFound
		}
		if c.IfVersion != nil && *c.IfVersion != s.Version() {
			return nil, fmt.Errorf("%w: if_version %d, current version %d", ErrConflict, *c.IfVersion, s.Version())
		}
		if err := validateSnooze(s, c, now); err != nil {
			return nil, err
		}
		change := effectiveChange(&s.Summary, c.Change)
		if change == nil {
			if c.Snooze == nil {
				return nil, nil
			}
			change = &Change{} // the snooze alone; Decide drops it if it changes nothing
		}
		// Only growth is refused: a conversation tagged before the limit
		// existed can still shed tags.
		if n := len(s.Summary.Tags) + len(change.TagsAdd) - len(change.TagsRemove); len(change.TagsAdd) > 0 && n > validate.MaxTags {
			return nil, &validate.Error{Field: "tags_add", Reason: fmt.Sprintf("would give the conversation %d tags; at most %d", n, validate.MaxTags)}
		}
		ev.Type = EventUpdate
		ev.Change = change
	case cmd.Tick != nil:
		if !s.Exists() {
			return nil, ErrNotFound
		}
		ev.Type = EventUpdate
		ev.Change = decideTick(s, cmd.Settings, now)
		ev.ActorID = ActorAutomation
	case cmd.Status != nil:
		return decideStatus(s, ev, cmd.Status, now)
	case cmd.Assign != nil:
		return decideAssign(s, ev, cmd.Assign)
	}
	return ev, nil
}

// identify puts the conversation's identity on its first event, and the
// contact on any event that renames it.
func identify(s *State, ev *Event, cmd Command, c Contact) {
	if !s.Exists() {
		ev.AccountID, ev.InboxID = cmd.AccountID, cmd.InboxID
		c.ID = ContactID(cmd.InboxID, ContactKey(c))
		ev.Contact = &c
		return
	}
	if c.Name != "" && c.Name != s.Summary.Contact.Name {
		named := s.Summary.Contact
		named.Name = c.Name
		ev.Contact = &named
	}
}

// replyChannel is the channel a reply reaches the contact on: the
// conversation's, unless that is a call's, which carries no message; then
// the contact's own (an SMS to a phone).
func replyChannel(sum *Summary) Channel {
	if sum.Channel == ChannelVoice {
		return defaultChannel(sum.Contact)
	}
	return sum.Channel
}

func defaultChannel(c Contact) Channel {
	switch {
	case c.Phone != "":
		return ChannelSMS
	case c.Email != "":
		return ChannelEmail
	default:
		return ChannelChat
	}
}

func callBody(it Item) string {
	switch it.State {
	case CallRinging:
		return "Incoming call"
	case CallInProgress:
		return "Call in progress"
	case CallCompleted:
		if it.DurationS > 0 {
			return fmt.Sprintf("Call completed (%ds)", it.DurationS)
		}
		return "Call completed"
	case CallMissed:
		return "Missed call"
	default:
		return "Voicemail"
	}
}

// effectiveChange drops the parts of c that would change nothing; nil when
// nothing is left.
func effectiveChange(s *Summary, c Change) *Change {
	var out Change
	if c.Status != nil && *c.Status != s.Status {
		out.Status = c.Status
	}
	if c.Addressed != nil && *c.Addressed != s.Addressed {
		out.Addressed = c.Addressed
	}
	if c.AssigneeID != nil {
		cur := ""
		if s.AssigneeID != nil {
			cur = *s.AssigneeID
		}
		if *c.AssigneeID != cur {
			out.AssigneeID = c.AssigneeID
		}
	}
	for _, t := range c.TagsAdd {
		if !slices.Contains(s.Tags, t) && !slices.Contains(out.TagsAdd, t) {
			out.TagsAdd = append(out.TagsAdd, t)
		}
	}
	for _, t := range c.TagsRemove {
		if slices.Contains(s.Tags, t) && !slices.Contains(out.TagsRemove, t) {
			out.TagsRemove = append(out.TagsRemove, t)
		}
	}
	if out.Status == nil && out.Addressed == nil && out.AssigneeID == nil && out.TagsAdd == nil && out.TagsRemove == nil {
		return nil
	}
	return &out
}

// Apply changes s into the state after ev: Next's changes and Remember's.
// It panics on a version that does not follow the state's: that would be a
// forked history, which the fencing in PostgreSQL exists to prevent.
func Apply(s *State, ev *Event) {
	advance(s, ev)
	Remember(s, ev)
}

// Next returns the state after ev, less what Remember adds, and leaves s
// as it is: an actor commits ev before it holds the result, and the
// decisions probe what an event would do. Copying the remembered calls and
// keys (up to 256 each) for every command cost more than the rest of it,
// so the result shares them with s; Remember on the result, once ev is
// committed, changes what they share, and s is dropped from then on.
func Next(s *State, ev *Event) *State {
	out := *s
	out.Summary = s.Summary.Clone()
	advance(&out, ev)
	return &out
}

// Remember adds ev's call and idempotency key to the state's bounded
// memory of them (see Next).
func Remember(s *State, ev *Event) {
	if ev.Type == EventCall {
		s.Calls = rememberCall(s.Calls, *ev.Item)
	}
	if ev.IdempotencyKey != "" {
		ref := KeyRef{Key: ev.IdempotencyKey, Version: ev.Version, hash: keyHash(ev.IdempotencyKey)}
		if ev.Item != nil {
			ref.ItemSeq = ev.Item.Seq
		}
		s.RecentKeys = append(s.RecentKeys, ref)
		if len(s.RecentKeys) > recentKeysKept {
			s.RecentKeys = slices.Delete(s.RecentKeys, 0, len(s.RecentKeys)-recentKeysKept)
		}
	}
}

// advance applies ev to everything but the remembered calls and keys.
func advance(s *State, ev *Event) {
	if ev.Version != s.Version()+1 {
		panic(fmt.Sprintf("conversation: event version %d applied to state at version %d", ev.Version, s.Version()))
	}
	sum := &s.Summary
	if ev.AccountID != "" {
		sum.AccountID, sum.InboxID = ev.AccountID, ev.InboxID
	}
	if ev.Contact != nil {
		if !s.Exists() {
			sum.ID = ID(sum.InboxID, ContactKey(*ev.Contact))
			s.ContactKey = ContactKey(*ev.Contact)
			sum.Status = StatusNew
			sum.Tags = []string{}
		}
		sum.Contact = *ev.Contact
	}
	switch ev.Type {
	case EventInbound:
		reopen(sum)
		markWaiting(sum, ev.At)
		sum.UnreadCount++
		sum.Channel = ev.Item.Channel
		sum.LastActivityAt = ev.At
		sum.LastMessage = lastMessage(ev.Item)
		applyConsent(sum, ev.Item)
	case EventOutbound:
		if ev.Item.Kind == KindMessage {
			if sum.Status == StatusNew {
				sum.Status = StatusOpen
			}
			sum.Addressed, sum.WaitingSince, sum.UnreadCount = true, nil, 0
		}
		sum.LastActivityAt = ev.At
		sum.LastMessage = lastMessage(ev.Item)
	case EventCall:
		it := *ev.Item
		// A call's first event creates its item at this version; later
		// ones update it where it is.
		if it.Seq == ev.Version {
			// A new call is the contact reaching out: it needs an answer.
			reopen(sum)
			markWaiting(sum, ev.At)
			sum.UnreadCount++
			sum.Channel = ChannelVoice
		}
		// An event that moved the call stamps it with its time; a late one
		// (a step back) leaves the call, and which call shows as active,
		// as they were.
		switch moved := it.UpdatedAt.Equal(ev.At); {
		case !moved:
		case it.State.Active():
			sum.ActiveCall = &ActiveCall{CallID: it.CallID, State: it.State}
		case sum.ActiveCall != nil && sum.ActiveCall.CallID == it.CallID:
			sum.ActiveCall = latestActiveCall(s.Calls, it.CallID)
		}
		sum.LastActivityAt = ev.At
		if sum.LastMessage == nil || it.Seq >= sum.LastMessage.Seq {
			// An older call updated in place stays where it is in the
			// timeline: the preview remains the newest item.
			sum.LastMessage = lastMessage(&it)
		}
	case EventUpdate:
		c := ev.Change
		if c.Status != nil {
			if (sum.Status == StatusClosed || sum.Status == StatusPending) && (*c.Status == StatusOpen || *c.Status == StatusNew) {
				s.ReopenedAt = ev.At
			}
			sum.Status = *c.Status
		}
		if c.Addressed != nil {
			if *c.Addressed {
				sum.Addressed, sum.WaitingSince = true, nil
			} else {
				markWaiting(sum, ev.At)
			}
		}
		if c.AssigneeID != nil {
			if *c.AssigneeID == "" {
				sum.AssigneeID = nil
			} else {
				id := *c.AssigneeID
				sum.AssigneeID = &id
			}
		}
		if len(c.TagsAdd) > 0 || len(c.TagsRemove) > 0 {
			tags := slices.DeleteFunc(slices.Clone(sum.Tags), func(t string) bool { return slices.Contains(c.TagsRemove, t) })
			for _, t := range c.TagsAdd {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
			slices.Sort(tags)
			sum.Tags = tags
		}
	}
	if ev.Timers != nil {
		applyTimers(sum, ev.Timers)
	}
	if ev.AssignPending != nil {
		s.AssignPending = *ev.AssignPending
	}
	sum.Version = ev.Version
}

func reopen(sum *Summary) {
	if sum.Status == StatusClosed || sum.Status == StatusPending {
		sum.Status = StatusOpen
	}
}

func markWaiting(sum *Summary, at time.Time) {
	sum.Addressed = false
	if sum.WaitingSince == nil {
		t := at
		sum.WaitingSince = &t
	}
}

func lastMessage(it *Item) *LastMessage {
	return &LastMessage{ID: it.ID, Seq: it.Seq, Direction: it.Direction, Kind: it.Kind, Body: it.Body, CreatedAt: it.CreatedAt}
}

// latestActiveCall is the most recently updated call of calls, other than
// ended, that is still ringing or in progress: the one the summary shows
// once the call it showed has ended (nil when none is).
func latestActiveCall(calls []Item, ended string) *ActiveCall {
	for i := len(calls) - 1; i >= 0; i-- {
		if c := calls[i]; c.CallID != ended && c.State.Active() {
			return &ActiveCall{CallID: c.CallID, State: c.State}
		}
	}
	return nil
}

func rememberCall(calls []Item, it Item) []Item {
	calls = slices.DeleteFunc(calls, func(c Item) bool { return c.CallID == it.CallID })
	calls = append(calls, it)
	if len(calls) > callsKept {
		calls = slices.Delete(calls, 0, len(calls)-callsKept)
	}
	return calls
}

// Clone returns a deep copy of the summary, safe to hand to another goroutine.
func (s Summary) Clone() Summary {
	out := s
	out.Tags = slices.Clone(s.Tags)
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if s.AssigneeID != nil {
		v := *s.AssigneeID
		out.AssigneeID = &v
	}
	if s.LastMessage != nil {
		v := *s.LastMessage
		out.LastMessage = &v
	}
	if s.WaitingSince != nil {
		v := *s.WaitingSince
		out.WaitingSince = &v
	}
	if s.ActiveCall != nil {
		v := *s.ActiveCall
		out.ActiveCall = &v
	}
	out.SnoozeUntil, out.SLADueAt = cloneTime(s.SnoozeUntil), cloneTime(s.SLADueAt)
	return out
}
