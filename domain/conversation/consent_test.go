package conversation

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestConsentKeyword(t *testing.T) {
	cases := []struct {
		ch       Channel
		body     string
		out, hit bool
	}{
		{ChannelSMS, "STOP", true, true}, {ChannelSMS, " stop\n", true, true}, {ChannelSMS, "StopAll", true, true},
		{ChannelSMS, "unsubscribe", true, true}, {ChannelSMS, "cancel", true, true}, {ChannelSMS, "END", true, true},
		{ChannelSMS, "quit", true, true}, {ChannelSMS, "revoke", true, true}, {ChannelSMS, "optout", true, true},
		{ChannelSMS, "start", false, true}, {ChannelSMS, "UNSTOP", false, true}, {ChannelSMS, " Yes ", false, true},
		{ChannelSMS, "please stop", false, false}, {ChannelSMS, "STOP!", false, false}, {ChannelSMS, "opt out", false, false},
		{ChannelChat, "STOP", false, false}, {ChannelEmail, "START", false, false},
		// Case folding, not upper-casing: a ligature folds to its letters,
		// a dotless i is no i.
		{ChannelSMS, "\ufb06op", true, true}, {ChannelSMS, "qu\u0131t", false, false},
	}
	for _, c := range cases {
		out, hit := ConsentKeyword(c.ch, c.body)
		if out != c.out || hit != c.hit {
			t.Errorf("ConsentKeyword(%s, %q) = %v, %v; want %v, %v", c.ch, c.body, out, hit, c.out, c.hit)
		}
	}
}

func TestOptOutRefusesRepliesNotNotes(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hi"))
	m.run(reply("hello", KindMessage))
	ev := m.run(inbound(" Stop "))
	if ev.Item.Body != " Stop " || !m.s.Summary.Contact.OptedOut {
		t.Fatalf("STOP is stored as usual and opts out: item %+v contact %+v", ev.Item, m.s.Summary.Contact)
	}
	v := m.s.Version()
	_, err := m.decide(reply("are you there?", KindMessage))
	var oo ErrOptedOut
	if !errors.As(err, &oo) || !strings.Contains(err.Error(), "START") {
		t.Fatalf("reply while opted out: %v, want ErrOptedOut", err)
	}
	if m.s.Version() != v {
		t.Fatal("a refused reply changed the state")
	}
	m.run(reply("customer opted out", KindNote))
	// A message that is not exactly a keyword changes nothing.
	m.run(inbound("why did you stop?"))
	if !m.s.Summary.Contact.OptedOut {
		t.Fatal("a sentence containing stop is not a keyword")
	}
	m.run(inbound("START"))
	if m.s.Summary.Contact.OptedOut {
		t.Fatal("START must opt back in")
	}
	m.run(reply("welcome back", KindMessage))

	// Consent survives a snapshot and shows in the contact JSON.
	raw, _ := json.Marshal(m.s.Summary.Contact)
	if !strings.Contains(string(raw), `"opted_out":false`) {
		t.Fatalf("contact JSON %s lacks opted_out", raw)
	}
}

func TestConsentOnlyOnSMS(t *testing.T) {
	m := newMachine(t)
	m.run(Command{AccountID: acct, InboxID: inbx, Inbound: &InboundCommand{Contact: Contact{Handle: "v1"}, Body: "STOP"}})
	if m.s.Summary.Contact.OptedOut {
		t.Fatal("STOP in a chat is just a word")
	}
	m.run(reply("ok", KindMessage))
}

func TestConsentRebuiltFromJournal(t *testing.T) {
	m := newMachine(t)
	var events []*Event
	events = append(events, m.run(inbound("hi")), m.run(inbound("STOP")))
	st := &State{}
	for _, ev := range events {
		Apply(st, ev)
	}
	if !st.Summary.Contact.OptedOut {
		t.Fatal("replaying the journal must rebuild opted_out")
	}
}
