package conversation

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// machine drives the state machine the way the actor does: Decide, then
// Apply on a clone, then swap.
type machine struct {
	t   *testing.T
	s   *State
	now time.Time
	ids int
}

func newMachine(t *testing.T) *machine {
	return &machine{t: t, s: &State{}, now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (m *machine) newID() string { m.ids++; return fmt.Sprintf("it_%d", m.ids) }

// tick moves the clock so that times are distinguishable.
func (m *machine) tick() time.Time { m.now = m.now.Add(time.Second); return m.now }

// decide runs Decide without applying; it checks that Decide did not touch
// the state.
func (m *machine) decide(cmd Command) (*Event, error) {
	m.t.Helper()
	before, _ := json.Marshal(m.s)
	ev, err := Decide(m.s, cmd, m.tick(), m.newID)
	if after, _ := json.Marshal(m.s); string(after) != string(before) {
		m.t.Fatalf("Decide mutated the state:\nbefore %s\nafter  %s", before, after)
	}
	return ev, err
}

// run decides and applies cmd, checking the version discipline; it fails
// the test on an error.
func (m *machine) run(cmd Command) *Event {
	m.t.Helper()
	ev, err := m.decide(cmd)
	if err != nil {
		m.t.Fatalf("Decide(%+v): %v", cmd, err)
	}
	if ev == nil {
		m.t.Fatalf("Decide(%+v): nil event, want one", cmd)
	}
	m.apply(ev)
	return ev
}

func (m *machine) apply(ev *Event) {
	m.t.Helper()
	v := m.s.Version()
	if ev.Version != v+1 {
		m.t.Fatalf("event version %d, state at %d: want %d", ev.Version, v, v+1)
	}
	// The actor's path (Next, commit, Remember) must leave the state before
	// untouched until Remember and end where Apply does.
	before := mustJSON(m.t, m.s)
	next := Next(m.s, ev)
	if after := mustJSON(m.t, m.s); after != before {
		m.t.Fatalf("Next changed the state it started from:\nbefore %s\nafter  %s", before, after)
	}
	want := clone(m.s)
	Apply(want, ev)
	Remember(next, ev)
	if got, w := mustJSON(m.t, next), mustJSON(m.t, want); got != w {
		m.t.Fatalf("Next then Remember differs from Apply:\n got %s\nwant %s", got, w)
	}
	if next.Version() != v+1 || next.Summary.Version != ev.Version {
		m.t.Fatalf("after Apply version %d, want %d", next.Version(), v+1)
	}
	m.s = next
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clone returns a deep copy of s.
func clone(s *State) *State {
	out := *s
	out.Summary = s.Summary.Clone()
	out.Calls = slices.Clone(s.Calls)
	out.RecentKeys = slices.Clone(s.RecentKeys)
	return &out
}

const (
	acct  = "acc_1"
	inbx  = "ib_1"
	phone = "+14155550123"
)

func inbound(body string) Command {
	return Command{AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{Contact: Contact{Phone: phone}, Body: body}}
}

func reply(body string, kind ItemKind) Command {
	return Command{AccountID: acct, InboxID: inbx, ActorID: "ag_1", Reply: &ReplyCommand{Body: body, Kind: kind}}
}

func call(id string, st CallState, dur int64) Command {
	return Command{AccountID: acct, InboxID: inbx, Call: &CallCommand{Contact: Contact{Phone: phone}, CallID: id, State: st, DurationS: dur}}
}

func update(c Change) Command {
	return Command{AccountID: acct, InboxID: inbx, Update: &UpdateCommand{Change: c}}
}

func ptr[T any](v T) *T { return &v }

func TestInboundCreatesConversation(t *testing.T) {
	m := newMachine(t)
	ev := m.run(Command{IdempotencyKey: "k1", AccountID: acct, InboxID: inbx,
		Inbound: &InboundCommand{Contact: Contact{Phone: phone, Name: "Ann"}, Body: "hello", ExternalID: "ext-1"}})
	if ev.Type != EventInbound || ev.Version != 1 || ev.AccountID != acct || ev.InboxID != inbx || ev.Contact == nil {
		t.Fatalf("first event: %+v", ev)
	}
	it := ev.Item
	if it == nil || it.ID != "it_1" || it.Seq != 1 || it.Direction != Inbound || it.Kind != KindMessage ||
		it.Channel != ChannelSMS || it.Body != "hello" || it.ExternalID != "ext-1" || !it.CreatedAt.Equal(m.now) {
		t.Fatalf("item: %+v", it)
	}
	sum := m.s.Summary
	key := ContactKey(Contact{Phone: phone})
	if sum.ID != ID(inbx, key) || sum.AccountID != acct || sum.InboxID != inbx {
		t.Fatalf("identity: %+v", sum)
	}
	if sum.Contact.ID != ContactID(inbx, key) || sum.Contact.Phone != phone || sum.Contact.Name != "Ann" {
		t.Fatalf("contact: %+v", sum.Contact)
	}
	if sum.Status != StatusNew || sum.Addressed || sum.AssigneeID != nil || sum.Tags == nil || len(sum.Tags) != 0 {
		t.Fatalf("status/addressed/assignee/tags: %+v", sum)
	}
	if sum.WaitingSince == nil || !sum.WaitingSince.Equal(m.now) || sum.UnreadCount != 1 || !sum.LastActivityAt.Equal(m.now) {
		t.Fatalf("waiting/unread/activity: %+v", sum)
	}
	if sum.Channel != ChannelSMS || sum.ActiveCall != nil || sum.Version != 1 {
		t.Fatalf("channel/active_call/version: %+v", sum)
	}
	lm := sum.LastMessage
	if lm == nil || lm.ID != it.ID || lm.Seq != 1 || lm.Direction != Inbound || lm.Kind != KindMessage || lm.Body != "hello" {
		t.Fatalf("last_message: %+v", lm)
	}
	if ref, ok := m.s.SeenKey("k1"); !ok || ref.Version != 1 || ref.ItemSeq != 1 {
		t.Fatalf("SeenKey(k1) = %+v, %v", ref, ok)
	}
	if _, ok := m.s.SeenKey(""); ok {
		t.Fatal("the empty key must never be seen")
	}

	// A second message keeps waiting_since (the wait began with the first),
	// counts unread, and does not repeat the identity.
	first := *sum.WaitingSince
	ev = m.run(Command{AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{Contact: Contact{Phone: phone}, Body: "anyone?"}})
	if ev.AccountID != "" || ev.Contact != nil {
		t.Fatalf("second event repeats identity: %+v", ev)
	}
	sum = m.s.Summary
	if !sum.WaitingSince.Equal(first) || sum.UnreadCount != 2 || sum.Contact.Name != "Ann" || sum.LastMessage.Seq != 2 {
		t.Fatalf("after second inbound: %+v", sum)
	}
	// A new display name renames the contact, keeping its id.
	ev = m.run(Command{AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{Contact: Contact{Phone: phone, Name: "Annie"}, Body: "it's me"}})
	if ev.Contact == nil || m.s.Summary.Contact.Name != "Annie" || m.s.Summary.Contact.ID != ContactID(inbx, key) {
		t.Fatalf("rename: %+v / %+v", ev.Contact, m.s.Summary.Contact)
	}
}

func TestInboundChannels(t *testing.T) {
	cases := []struct {
		contact Contact
		channel Channel
		want    Channel
		err     bool
	}{
		{Contact{Phone: phone}, "", ChannelSMS, false},
		{Contact{Email: "a@example.com"}, "", ChannelEmail, false},
		{Contact{Handle: "visitor-1"}, "", ChannelChat, false},
		{Contact{Phone: phone}, ChannelChat, ChannelChat, false},
		{Contact{Handle: "v"}, ChannelEmail, ChannelEmail, false},
		{Contact{Phone: phone}, ChannelVoice, "", true},
		{Contact{Phone: phone}, "fax", "", true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", ContactKey(c.contact), c.channel), func(t *testing.T) {
			m := newMachine(t)
			ev, err := m.decide(Command{AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{Contact: c.contact, Body: "x", Channel: c.channel}})
			if c.err {
				if !errors.Is(err, ErrInvalid) || ev != nil {
					t.Fatalf("got %v, %v; want ErrInvalid", ev, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m.apply(ev)
			if ev.Item.Channel != c.want || m.s.Summary.Channel != c.want {
				t.Fatalf("channel %q / %q, want %q", ev.Item.Channel, m.s.Summary.Channel, c.want)
			}
		})
	}
}

func TestBodyLimits(t *testing.T) {
	cases := []struct {
		name string
		body string
		ok   bool
	}{
		{"empty", "", false},
		{"one byte", "x", true},
		{"exactly 16 KiB", strings.Repeat("x", MaxBodyBytes), true},
		{"16 KiB + 1", strings.Repeat("x", MaxBodyBytes+1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t)
			_, err := m.decide(inbound(c.body))
			if (err == nil) != c.ok {
				t.Fatalf("inbound: %v, want ok=%v", err, c.ok)
			}
			m.run(inbound("first"))
			_, err = m.decide(reply(c.body, KindMessage))
			if (err == nil) != c.ok {
				t.Fatalf("reply: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestCommandsOnMissingConversation(t *testing.T) {
	m := newMachine(t)
	for name, cmd := range map[string]Command{
		"reply":  reply("hi", KindMessage),
		"note":   reply("hi", KindNote),
		"update": update(Change{Status: ptr(StatusClosed)}),
	} {
		if ev, err := m.decide(cmd); !errors.Is(err, ErrNotFound) || ev != nil {
			t.Errorf("%s on an empty conversation: %v, %v; want ErrNotFound", name, ev, err)
		}
	}
	if ev, err := m.decide(Command{AccountID: acct, InboxID: inbx}); !errors.Is(err, ErrInvalid) || ev != nil {
		t.Errorf("empty command: %v, %v; want ErrInvalid", ev, err)
	}
	if m.s.Exists() {
		t.Fatal("state exists after failed commands")
	}
}

func TestReplyMarksAddressedNoteDoesNot(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hello"))
	m.run(inbound("hello?"))
	waiting := *m.s.Summary.WaitingSince

	// A note: an outbound item, but the contact is still waiting.
	ev := m.run(reply("internal: VIP customer", KindNote))
	if ev.Type != EventOutbound || ev.Item.Kind != KindNote || ev.Item.Direction != Outbound || ev.Item.AuthorID != "ag_1" || ev.Item.Seq != 3 {
		t.Fatalf("note event: %+v / %+v", ev, ev.Item)
	}
	sum := m.s.Summary
	if sum.Addressed || sum.WaitingSince == nil || !sum.WaitingSince.Equal(waiting) || sum.UnreadCount != 2 || sum.Status != StatusNew {
		t.Fatalf("a note changed addressed/waiting/unread/status: %+v", sum)
	}
	if !sum.LastActivityAt.Equal(m.now) {
		t.Fatalf("a note is activity: last_activity_at %v, want %v", sum.LastActivityAt, m.now)
	}

	// A reply (kind defaults to message).
	ev = m.run(reply("we're on it", ""))
	if ev.Item.Kind != KindMessage || ev.Item.Channel != ChannelSMS || ev.Item.Direction != Outbound {
		t.Fatalf("reply item: %+v", ev.Item)
	}
	sum = m.s.Summary
	if !sum.Addressed || sum.WaitingSince != nil || sum.UnreadCount != 0 || sum.Status != StatusOpen {
		t.Fatalf("after reply: %+v", sum)
	}
	if sum.LastMessage.Direction != Outbound || sum.LastMessage.Seq != 4 || sum.LastMessage.Body != "we're on it" {
		t.Fatalf("last_message after reply: %+v", sum.LastMessage)
	}

	// The contact speaks again: unaddressed, a new wait begins now.
	m.run(inbound("thanks, but"))
	sum = m.s.Summary
	if sum.Addressed || sum.WaitingSince == nil || !sum.WaitingSince.Equal(m.now) || sum.UnreadCount != 1 {
		t.Fatalf("after inbound following a reply: %+v", sum)
	}

	if _, err := m.decide(reply("x", KindCall)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reply of kind call: %v, want ErrInvalid", err)
	}
	if _, err := m.decide(reply("x", "sticker")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reply of kind sticker: %v, want ErrInvalid", err)
	}
}

func TestReopenOnInbound(t *testing.T) {
	for _, st := range []Status{StatusClosed, StatusPending} {
		t.Run(string(st), func(t *testing.T) {
			m := newMachine(t)
			m.run(inbound("hello"))
			m.run(reply("done", KindMessage))
			m.run(update(Change{Status: ptr(st)}))
			if m.s.Summary.Status != st {
				t.Fatalf("status %q, want %q", m.s.Summary.Status, st)
			}
			m.run(inbound("one more thing"))
			if m.s.Summary.Status != StatusOpen || m.s.Summary.Addressed {
				t.Fatalf("after inbound: status %q addressed %v; want open, false", m.s.Summary.Status, m.s.Summary.Addressed)
			}
		})
	}
	// A new call reopens too.
	m := newMachine(t)
	m.run(inbound("hello"))
	m.run(update(Change{Status: ptr(StatusClosed)}))
	m.run(call("c1", CallRinging, 0))
	if m.s.Summary.Status != StatusOpen {
		t.Fatalf("after a new call: status %q, want open", m.s.Summary.Status)
	}
	// A new conversation's status stays new under inbound.
	m = newMachine(t)
	m.run(inbound("a"))
	m.run(inbound("b"))
	if m.s.Summary.Status != StatusNew {
		t.Fatalf("status %q, want new", m.s.Summary.Status)
	}
}

func TestCallItemUpdatedInPlace(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hello"))
	m.run(reply("hi", KindMessage))

	ring := m.run(call("c1", CallRinging, 0))
	if ring.Type != EventCall || ring.Version != 3 {
		t.Fatalf("ringing event: %+v", ring)
	}
	it := *ring.Item
	if it.Kind != KindCall || it.Seq != 3 || it.CallID != "c1" || it.State != CallRinging || it.Channel != ChannelVoice ||
		it.Direction != Inbound || it.Body != "Incoming call" || it.ID == "" {
		t.Fatalf("ringing item: %+v", it)
	}
	sum := m.s.Summary
	if sum.ActiveCall == nil || *sum.ActiveCall != (ActiveCall{CallID: "c1", State: CallRinging}) {
		t.Fatalf("active_call while ringing: %+v", sum.ActiveCall)
	}
	if sum.Addressed || sum.UnreadCount != 1 || sum.Channel != ChannelVoice || !sum.LastActivityAt.Equal(m.now) {
		t.Fatalf("a new call needs an answer: %+v", sum)
	}
	if sum.LastMessage == nil || sum.LastMessage.Kind != KindCall || sum.LastMessage.Seq != 3 {
		t.Fatalf("last_message after ringing: %+v", sum.LastMessage)
	}
	if c, ok := m.s.Call("c1"); !ok || c.ID != it.ID {
		t.Fatalf("Call(c1) = %+v, %v", c, ok)
	}
	// No message travels on a call: a reply now goes by SMS to the phone.
	if ev, err := m.decide(reply("call me back?", KindMessage)); err != nil || ev.Item.Channel != ChannelSMS {
		t.Fatalf("reply after a call: %+v, %v; want channel sms", ev, err)
	}

	prog := m.run(call("c1", CallInProgress, 0))
	if prog.Version != 4 || prog.Item.ID != it.ID || prog.Item.Seq != 3 || prog.Item.State != CallInProgress ||
		!prog.Item.CreatedAt.Equal(it.CreatedAt) || !prog.Item.UpdatedAt.Equal(m.now) || prog.Item.Body != "Call in progress" {
		t.Fatalf("in-progress item: %+v (first %+v)", prog.Item, it)
	}
	sum = m.s.Summary
	if sum.ActiveCall == nil || sum.ActiveCall.State != CallInProgress || sum.UnreadCount != 1 || !sum.LastActivityAt.Equal(m.now) {
		t.Fatalf("summary in progress: %+v", sum)
	}

	done := m.run(Command{AccountID: acct, InboxID: inbx, Call: &CallCommand{Contact: Contact{Phone: phone}, CallID: "c1",
		State: CallCompleted, DurationS: 42, RecordingURL: "https://rec.example.com/c1.mp3"}})
	if done.Version != 5 || done.Item.ID != it.ID || done.Item.Seq != 3 || done.Item.State != CallCompleted ||
		done.Item.DurationS != 42 || done.Item.RecordingURL != "https://rec.example.com/c1.mp3" || done.Item.Body != "Call completed (42s)" {
		t.Fatalf("completed item: %+v", done.Item)
	}
	sum = m.s.Summary
	if sum.ActiveCall != nil || sum.Version != 5 || !sum.LastActivityAt.Equal(m.now) || sum.LastMessage.Seq != 3 {
		t.Fatalf("summary after completed: %+v", sum)
	}
	if len(m.s.Calls) != 1 {
		t.Fatalf("calls remembered: %d, want 1", len(m.s.Calls))
	}
	// A later event without duration keeps the one already known.
	again := m.run(call("c1", CallVoicemail, 0))
	if again.Item.DurationS != 42 || again.Item.RecordingURL == "" || again.Item.Seq != 3 {
		t.Fatalf("a later event lost call fields: %+v", again.Item)
	}
}

func TestActiveCallTracksTheLiveCall(t *testing.T) {
	m := newMachine(t)
	m.run(call("a", CallRinging, 0))
	if m.s.Summary.Status != StatusNew || m.s.Summary.Channel != ChannelVoice {
		t.Fatalf("a call opens a conversation: %+v", m.s.Summary)
	}
	none := ActiveCall{}
	for i, st := range []struct {
		call  string
		state CallState
		want  ActiveCall
	}{
		{"b", CallRinging, ActiveCall{"b", CallRinging}},
		{"a", CallMissed, ActiveCall{"b", CallRinging}}, // not the one shown
		{"b", CallMissed, none},
		{"c", CallVoicemail, none}, // starts and ends in one event
		// Two live calls: when the one shown ends, the other still live shows.
		{"d", CallInProgress, ActiveCall{"d", CallInProgress}},
		{"e", CallRinging, ActiveCall{"e", CallRinging}},
		{"e", CallMissed, ActiveCall{"d", CallInProgress}},
		{"d", CallCompleted, none},
	} {
		m.run(call(st.call, st.state, 0))
		got := none
		if ac := m.s.Summary.ActiveCall; ac != nil {
			got = *ac
		}
		if got != st.want {
			t.Fatalf("step %d (%s %s): active_call %+v, want %+v", i, st.call, st.state, got, st.want)
		}
		if i == 2 && m.s.Summary.UnreadCount != 2 {
			t.Fatalf("unread %d, want 2 (one per call, not per call event)", m.s.Summary.UnreadCount)
		}
	}
}

// TestLateCallEventsAreActivityOnly: a call event that is not a step
// forward is still activity (docs/api.md: every call event is), but the
// call stays as it is.
func TestLateCallEventsAreActivityOnly(t *testing.T) {
	m := newMachine(t)
	m.run(call("a", CallRinging, 0))
	m.run(call("a", CallInProgress, 0))
	late := func(st CallState, want CallState) {
		t.Helper()
		before := m.s.Summary.LastActivityAt
		ev := m.run(call("a", st, 0))
		if ev.Item.State != want {
			t.Fatalf("%s late: the call is %s, want %s", st, ev.Item.State, want)
		}
		if !m.s.Summary.LastActivityAt.After(before) {
			t.Fatalf("%s late: last_activity_at %v did not move from %v", st, m.s.Summary.LastActivityAt, before)
		}
	}
	late(CallRinging, CallInProgress)
	if a := m.s.Summary.ActiveCall; a == nil || a.State != CallInProgress {
		t.Fatalf("active_call %+v, want in_progress", a)
	}
	m.run(call("a", CallMissed, 0))
	// One ended state to another is news (a missed call, then a voicemail
	// left); an ended call never rings again.
	m.run(call("a", CallVoicemail, 12))
	late(CallRinging, CallVoicemail)
	late(CallInProgress, CallVoicemail)
	if m.s.Summary.ActiveCall != nil {
		t.Fatalf("active_call %+v after the call ended", m.s.Summary.ActiveCall)
	}
	if c, _ := m.s.Call("a"); c.State != CallVoicemail || c.DurationS != 12 {
		t.Fatalf("call %+v, want voicemail of 12 s", c)
	}
	if m.s.Summary.UnreadCount != 1 {
		t.Fatalf("unread %d, want 1: late events are not new calls", m.s.Summary.UnreadCount)
	}
}

// TestLateEventOfAnotherCallLeavesTheActiveCall: a step back of a call that
// is not the one shown as active does not bring it back.
func TestLateEventOfAnotherCallLeavesTheActiveCall(t *testing.T) {
	m := newMachine(t)
	m.run(call("a", CallRinging, 0))
	m.run(call("a", CallInProgress, 0))
	m.run(call("b", CallRinging, 0))
	m.run(call("a", CallRinging, 0)) // late: a is in progress
	if a := m.s.Summary.ActiveCall; a == nil || a.CallID != "b" || a.State != CallRinging {
		t.Fatalf("active_call %+v, want b ringing", a)
	}
	m.run(call("a", CallInProgress, 0)) // the same stage again: news
	if a := m.s.Summary.ActiveCall; a == nil || a.CallID != "a" {
		t.Fatalf("active_call %+v, want a", a)
	}
}

// TestCallUpdateKeepsNewestPreview: an older call updated in place does not
// become the summary's last_message over a newer item.
func TestCallUpdateKeepsNewestPreview(t *testing.T) {
	m := newMachine(t)
	m.run(call("a", CallRinging, 0))
	note := m.run(reply("noted during the call", KindNote))
	m.run(call("a", CallCompleted, 300))
	if lm := m.s.Summary.LastMessage; lm == nil || lm.ID != note.Item.ID {
		t.Fatalf("last_message %+v, want the note %s", lm, note.Item.ID)
	}
	// The newest item being the call, its update is the preview.
	m.run(call("b", CallRinging, 0))
	m.run(call("b", CallMissed, 0))
	if lm := m.s.Summary.LastMessage; lm == nil || lm.Body != "Missed call" {
		t.Fatalf("last_message %+v, want the missed call", lm)
	}
}

// TestForgottenCallUpdatesItsItem: once the state no longer remembers a
// call, the item the actor reads back (CallCommand.Earlier) is updated in
// place, not duplicated.
func TestForgottenCallUpdatesItsItem(t *testing.T) {
	m := newMachine(t)
	first := m.run(call("c0", CallRinging, 0)).Item
	for i := range callsKept {
		m.run(call(fmt.Sprintf("c%d", i+1), CallMissed, 0))
	}
	if _, ok := m.s.Call("c0"); ok || !m.s.ForgetsCalls() {
		t.Fatalf("c0 still remembered after %d later calls", callsKept)
	}
	unread := m.s.Summary.UnreadCount
	cmd := call("c0", CallCompleted, 30)
	earlier := *first
	cmd.Call.Earlier = &earlier
	ev := m.run(cmd)
	if ev.Item.ID != first.ID || ev.Item.Seq != first.Seq || ev.Item.State != CallCompleted {
		t.Fatalf("item %+v, want %s at seq %d completed", ev.Item, first.ID, first.Seq)
	}
	if m.s.Summary.UnreadCount != unread {
		t.Fatalf("unread %d, want %d: not a new call", m.s.Summary.UnreadCount, unread)
	}
}

func TestCallValidation(t *testing.T) {
	cases := map[string]Command{
		"no call id":        call("", CallRinging, 0),
		"unknown state":     call("c1", "on_hold", 0),
		"empty state":       call("c1", "", 0),
		"negative duration": call("c1", CallCompleted, -1),
	}
	for name, cmd := range cases {
		t.Run(name, func(t *testing.T) {
			m := newMachine(t)
			if ev, err := m.decide(cmd); !errors.Is(err, ErrInvalid) || ev != nil {
				t.Fatalf("%v, %v; want ErrInvalid", ev, err)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hello"))

	ev := m.run(update(Change{Status: ptr(StatusPending), AssigneeID: ptr("ag_7"), TagsAdd: []string{"vip", "billing", "vip"}}))
	if ev.Type != EventUpdate || ev.Item != nil || ev.Change == nil {
		t.Fatalf("update event: %+v", ev)
	}
	sum := m.s.Summary
	if sum.Status != StatusPending || sum.AssigneeID == nil || *sum.AssigneeID != "ag_7" || !slices.Equal(sum.Tags, []string{"billing", "vip"}) {
		t.Fatalf("after update: %+v", sum)
	}
	if sum.LastMessage.Seq != 1 {
		t.Fatalf("an update is not a message: last_message %+v", sum.LastMessage)
	}

	// Addressed by hand, then unaddressed by hand.
	m.run(update(Change{Addressed: ptr(true)}))
	if !m.s.Summary.Addressed || m.s.Summary.WaitingSince != nil {
		t.Fatalf("addressed=true: %+v", m.s.Summary)
	}
	m.run(update(Change{Addressed: ptr(false)}))
	if m.s.Summary.Addressed || m.s.Summary.WaitingSince == nil || !m.s.Summary.WaitingSince.Equal(m.now) {
		t.Fatalf("addressed=false: %+v", m.s.Summary)
	}

	// "" clears the assignee.
	m.run(update(Change{AssigneeID: ptr("")}))
	if m.s.Summary.AssigneeID != nil {
		t.Fatalf("assignee after clearing: %v", *m.s.Summary.AssigneeID)
	}

	// Tags are a set: removing one that is present, adding one that is.
	m.run(update(Change{TagsAdd: []string{"vip", "urgent"}, TagsRemove: []string{"billing", "nope"}}))
	if !slices.Equal(m.s.Summary.Tags, []string{"urgent", "vip"}) {
		t.Fatalf("tags: %v", m.s.Summary.Tags)
	}
	m.run(update(Change{TagsRemove: []string{"urgent", "vip"}}))
	if m.s.Summary.Tags == nil || len(m.s.Summary.Tags) != 0 {
		t.Fatalf("tags after removing all: %#v, want empty, not nil", m.s.Summary.Tags)
	}

	for name, c := range map[string]Change{
		"unknown status": {Status: ptr(Status("archived"))},
		"empty tag":      {TagsAdd: []string{""}},
		"long tag":       {TagsAdd: []string{strings.Repeat("t", 65)}},
		"empty removal":  {TagsRemove: []string{""}},
	} {
		if ev, err := m.decide(update(c)); !errors.Is(err, ErrInvalid) || ev != nil {
			t.Errorf("%s: %v, %v; want ErrInvalid", name, ev, err)
		}
	}
	if _, err := m.decide(update(Change{TagsAdd: []string{strings.Repeat("t", 64)}})); err != nil {
		t.Errorf("a 64-byte tag: %v", err)
	}
}

func TestUpdateNoOpReturnsNilEvent(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hello"))
	m.run(update(Change{Status: ptr(StatusOpen), AssigneeID: ptr("ag_1"), TagsAdd: []string{"a"}}))
	v := m.s.Version()
	noops := map[string]Change{
		"nothing":             {},
		"same status":         {Status: ptr(StatusOpen)},
		"same addressed":      {Addressed: ptr(false)},
		"same assignee":       {AssigneeID: ptr("ag_1")},
		"tag already there":   {TagsAdd: []string{"a", "a"}},
		"tag not there":       {TagsRemove: []string{"b"}},
		"all of them at once": {Status: ptr(StatusOpen), Addressed: ptr(false), AssigneeID: ptr("ag_1"), TagsAdd: []string{"a"}, TagsRemove: []string{"z"}},
	}
	for name, c := range noops {
		ev, err := m.decide(update(c))
		if err != nil || ev != nil {
			t.Errorf("%s: %+v, %v; want nil, nil", name, ev, err)
		}
	}
	// Clearing an assignee nobody holds changes nothing either.
	m.run(update(Change{AssigneeID: ptr("")}))
	if ev, err := m.decide(update(Change{AssigneeID: ptr("")})); ev != nil || err != nil {
		t.Errorf("clearing an empty assignee: %+v, %v", ev, err)
	}
	// Only the effective part of a partly redundant update is recorded.
	ev := m.run(update(Change{Status: ptr(StatusOpen), TagsAdd: []string{"a", "b"}}))
	if ev.Change.Status != nil || !slices.Equal(ev.Change.TagsAdd, []string{"b"}) {
		t.Fatalf("effective change: %+v", ev.Change)
	}
	if m.s.Version() != v+2 {
		t.Fatalf("version %d, want %d", m.s.Version(), v+2)
	}
}

func TestIfVersion(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hello"))
	m.run(inbound("again"))
	for _, stale := range []int64{0, 1, 3, 100} {
		c := update(Change{Status: ptr(StatusClosed)})
		c.Update.IfVersion = ptr(stale)
		if ev, err := m.decide(c); !errors.Is(err, ErrConflict) || ev != nil {
			t.Errorf("if_version %d at version 2: %v, %v; want ErrConflict", stale, ev, err)
		}
	}
	// A stale if_version conflicts even when the update would change nothing.
	c := update(Change{Status: ptr(StatusNew)})
	c.Update.IfVersion = ptr(int64(1))
	if _, err := m.decide(c); !errors.Is(err, ErrConflict) {
		t.Errorf("stale no-op: %v, want ErrConflict", err)
	}
	c = update(Change{Status: ptr(StatusClosed)})
	c.Update.IfVersion = ptr(int64(2))
	ev := m.run(c)
	if ev.Version != 3 || m.s.Summary.Status != StatusClosed {
		t.Fatalf("matching if_version: %+v / %+v", ev, m.s.Summary)
	}
}

func TestVersionGrowsByOnePerEvent(t *testing.T) {
	m := newMachine(t)
	cmds := []Command{
		inbound("1"), call("c", CallRinging, 0), reply("note", KindNote), call("c", CallInProgress, 0),
		reply("2", KindMessage), update(Change{Status: ptr(StatusClosed)}), inbound("3"),
		call("c", CallCompleted, 10), update(Change{TagsAdd: []string{"x"}}), update(Change{TagsRemove: []string{"x"}}),
	}
	seqs := map[int64]bool{}
	for i, c := range cmds {
		ev := m.run(c)
		if ev.Version != int64(i+1) || m.s.Summary.Version != int64(i+1) {
			t.Fatalf("command %d: event version %d, summary %d", i, ev.Version, m.s.Summary.Version)
		}
		if ev.Item != nil && ev.Item.Kind != KindCall {
			if ev.Item.Seq != ev.Version || seqs[ev.Item.Seq] {
				t.Fatalf("command %d: item seq %d at version %d", i, ev.Item.Seq, ev.Version)
			}
			seqs[ev.Item.Seq] = true
		}
	}
}

// Next from one state, in parallel, while the state is read: each result
// owns its summary (-race catches a shared pointer or backing array), and
// the state stays as it was.
func TestNextIndependence(t *testing.T) {
	m := newMachine(t)
	m.run(Command{IdempotencyKey: "k1", AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{Contact: Contact{Phone: phone}, Body: "hi"}})
	m.run(update(Change{AssigneeID: ptr("ag_1"), TagsAdd: []string{"a", "b"}}))
	m.run(call("c1", CallRinging, 0))
	orig := m.s
	frozen, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}

	// Every kind of event, decided on the original and advanced from it.
	evs := []func(s *State) *Event{
		func(s *State) *Event { ev, _ := Decide(s, inbound("more"), m.now, m.newIDSafe()); return ev },
		func(s *State) *Event { ev, _ := Decide(s, reply("r", KindMessage), m.now, m.newIDSafe()); return ev },
		func(s *State) *Event {
			ev, _ := Decide(s, call("c1", CallCompleted, 5), m.now, m.newIDSafe())
			return ev
		},
		func(s *State) *Event {
			ev, _ := Decide(s, update(Change{AssigneeID: ptr(""), TagsRemove: []string{"a"}, TagsAdd: []string{"c"}}), m.now, m.newIDSafe())
			return ev
		},
	}
	var wg sync.WaitGroup
	for _, mk := range evs {
		ev := mk(orig)
		if ev == nil {
			t.Fatal("no event")
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			c := Next(orig, ev)
			c.Summary.Tags = append(c.Summary.Tags, "zz")
			if len(c.Summary.Tags) > 0 {
				c.Summary.Tags[0] = "mutated"
			}
			if c.Summary.AssigneeID != nil {
				*c.Summary.AssigneeID = "mutated"
			}
			if c.Summary.WaitingSince != nil {
				*c.Summary.WaitingSince = time.Time{}
			}
			if c.Summary.LastMessage != nil {
				c.Summary.LastMessage.Body = "mutated"
			}
			if c.Summary.ActiveCall != nil {
				c.Summary.ActiveCall.State = "mutated"
			}
		}()
		go func() {
			defer wg.Done()
			_, _ = json.Marshal(orig)
		}()
	}
	wg.Wait()
	after, _ := json.Marshal(orig)
	if string(after) != string(frozen) {
		t.Fatalf("the original changed through Next:\nbefore %s\nafter  %s", frozen, after)
	}

	// Summary.Clone on its own gives a non-nil tags slice and owns its pointers.
	var empty Summary
	if c := empty.Clone(); c.Tags == nil {
		t.Fatal("Summary.Clone of nil tags gives nil; want []")
	}
}

// Past the bounds of the remembered keys and calls, with calls updated in
// place, Next then Remember keeps ending where Apply does (machine.apply
// checks every step).
func TestNextThenRememberPastTheBounds(t *testing.T) {
	m := newMachine(t)
	for i := range recentKeysKept + 40 {
		cmd := inbound(fmt.Sprint("m", i))
		if i%7 == 0 {
			cmd = call(fmt.Sprint("c", i%(callsKept/8)), CallRinging, 0)
		}
		cmd.IdempotencyKey = fmt.Sprint("k", i)
		m.run(cmd)
	}
	if len(m.s.RecentKeys) != recentKeysKept {
		t.Fatalf("%d keys remembered, want %d", len(m.s.RecentKeys), recentKeysKept)
	}
	if _, ok := m.s.SeenKey(fmt.Sprint("k", recentKeysKept+39)); !ok {
		t.Fatal("the latest key is not remembered")
	}
}

// newIDSafe returns an id maker safe to call from several goroutines.
func (m *machine) newIDSafe() func() string {
	var mu sync.Mutex
	n := 0
	return func() string { mu.Lock(); defer mu.Unlock(); n++; return fmt.Sprintf("par_%d", n) }
}

func TestApplyPanicsOnVersionGap(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hello"))
	for _, v := range []int64{0, 1, 3, 10} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			s := clone(m.s)
			ev := &Event{Type: EventUpdate, Version: v, At: m.now, Change: &Change{Status: ptr(StatusClosed)}}
			defer func() {
				if recover() == nil {
					t.Fatalf("Apply of version %d at version 1 did not panic", v)
				}
				if s.Version() != 1 || s.Summary.Status != StatusNew {
					t.Fatalf("a refused event changed the state: %+v", s.Summary)
				}
			}()
			Apply(s, ev)
		})
	}
	// On an empty state the first event must be version 1.
	defer func() {
		if recover() == nil {
			t.Fatal("Apply of version 2 on an empty state did not panic")
		}
	}()
	Apply(&State{}, &Event{Type: EventInbound, Version: 2, Contact: &Contact{Phone: phone}, Item: &Item{Seq: 2}})
}

func TestReplayFromJournalAndSnapshot(t *testing.T) {
	// Events applied to a fresh state rebuild the same state, and a JSON
	// snapshot round-trips: what the actor does on activation.
	m := newMachine(t)
	var journal []Event
	for _, c := range []Command{
		inbound("1"), call("c", CallRinging, 0), reply("2", KindMessage), update(Change{TagsAdd: []string{"t"}, AssigneeID: ptr("ag")}),
		call("c", CallCompleted, 3), update(Change{Status: ptr(StatusClosed)}), inbound("4"),
	} {
		ev := m.run(c)
		raw, _ := json.Marshal(ev)
		var back Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		journal = append(journal, back)
	}
	rebuilt := &State{}
	for i := range journal {
		Apply(rebuilt, &journal[i])
	}
	want, _ := json.Marshal(m.s)
	got, _ := json.Marshal(rebuilt)
	if string(want) != string(got) {
		t.Fatalf("replay differs:\nwant %s\ngot  %s", want, got)
	}
	// Snapshot at version 4 + tail.
	snap := &State{}
	for i := range journal[:4] {
		Apply(snap, &journal[i])
	}
	raw, _ := json.Marshal(snap)
	restored := &State{}
	if err := json.Unmarshal(raw, restored); err != nil {
		t.Fatal(err)
	}
	for i := range journal[4:] {
		Apply(restored, &journal[4+i])
	}
	got, _ = json.Marshal(restored)
	if string(want) != string(got) {
		t.Fatalf("snapshot + tail differs:\nwant %s\ngot  %s", want, got)
	}
}

func TestMemoryBounds(t *testing.T) {
	m := newMachine(t)
	for i := range recentKeysKept + 10 {
		c := call(fmt.Sprintf("c%d", i), CallMissed, 0)
		c.IdempotencyKey = fmt.Sprintf("k%d", i)
		m.run(c)
	}
	if len(m.s.RecentKeys) != recentKeysKept || len(m.s.Calls) != callsKept {
		t.Fatalf("kept %d keys and %d calls; want %d and %d", len(m.s.RecentKeys), len(m.s.Calls), recentKeysKept, callsKept)
	}
	if _, ok := m.s.SeenKey("k0"); ok {
		t.Fatal("the oldest key is still remembered")
	}
	last := fmt.Sprintf("k%d", recentKeysKept+9)
	if ref, ok := m.s.SeenKey(last); !ok || ref.Version != m.s.Version() {
		t.Fatalf("SeenKey(newest) = %+v, %v", ref, ok)
	}
}

func TestIdentity(t *testing.T) {
	if ContactKey(Contact{Email: "Ann@Example.COM"}) != ContactKey(Contact{Email: "ann@example.com"}) {
		t.Fatal("email identity is not case-folded")
	}
	if ContactKey(Contact{Phone: phone, Name: "x"}) != ContactKey(Contact{Phone: phone, Name: "y"}) {
		t.Fatal("the name is part of the identity")
	}
	a, b := ID("ib_1", "phone:+1"), ID("ib_2", "phone:+1")
	if a == b || a != ID("ib_1", "phone:+1") || !strings.HasPrefix(a, "cv_") {
		t.Fatalf("ID: %q %q", a, b)
	}
	if c := ContactID("ib_1", "phone:+1"); !strings.HasPrefix(c, "ct_") || c == a {
		t.Fatalf("ContactID: %q", c)
	}
}

func TestContactJSON(t *testing.T) {
	// docs/api.md lists id, phone, email, handle, name: all present, null when
	// unset; and opted_out (SMS consent).
	raw, err := json.Marshal(Contact{ID: "ct_1", Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"id":"ct_1","phone":null,"email":"a@example.com","handle":null,"name":null,"opted_out":false}` {
		t.Fatalf("contact JSON %s", raw)
	}
	var back Contact
	if err := json.Unmarshal(raw, &back); err != nil || back != (Contact{ID: "ct_1", Email: "a@example.com"}) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	// Through a pointer (Event.Contact) and inside a summary.
	raw, _ = json.Marshal(Event{Contact: &Contact{ID: "ct_2", Handle: "h", Name: "N"}})
	if !strings.Contains(string(raw), `"contact":{"id":"ct_2","phone":null,"email":null,"handle":"h","name":"N","opted_out":false}`) {
		t.Fatalf("event JSON %s", raw)
	}
}

// TestSeenKeyAcrossASnapshot: keys remembered before a snapshot (restored
// without their hashes) and after it are found, the forgotten ones and
// others are not.
func TestSeenKeyAcrossASnapshot(t *testing.T) {
	var s State
	for v := int64(1); v <= recentKeysKept+10; v++ {
		Remember(&s, &Event{Version: v, IdempotencyKey: fmt.Sprintf("k%d", v)})
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var restored State
	if err := json.Unmarshal(raw, &restored); err != nil {
		t.Fatal(err)
	}
	last := int64(recentKeysKept + 20)
	for v := int64(recentKeysKept + 11); v <= last; v++ {
		Remember(&restored, &Event{Version: v, IdempotencyKey: fmt.Sprintf("k%d", v)})
	}
	for v := int64(1); v <= last; v++ {
		ref, ok := restored.SeenKey(fmt.Sprintf("k%d", v))
		if want := v > last-recentKeysKept; ok != want || (ok && ref.Version != v) {
			t.Fatalf("k%d: seen %v at version %d, want seen %v", v, ok, ref.Version, want)
		}
	}
	for _, k := range []string{"", "k0", "k", "other"} {
		if _, ok := restored.SeenKey(k); ok {
			t.Fatalf("%q seen", k)
		}
	}
}
