package conversation

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecideIsSafeToStore: an event Decide accepts encodes to JSON that
// PostgreSQL's jsonb takes (no \u0000, valid UTF-8). A NUL that got this
// far used to fail the whole group commit it shared with other tenants.
func FuzzDecideIsSafeToStore(f *testing.F) {
	f.Add("+14155550100", "", "", "Ada", "hello", "sms", "ext-1", "vip", "client-1")
	f.Add("", "", "visitor\x00", "A\x1fB", "hi\x00", "", "", "", "")
	f.Add("", "a@example.com", "", "", "line\r\n\tnext", "email", "\xff", "t\x7f", "")
	f.Fuzz(func(t *testing.T, phone, email, handle, name, body, channel, extID, tag, clientID string) {
		s := &State{}
		seq := 0
		newID := func() string { seq++; return "it_" + string(rune('a'+seq)) }
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		contact := Contact{Phone: phone, Email: email, Handle: handle, Name: name}
		cmds := []Command{
			{AccountID: "acc", InboxID: "ib", Inbound: &InboundCommand{Contact: contact, Body: body, Channel: Channel(channel), ExternalID: extID}},
			{AccountID: "acc", InboxID: "ib", Call: &CallCommand{Contact: contact, CallID: clientID, State: CallRinging, RecordingURL: extID}},
			{Reply: &ReplyCommand{Body: body, ClientID: clientID}},
			{Update: &UpdateCommand{Change: Change{TagsAdd: []string{tag}, AssigneeID: &handle}}},
		}
		for _, cmd := range cmds {
			ev, err := Decide(s, cmd, now, newID)
			if err != nil || ev == nil {
				continue
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("encode accepted event: %v", err)
			}
			if bytes.Contains(raw, []byte(`\u0000`)) || !utf8.Valid(raw) {
				t.Fatalf("accepted event PostgreSQL would refuse: %s", raw)
			}
			Apply(s, ev)
		}
	})
}
