package webhooks

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// referencePayload is payload through encoding/json alone: the whole event
// decoded, data as a map, the body marshalled.
func referencePayload(conversationID string, version int64, eventType, accountID, inboxID string, raw []byte, committed time.Time) (string, string, error) {
	var ev conversation.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return "", "", err
	}
	typ := typeOf(eventType)
	data := map[string]any{"conversation": ev.Summary}
	switch typ {
	case TypeMessageCreated, TypeMessageUpdated:
		data["message"] = ev.Item
	case TypeCallUpdated:
		data["call"] = ev.Item
	}
	at := ev.At
	if at.IsZero() {
		at = committed
	}
	d, err := json.Marshal(data)
	if err != nil {
		return "", "", err
	}
	body, err := json.Marshal(Payload{ID: EventID(conversationID, version), Type: typ, CreatedAt: at.UTC(), AccountID: accountID,
		InboxID: inboxID, ConversationID: conversationID, Version: version, Data: d})
	return typ, string(body), err
}

// payloadCases are journal events of every kind, as the journal returns
// them (jsonb's spacing, and an older event without the newer members).
func payloadCases(t testing.TB) map[string][]byte {
	t.Helper()
	at := time.Date(2026, 12, 3, 10, 4, 5, 123456789, time.FixedZone("x", 3600))
	assignee := "ag_1"
	waiting := at.Add(-time.Minute)
	sum := &conversation.Summary{ID: "cv_1", AccountID: "acc_1", InboxID: "ib_1",
		Contact: conversation.Contact{ID: "ct_1", Phone: "+14155550100", Name: "Zoë <&> \"Q\""},
		Status:  conversation.StatusOpen, AssigneeID: &assignee, Tags: []string{"vip", "a&b"}, Channel: conversation.ChannelSMS,
		LastMessage:    &conversation.LastMessage{ID: "msg_1", Seq: 3, Direction: conversation.Inbound, Kind: conversation.KindMessage},
		LastActivityAt: at, WaitingSince: &waiting, UnreadCount: 2, Version: 7}
	inbound := &conversation.Item{ID: "msg_1", Seq: 3, Direction: conversation.Inbound, Kind: conversation.KindMessage,
		Channel: conversation.ChannelSMS, Body: "hello\n\u2028<script>\x01", CreatedAt: at}
	outbound := &conversation.Item{ID: "msg_2", Seq: 4, Direction: conversation.Outbound, Kind: conversation.KindMessage,
		Channel: conversation.ChannelSMS, Body: "hi", CreatedAt: at, AuthorID: "ag_1", Status: "delivered", ProviderMessageID: "SM1",
		UpdatedAt: at.Add(time.Second)}
	call := &conversation.Item{ID: "msg_3", Seq: 5, Direction: conversation.Inbound, Kind: conversation.KindCall,
		Channel: conversation.ChannelVoice, CreatedAt: at, CallID: "call_1", State: "completed", DurationS: 42,
		RecordingURL: "https://rec.example/1?a=b&c=d"}
	status := conversation.StatusClosed
	cases := map[string]conversation.Event{
		"inbound":        {Type: conversation.EventInbound, Version: 3, At: at, Item: inbound, Summary: sum},
		"outbound":       {Type: conversation.EventOutbound, Version: 4, At: at, Item: outbound, Summary: sum},
		"message status": {Type: conversation.EventMessageStatus, Version: 5, At: at, Item: outbound, Summary: sum},
		"call":           {Type: conversation.EventCall, Version: 6, At: at, Item: call, Summary: sum},
		"update":         {Type: conversation.EventUpdate, Version: 7, At: at, Change: &conversation.Change{Status: &status}, Summary: sum},
		"no summary":     {Type: conversation.EventInbound, Version: 1, Item: inbound},
	}
	out := map[string][]byte{}
	for name, ev := range cases {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var spaced bytes.Buffer
		if err := json.Indent(&spaced, raw, "", " "); err != nil {
			t.Fatal(err)
		}
		out[name] = spaced.Bytes()
	}
	out["older event"] = []byte(`{"type": "inbound_message", "version": 2, "at": "2026-01-02T03:04:05Z",
		"summary": {"id": "cv_1", "status": "new", "version": 2}, "item": {"id": "msg_9", "body": "x"}}`)
	return out
}

func TestPayloadMatchesEncodingJSON(t *testing.T) {
	committed := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for name, raw := range payloadCases(t) {
		var ev struct{ Type string }
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		wantTyp, want, err := referencePayload("cv_1", 7, ev.Type, "acc_1", "ib_1", raw, committed)
		if err != nil {
			t.Fatal(err)
		}
		typ, got, err := payload("cv_1", 7, ev.Type, "acc_1", "ib_1", raw, committed)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if typ != wantTyp || got != want {
			t.Errorf("%s:\n got %s %s\nwant %s %s", name, typ, got, wantTyp, want)
		}
	}
	if _, _, err := payload("cv_1", 7, "inbound", "acc_1", "ib_1", []byte(`{"summary": 3}`), committed); err == nil {
		t.Error("an undecodable event was encoded")
	}
}

// BenchmarkPayload compares payload with encoding/json alone, in one run.
func BenchmarkPayload(b *testing.B) {
	raw := payloadCases(b)["inbound"]
	committed := time.Now()
	for _, impl := range []struct {
		name string
		fn   func(string, int64, string, string, string, []byte, time.Time) (string, string, error)
	}{{"encoding_json", referencePayload}, {"payload", payload}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := impl.fn("cv_1", 7, "inbound", "acc_1", "ib_1", raw, committed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
