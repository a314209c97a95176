package conversation

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCommandValidation(t *testing.T) {
	c := Contact{Phone: phone}
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		cmd  Command
		ok   bool
	}{
		{"inbound", inbound("hi"), true},
		{"inbound NUL body", inbound("hi\x00"), false},
		{"inbound no contact", Command{Inbound: &InboundCommand{Body: "hi"}}, false},
		{"inbound two identifiers", Command{Inbound: &InboundCommand{Contact: Contact{Phone: phone, Handle: "v1"}, Body: "hi"}}, false},
		{"inbound bad phone", Command{Inbound: &InboundCommand{Contact: Contact{Phone: "555"}, Body: "hi"}}, false},
		{"inbound handle NUL", Command{Inbound: &InboundCommand{Contact: Contact{Handle: "v\x00"}, Body: "hi"}}, false},
		{"inbound handle 129", Command{Inbound: &InboundCommand{Contact: Contact{Handle: long(129)}, Body: "hi"}}, false},
		{"inbound email 9000", Command{Inbound: &InboundCommand{Contact: Contact{Email: long(9000) + "@e.com"}, Body: "hi"}}, false},
		{"inbound name control", Command{Inbound: &InboundCommand{Contact: Contact{Phone: phone, Name: "A\x1fB"}, Body: "hi"}}, false},
		{"inbound name 201", Command{Inbound: &InboundCommand{Contact: Contact{Phone: phone, Name: long(201)}, Body: "hi"}}, false},
		{"inbound voice channel", Command{Inbound: &InboundCommand{Contact: c, Body: "hi", Channel: ChannelVoice}}, false},
		{"inbound unknown channel", Command{Inbound: &InboundCommand{Contact: c, Body: "hi", Channel: "fax"}}, false},
		{"inbound external_id 128", Command{Inbound: &InboundCommand{Contact: c, Body: "hi", ExternalID: long(128)}}, true},
		{"inbound external_id 129", Command{Inbound: &InboundCommand{Contact: c, Body: "hi", ExternalID: long(129)}}, false},
		{"inbound external_id NUL", Command{Inbound: &InboundCommand{Contact: c, Body: "hi", ExternalID: "e\x00"}}, false},
		{"call", call("c1", CallRinging, 0), true},
		{"call no id", call("", CallRinging, 0), false},
		{"call id 129", call(long(129), CallRinging, 0), false},
		{"call unknown state", call("c1", "dialing", 0), false},
		{"call negative duration", call("c1", CallCompleted, -1), false},
		{"call recording url", Command{Call: &CallCommand{Contact: c, CallID: "c1", State: CallCompleted, RecordingURL: "https://r.example.com/1"}}, true},
		{"call recording relative", Command{Call: &CallCommand{Contact: c, CallID: "c1", State: CallCompleted, RecordingURL: "/r/1"}}, false},
		{"reply", reply("hi", KindNote), true},
		{"reply unknown kind", reply("hi", "email"), false},
		{"reply client_id 129", Command{Reply: &ReplyCommand{Body: "hi", ClientID: long(129)}}, false},
		{"reply client_id DEL", Command{Reply: &ReplyCommand{Body: "hi", ClientID: "a\x7f"}}, false},
		{"update", update(Change{Status: ptr(StatusClosed), TagsAdd: []string{"vip"}}), true},
		{"update unknown status", update(Change{Status: ptr(Status("archived"))}), false},
		{"update unassign", update(Change{AssigneeID: ptr("")}), true},
		{"update assignee NUL", update(Change{AssigneeID: ptr("ag\x00")}), false},
		{"update tag empty", update(Change{TagsAdd: []string{""}}), false},
		{"update tag 65", update(Change{TagsAdd: []string{long(65)}}), false},
		{"update tag control", update(Change{TagsRemove: []string{"a\x1f"}}), false},
		{"update 51 tags", update(Change{TagsAdd: tagList(51)}), false},
		{"update one tag 51 times", update(Change{TagsAdd: slices.Repeat([]string{"vip"}, 51)}), true},
		{"update 51 tags removed", update(Change{TagsRemove: tagList(51)}), true},
		{"no payload", Command{}, false},
		{"two payloads", Command{Reply: &ReplyCommand{Body: "x"}, Update: &UpdateCommand{}}, false},
	}
	for _, c := range cases {
		err := c.cmd.Validate()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
		if c.ok {
			continue
		}
		// Decide refuses the same command, on a new and on an existing
		// conversation, without touching the state.
		m := newMachine(t)
		if _, err := m.decide(c.cmd); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decide on a new conversation: %v, want ErrInvalid", c.name, err)
		}
		m.run(inbound("first"))
		if _, err := m.decide(c.cmd); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decide on an existing conversation: %v, want ErrInvalid", c.name, err)
		}
	}
}

func tagList(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%02d", i)
	}
	return out
}

func TestAtMostFiftyTags(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("first"))
	m.run(update(Change{TagsAdd: tagList(49)}))
	m.run(update(Change{TagsAdd: []string{"fifty"}}))
	if n := len(m.s.Summary.Tags); n != 50 {
		t.Fatalf("%d tags, want 50", n)
	}
	if _, err := m.decide(update(Change{TagsAdd: []string{"fifty-one"}})); !errors.Is(err, ErrInvalid) {
		t.Fatalf("51st tag: %v, want ErrInvalid", err)
	}
	// Adding one already held changes nothing, so it is no error.
	if ev, err := m.decide(update(Change{TagsAdd: []string{"fifty"}})); ev != nil || err != nil {
		t.Fatalf("re-adding a held tag: %v, %v", ev, err)
	}
	// Swapping one for another keeps the count at 50.
	m.run(update(Change{TagsAdd: []string{"new"}, TagsRemove: []string{"fifty"}}))
	// A conversation over the limit (tagged before it existed) can shed tags
	// but not grow.
	m.s.Summary.Tags = append(m.s.Summary.Tags, "z1", "z2")
	if _, err := m.decide(update(Change{TagsAdd: []string{"z3"}, TagsRemove: []string{"z1"}})); !errors.Is(err, ErrInvalid) {
		t.Fatalf("growing past the limit: %v, want ErrInvalid", err)
	}
	m.run(update(Change{TagsRemove: []string{"z1"}}))
}

// Validation runs on every command, twice (gateway and Decide): it should
// cost next to nothing beside a commit.
func BenchmarkValidateInbound(b *testing.B) {
	for _, size := range []int{32, validateBodyMax} {
		cmd := Command{AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{
			Contact: Contact{Phone: phone, Name: "Ada Lovelace"}, Body: strings.Repeat("é", size/2), ExternalID: "sms-123"}}
		b.Run(fmt.Sprintf("body %d bytes", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := cmd.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const validateBodyMax = MaxBodyBytes
