package gateway

import (
	"fmt"
	"strings"
	"testing"
)

// Update decoding: absent, null and a string are three different things for
// assignee_id, and every refusal is invalid_argument.
func TestUpdateValidation(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		ok       bool
		assignee *string // want, when ok
	}{
		{"empty update", `{}`, true, nil},
		{"assignee absent", `{"status":"closed"}`, true, nil},
		{"assignee null unassigns", `{"assignee_id":null}`, true, ptrTo("")},
		{"assignee id", `{"assignee_id":"ag_1"}`, true, ptrTo("ag_1")},
		{"assignee empty string", `{"assignee_id":""}`, false, nil},
		{"assignee number", `{"assignee_id":5}`, false, nil},
		{"assignee NUL", `{"assignee_id":"ag\u0000"}`, false, nil},
		{"assignee too long", `{"assignee_id":"` + strings.Repeat("a", 129) + `"}`, false, nil},
		{"unknown status", `{"status":"archived"}`, false, nil},
		{"tag control character", `{"tags_add":["a\u001fb"]}`, false, nil},
		{"tag 64", `{"tags_add":["` + strings.Repeat("t", 64) + `"]}`, true, nil},
		{"tag 65", `{"tags_remove":["` + strings.Repeat("t", 65) + `"]}`, false, nil},
		{"51 tags", `{"tags_add":["t` + strings.Join(strings.Split(strings.Repeat("x", 51), ""), `","t`) + `"]}`, true, nil},
		{"51 distinct tags", `{"tags_add":[` + distinctTags(51) + `]}`, false, nil},
		{"invalid UTF-8", "{\"tags_add\":[\"\xff\"]}", false, nil},
		{"trailing data", `{} {}`, false, nil},
		{"a stray closing brace", `{"status":"closed"}}`, false, nil},
		{"a stray closing bracket", `{"status":"closed"}]`, false, nil},
		{"a lone surrogate", `{"tags_add":["a\udc00"]}`, false, nil},
		{"a surrogate pair", `{"tags_add":["\ud83d\ude00"]}`, true, nil},
	}
	for _, c := range cases {
		var in updateIn
		err := decodeJSON([]byte(c.body), &in)
		var got *string
		if err == nil {
			u, perr := in.toCommand()
			err = perr
			got = u.AssigneeID
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err != nil {
			if ae := asAPIError(err); ae.Code != codeInvalid {
				t.Errorf("%s: code %s, want invalid_argument", c.name, ae.Code)
			}
			continue
		}
		if (got == nil) != (c.assignee == nil) || got != nil && *got != *c.assignee {
			t.Errorf("%s: assignee %v, want %v", c.name, got, c.assignee)
		}
	}
}

// The REST bodies and the websocket send frame refuse what the domain
// refuses, with the field named.
func TestBodyValidation(t *testing.T) {
	cases := []struct {
		name  string
		in    interface{ validate() error }
		field string // "" when valid
	}{
		{"inbound", &inboundIn{Contact: &contactIn{Phone: "+14155550100"}, Body: "hi"}, ""},
		{"inbound no contact", &inboundIn{Body: "hi"}, "contact"},
		{"inbound NUL body", &inboundIn{Contact: &contactIn{Phone: "+14155550100"}, Body: "hi\x00"}, "body"},
		{"inbound handle DEL", &inboundIn{Contact: &contactIn{Handle: "v\x7f"}, Body: "hi"}, "contact.handle"},
		{"inbound name ESC", &inboundIn{Contact: &contactIn{Handle: "v", Name: "\x1b[31m"}, Body: "hi"}, "contact.name"},
		{"inbound external_id 129", &inboundIn{Contact: &contactIn{Handle: "v"}, Body: "hi", ExternalID: strings.Repeat("e", 129)}, "external_id"},
		{"call", &callIn{Contact: &contactIn{Handle: "v"}, CallID: "c1", State: "ringing"}, ""},
		{"call recording_url relative", &callIn{Contact: &contactIn{Handle: "v"}, CallID: "c1", State: "completed", RecordingURL: "/r.mp3"}, "recording_url"},
		{"call negative duration", &callIn{Contact: &contactIn{Handle: "v"}, CallID: "c1", State: "completed", DurationS: ptrTo(int64(-1))}, "duration_s"},
		{"reply with CRLF and tab", &replyIn{Body: "a\r\n\tb"}, ""},
		{"reply vertical tab", &replyIn{Body: "a\vb"}, "body"},
		{"reply client_id 129", &replyIn{Body: "x", ClientID: strings.Repeat("c", 129)}, "client_id"},
		{"reply kind", &replyIn{Body: "x", Kind: "call"}, "kind"},
	}
	for _, c := range cases {
		err := c.in.validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v, want valid", c.name, err)
			}
			continue
		}
		ae := asAPIError(err)
		if err == nil || ae.Code != codeInvalid || !strings.HasPrefix(ae.Message, c.field+" ") {
			t.Errorf("%s: %v, want invalid_argument naming %s", c.name, err, c.field)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// distinctTags is n different tags as JSON array members.
func distinctTags(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf(`"t%d"`, i)
	}
	return strings.Join(tags, ",")
}
