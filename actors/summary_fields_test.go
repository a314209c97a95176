package actors

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// The inbox must hold exactly the summary the conversation sent, whether
// the message is handed over within a node or crosses nodes as bytes: the
// JSON of what arrives equals the JSON that was sent.
func TestSummaryFieldsRoundTrip(t *testing.T) {
	// A field added to Summary must be carried too: this fails until the
	// summaries below set it and summaryFields/summaryOf carry it.
	if n := reflect.TypeFor[conversation.Summary]().NumField(); n != 18 {
		t.Fatalf("conversation.Summary has %d fields, the conversion knows 18: carry the new one in actorpb.SummaryFields", n)
	}
	at := time.Date(2026, 11, 30, 20, 1, 2, 345678901, time.UTC)
	later, snooze, sla, assignee := at.Add(time.Minute), at.Add(time.Hour), at.Add(2*time.Hour), "ag_1"
	full := conversation.Summary{
		ID: "cv_1", AccountID: "acc_1", InboxID: "ib_1",
		Contact: conversation.Contact{ID: "ct_1", Phone: "+15550001", Email: "a@example.com", Handle: "h", Name: "Ada", OptedOut: true},
		Status:  conversation.StatusOpen, Addressed: true, AssigneeID: &assignee, Tags: []string{"vip", "billing"},
		Channel: conversation.ChannelSMS,
		LastMessage: &conversation.LastMessage{ID: "msg_1", Seq: 7, Direction: conversation.Inbound, Kind: conversation.KindMessage,
			Body: "héllo", CreatedAt: at},
		LastActivityAt: later, WaitingSince: &at, UnreadCount: 3,
		ActiveCall: &conversation.ActiveCall{CallID: "call_1", State: conversation.CallRinging},
		Version:    9, SnoozeUntil: &snooze, SLADueAt: &sla, SLABreached: true,
	}
	bare := conversation.Summary{ID: "cv_2", AccountID: "acc_1", InboxID: "ib_1", Contact: conversation.Contact{ID: "ct_2"},
		Status: conversation.StatusNew, Tags: []string{}, Channel: conversation.ChannelChat, LastActivityAt: at, Version: 1}
	for name, s := range map[string]conversation.Summary{"full": full, "bare": bare} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		f := summaryFields(&s)
		wire, err := proto.Marshal(&actorpb.SummaryChanged{Summary: f})
		if err != nil {
			t.Fatal(err)
		}
		var remote actorpb.SummaryChanged
		if err := proto.Unmarshal(wire, &remote); err != nil {
			t.Fatal(err)
		}
		for how, got := range map[string]conversation.Summary{"local": summaryOf(f), "remote": summaryOf(remote.Summary)} {
			raw, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != string(want) {
				t.Errorf("%s summary, %s:\n got %s\nwant %s", name, how, raw, want)
			}
		}
	}
	// Nothing is shared with the sender's state.
	f := summaryFields(&full)
	f.Tags[0], *f.AssigneeId = "changed", "changed"
	if full.Tags[0] != "vip" || *full.AssigneeID != "ag_1" {
		t.Fatal("the message shares the sender's tags or assignee")
	}
	got := summaryOf(f)
	got.Tags[0], *got.AssigneeID = "again", "again"
	if f.Tags[0] != "changed" || *f.AssigneeId != "changed" {
		t.Fatal("the received summary shares the message's tags or assignee")
	}
}
