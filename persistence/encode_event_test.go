package persistence

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// The event the writer sends must decode to the event encoded whole, less
// its summary (the statement adds that, see TestJournalEventIsTheWholeEvent),
// whether the item is spliced in or not.
func TestEncodeEventSplicesTheSameEvent(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	sum := conversation.Summary{ID: "cv_1", AccountID: "acc_1", InboxID: "inb_1", Status: "open", Version: 3,
		Contact: conversation.Contact{ID: "ct_1", Phone: "+14155550123"}, Tags: []string{"vip"}, LastActivityAt: at}
	item := &conversation.Item{ID: "msg_1", Seq: 3, Direction: "inbound", Kind: conversation.KindMessage, Body: `say "hi" <now>`, CreatedAt: at}
	for _, tc := range []struct {
		name         string
		withSummary  bool
		item, evItem *conversation.Item
	}{
		{"summary and item", true, item, item},
		{"summary only", true, nil, nil},
		{"neither", false, nil, nil},
		{"event item not the append's item", true, item, &conversation.Item{ID: "msg_other", Seq: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := conversation.Event{Type: "message", Version: 3, At: at, Item: tc.evItem}
			if tc.withSummary {
				ev.Summary = &sum
			}
			a := Append{Event: ev, Summary: sum, Item: tc.item}
			var itemJSON []byte
			if tc.item != nil {
				itemJSON, _ = json.Marshal(tc.item)
			}
			got, spliced, err := encodeEvent(&a, itemJSON)
			if err != nil {
				t.Fatal(err)
			}
			// The statement takes a spliced event's item for the item row.
			if wantSpliced := tc.item != nil && tc.item == tc.evItem; spliced != wantSpliced {
				t.Fatalf("spliced %v, want %v", spliced, wantSpliced)
			}
			if spliced {
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(got, &fields); err != nil || string(fields["item"]) != string(itemJSON) {
					t.Fatalf("the event's item is not the item sent for the row: %s (%v)\n%s", fields["item"], err, itemJSON)
				}
			}
			whole := ev
			whole.Summary = nil
			want, _ := json.Marshal(&whole)
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("spliced event is not JSON: %v\n%s", err, got)
			}
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("spliced event differs:\n got %s\nwant %s", got, want)
			}
		})
	}
}
