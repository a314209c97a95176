package gateway

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/wire"
)

// TestUpdateDecoding: a PATCH body (or update_conversation frame) becomes
// the domain's update command; bad values are invalid_argument.
func TestUpdateDecoding(t *testing.T) {
	str := func(s string) *string { return &s }
	status := func(s conversation.Status) *conversation.Status { return &s }
	yes, four := true, int64(4)
	for _, c := range []struct {
		body    string
		want    conversation.UpdateCommand
		wantErr string
	}{
		{body: `{}`, want: conversation.UpdateCommand{}},
		{body: `{"status":"closed","addressed":true,"if_version":4}`,
			want: conversation.UpdateCommand{Change: conversation.Change{Status: status("closed"), Addressed: &yes}, IfVersion: &four}},
		// Absent assignee_id leaves it; null clears it ("" in the command).
		{body: `{"assignee_id":null}`, want: conversation.UpdateCommand{Change: conversation.Change{AssigneeID: str("")}}},
		{body: `{"assignee_id":"ag_1","tags_add":["vip"],"tags_remove":["old"]}`,
			want: conversation.UpdateCommand{Change: conversation.Change{AssigneeID: str("ag_1"), TagsAdd: []string{"vip"}, TagsRemove: []string{"old"}}}},
		{body: `{"status":"archived"}`, wantErr: "status"},
		{body: `{"assignee_id":7}`, wantErr: "assignee_id"},
		{body: `{"assignee_id":""}`, wantErr: "assignee_id"},
		{body: `{"tags_add":[""]}`, wantErr: "tags"},
		{body: `{"tags_remove":["` + strings.Repeat("x", 65) + `"]}`, wantErr: "tags"},
	} {
		var in updateIn
		if err := json.Unmarshal([]byte(c.body), &in); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		got, err := in.toCommand()
		if c.wantErr != "" {
			if e, ok := wire.AsError(err); !ok || e.Code != wire.CodeInvalid || !strings.Contains(e.Message, c.wantErr) {
				t.Errorf("%s: error %v, want invalid_argument naming %s", c.body, err, c.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v %v, want %+v", c.body, got, err, c.want)
		}
	}
}

// TestSnoozeUntilIsRFC3339: the full format, lower-case "t" and "z"
// included (RFC 3339 section 5.6), and nothing looser.
func TestSnoozeUntilIsRFC3339(t *testing.T) {
	for raw, ok := range map[string]bool{
		`"2026-12-02T15:54:28Z"`:             true,
		`"2026-12-02t15:54:28z"`:             true,
		`"2026-12-02T15:54:28.123456+01:00"`: true,
		`"2026-12-02 15:54:28Z"`:             false,
		`"2026-12-02T15:54:28"`:              false,
		`"2026-12-02T24:00:00Z"`:             false,
		`"tomorrow"`:                         false,
		`1764690868`:                         false,
	} {
		in := updateIn{SnoozeUntil: json.RawMessage(raw)}
		until, _, err := in.snooze()
		if ok != (err == nil) {
			t.Errorf("%s: %v, %v; want accepted %v", raw, until, err, ok)
		}
	}
}
