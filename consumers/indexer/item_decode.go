package indexer

import (
	"encoding/json"

	"github.com/tidwall/gjson"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/internal/plainjson"
)

// decodeItem decodes an event's item (JSON null: nil) exactly as
// encoding/json does, faster for what the writer stores: encoding/json's
// reflection was ~2.5% of a node's CPU at ingest. The fast path (plainjson)
// takes one object whose members are named exactly as Item's fields, each
// at most once, with values of the field's JSON type; anything else — null
// included — goes to encoding/json, which decides, and words any error (a
// poison entry's reason).
func decodeItem(raw []byte) (*conversation.Item, error) {
	it := new(conversation.Item)
	if plainItem(raw, it) {
		return it, nil
	}
	var out *conversation.Item
	err := json.Unmarshal(raw, &out)
	return out, err
}

// itemFields are Item's members; plainItem takes them by index.
var itemFields = []string{"id", "seq", "direction", "kind", "channel", "body", "created_at",
	"external_id", "client_id", "author_id", "call_id", "state", "duration_s", "recording_url",
	"updated_at", "status", "error_code", "provider_message_id"}

func plainItem(raw []byte, it *conversation.Item) bool {
	doc, ok := plainjson.Object(raw)
	if !ok {
		return false
	}
	strs := [...]*string{0: &it.ID, 2: (*string)(&it.Direction), 3: (*string)(&it.Kind), 4: (*string)(&it.Channel),
		5: &it.Body, 7: &it.ExternalID, 8: &it.ClientID, 9: &it.AuthorID, 10: &it.CallID, 11: (*string)(&it.State),
		13: &it.RecordingURL, 15: (*string)(&it.Status), 16: &it.ErrorCode, 17: &it.ProviderMessageID}
	return plainjson.Members(doc, itemFields, func(i int, v gjson.Result) bool {
		switch i {
		case 1:
			return plainjson.Int(v, &it.Seq)
		case 12:
			return plainjson.Int(v, &it.DurationS)
		case 6:
			return plainjson.Time(v, &it.CreatedAt)
		case 14:
			return plainjson.Time(v, &it.UpdatedAt)
		}
		return plainjson.String(v, strs[i])
	})
}
