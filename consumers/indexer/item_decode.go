package indexer

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// decodeItem decodes an event's item (JSON null: nil) exactly as
// encoding/json does, faster for what the writer stores: encoding/json's
// reflection was ~2.5% of a node's CPU at ingest. The fast path takes one
// object whose members are named exactly as Item's fields, each at most once,
// with values of the field's JSON type and no escape of a UTF-16 surrogate;
// anything else — null included — goes to encoding/json, which decides, and
// words any error (a poison entry's reason).
func decodeItem(raw []byte) (*conversation.Item, error) {
	it := new(conversation.Item)
	if plainItem(raw, it) {
		return it, nil
	}
	var out *conversation.Item
	err := json.Unmarshal(raw, &out)
	return out, err
}

// itemFields are Item's members as its JSON keys appear written plainly.
var itemFields = []string{`"id"`, `"seq"`, `"direction"`, `"kind"`, `"channel"`, `"body"`, `"created_at"`,
	`"external_id"`, `"client_id"`, `"author_id"`, `"call_id"`, `"state"`, `"duration_s"`, `"recording_url"`,
	`"updated_at"`, `"status"`, `"error_code"`, `"provider_message_id"`}

func plainItem(raw []byte, it *conversation.Item) bool {
	if !utf8.Valid(raw) || !gjson.ValidBytes(raw) {
		return false
	}
	doc := gjson.ParseBytes(raw)
	if !doc.IsObject() {
		return false
	}
	strs := [...]*string{2: (*string)(&it.Direction), 3: (*string)(&it.Kind), 4: (*string)(&it.Channel), 5: &it.Body,
		0: &it.ID, 7: &it.ExternalID, 8: &it.ClientID, 9: &it.AuthorID, 10: &it.CallID, 11: (*string)(&it.State),
		13: &it.RecordingURL, 15: (*string)(&it.Status), 16: &it.ErrorCode, 17: &it.ProviderMessageID}
	var seen uint32
	ok := true
	doc.ForEach(func(k, v gjson.Result) bool {
		i := -1
		for j, name := range itemFields {
			if k.Raw == name {
				i = j
				break
			}
		}
		if i < 0 || seen&(1<<i) != 0 {
			ok = false
			return false
		}
		seen |= 1 << i
		switch i {
		case 1:
			ok = plainInt(v, &it.Seq)
		case 12:
			ok = plainInt(v, &it.DurationS)
		case 6:
			ok = plainTime(v, &it.CreatedAt)
		case 14:
			ok = plainTime(v, &it.UpdatedAt)
		default:
			ok = v.Type == gjson.String && !hasSurrogateEscape(v.Raw)
			if ok {
				*strs[i] = v.Str
			}
		}
		return ok
	})
	return ok
}

// hasSurrogateEscape: encoding/json and gjson may resolve a \uD800–\uDFFF
// escape differently when it is not a valid pair; the fast path leaves
// those (and any \uD… escape) to encoding/json.
func hasSurrogateEscape(raw string) bool {
	return strings.Contains(raw, `\ud`) || strings.Contains(raw, `\uD`)
}

// plainInt parses a JSON number into an int64 as encoding/json does: an
// integer literal in range, nothing else.
func plainInt(v gjson.Result, dst *int64) bool {
	if v.Type != gjson.Number {
		return false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// plainTime parses a JSON string with time.Time's own UnmarshalJSON, the
// one encoding/json calls.
func plainTime(v gjson.Result, dst *time.Time) bool {
	return v.Type == gjson.String && dst.UnmarshalJSON([]byte(v.Raw)) == nil
}
