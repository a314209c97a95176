package wire

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
)

func TestDecodeClientFrame(t *testing.T) {
	yes := true
	for _, c := range []struct {
		name    string
		raw     string
		wantErr string // substring of the error; "" for success
		ref     string // the id the error is answered with
		check   func(t *testing.T, f ClientFrame)
	}{
		{name: "ping", raw: `{"type":"ping","id":1}`, check: func(t *testing.T, f ClientFrame) {
			if string(f.ID) != "1" {
				t.Errorf("id %s", f.ID)
			}
		}},
		{name: "subscribe with filter and resume", raw: `{"type":"subscribe","id":"s","inbox_id":"in1",
			"filter":{"status":["open","new"],"addressed":true,"limit":20,"sort":"oldest"},
			"resume":{"epoch":"e1","seq":0}}`, check: func(t *testing.T, f ClientFrame) {
			want := inbox.Query{Statuses: []conversation.Status{"open", "new"}, Addressed: &yes, Limit: 20, Sort: inbox.SortOldest}
			if !reflect.DeepEqual(f.Query, want) {
				t.Errorf("query %+v, want %+v", f.Query, want)
			}
			if f.Resume == nil || f.Resume.Epoch != "e1" || *f.Resume.Seq != 0 {
				t.Errorf("resume %+v", f.Resume)
			}
		}},
		{name: "subscribe without inbox", raw: `{"type":"subscribe","id":2}`, wantErr: "inbox_id is required", ref: "2"},
		{name: "resume without seq", raw: `{"type":"subscribe","id":2,"inbox_id":"i","resume":{"epoch":"e"}}`, wantErr: "resume needs epoch and seq", ref: "2"},
		{name: "resume at a negative seq", raw: `{"type":"subscribe","inbox_id":"i","resume":{"epoch":"e","seq":-1}}`, wantErr: "resume needs"},
		{name: "filter of objects", raw: `{"type":"subscribe","inbox_id":"i","filter":{"status":{"a":1}}}`, wantErr: "filter.status"},
		{name: "filter list of numbers", raw: `{"type":"subscribe","inbox_id":"i","filter":{"status":[1]}}`, wantErr: "want strings"},
		{name: "filter bad limit", raw: `{"type":"subscribe","inbox_id":"i","filter":{"limit":2.5}}`, wantErr: "limit"},
		{name: "unsubscribe", raw: `{"type":"unsubscribe","inbox_id":"in1"}`},
		{name: "unsubscribe without inbox", raw: `{"type":"unsubscribe"}`, wantErr: "inbox_id is required"},
		{name: "watch", raw: `{"type":"watch","id":"w","conversation_id":"c1"}`},
		{name: "typing without conversation", raw: `{"type":"typing","id":[1]}`, wantErr: "conversation_id is required", ref: "[1]"},
		{name: "send", raw: `{"type":"send","id":3,"conversation_id":"c1","body":"hi","kind":"note","client_id":"k","if_version":4}`,
			check: func(t *testing.T, f ClientFrame) {
				if f.Body != "hi" || f.Kind != "note" || f.ClientID != "k" || f.IfVersion == nil || *f.IfVersion != 4 {
					t.Errorf("send %+v", f)
				}
			}},
		{name: "update with null assignee", raw: `{"type":"update_conversation","conversation_id":"c1","status":"closed","assignee_id":null,"tags_add":["vip"]}`,
			check: func(t *testing.T, f ClientFrame) {
				if f.Status == nil || *f.Status != "closed" || string(f.AssigneeID) != "null" || !reflect.DeepEqual(f.TagsAdd, []string{"vip"}) {
					t.Errorf("update %+v", f.UpdateFields)
				}
			}},
		{name: "no type", raw: `{"id":5}`, wantErr: "type is required", ref: "5"},
		{name: "unknown type", raw: `{"type":"dance","id":5}`, wantErr: `unknown frame type "dance"`, ref: "5"},
		{name: "wrong field type keeps the ref", raw: `{"type":"send","id":"x","body":7}`, wantErr: `field "body" has the wrong type`, ref: `"x"`},
		{name: "not JSON", raw: `{"type":`, wantErr: "malformed JSON"},
		{name: "two objects", raw: `{"type":"ping","id":1}{"type":"ping"}`, wantErr: "one JSON object per frame", ref: "1"},
		{name: "not an object", raw: `[1,2]`, wantErr: "wrong type"},
		// encoding/json's More does not look past a stray closing delimiter.
		{name: "a stray brace after the object", raw: `{"type":"ping","id":1}}`, wantErr: "one JSON object per frame", ref: "1"},
		{name: "a stray bracket after the object", raw: `{"type":"ping","id":1} ]`, wantErr: "one JSON object per frame", ref: "1"},
		{name: "white space after the object", raw: "{\"type\":\"ping\",\"id\":1} \n\t"},
		{name: "a lone surrogate", raw: `{"type":"send","id":1,"conversation_id":"c1","body":"a\ud800b"}`, wantErr: "lone UTF-16 surrogate", ref: "1"},
		{name: "a surrogate pair", raw: `{"type":"send","id":1,"conversation_id":"c1","body":"\ud83d\ude00"}`, check: func(t *testing.T, f ClientFrame) {
			if f.Body != "😀" {
				t.Errorf("body %q", f.Body)
			}
		}},
		{name: "an escaped backslash before u", raw: `{"type":"send","id":1,"conversation_id":"c1","body":"\\ud800"}`, check: func(t *testing.T, f ClientFrame) {
			if f.Body != `\ud800` {
				t.Errorf("body %q", f.Body)
			}
		}},
		{name: "an id with a control character", raw: `{"type":"ping","id":"a\u0001"}`, wantErr: "id must not contain control characters"},
		{name: "an object id with a control character", raw: `{"type":"ping","id":{"a":"\u0001"}}`, wantErr: "id.a must not contain control characters"},
		{name: "an id in invalid UTF-8 is not echoed", raw: "{\"type\":\"ping\",\"id\":\"\xff\"}", wantErr: "not valid UTF-8"},
		{name: "a bad id is not echoed by a type error", raw: `{"type":"ping","id":"a\u0001","inbox_id":5}`, wantErr: "id must not contain control characters"},
		{name: "a lone surrogate id is not echoed", raw: `{"type":"ping","id":"\ud800"}`, wantErr: "lone UTF-16 surrogate"},
		// Every string, in fields the frame does not know too.
		{name: "an unknown field with a control character", raw: `{"type":"ping","id":3,"extra":{"x":["ok","\u0001"]}}`, wantErr: "extra.x[1] must not contain", ref: "3"},
		{name: "a member name with a control character", raw: `{"type":"ping","id":3,"a\u001fb":1}`, wantErr: "the name of a member of the object", ref: "3"},
		{name: "a short escape of a control character", raw: `{"type":"ping","id":3,"extra":"\b"}`, wantErr: "extra must not contain", ref: "3"},
		{name: "a raw DEL", raw: "{\"type\":\"ping\",\"id\":3,\"extra\":\"\x7f\"}", wantErr: "extra must not contain", ref: "3"},
		{name: "tab, line feed, carriage return in a body pass the text rule", raw: `{"type":"send","id":3,"conversation_id":"c","body":"a\t\n\r\u0009\u000Ab"}`},
		{name: "a line feed outside the body", raw: `{"type":"ping","id":3,"extra":{"body":"a\nb"}}`, wantErr: "extra.body must not contain", ref: "3"},
		{name: "an escaped tab outside the body", raw: `{"type":"ping","id":3,"x":"\u0009"}`, wantErr: "x must not contain", ref: "3"},
		{name: "a tab in a member name", raw: `{"type":"ping","id":3,"a\tb":1}`, wantErr: "the name of a member", ref: "3"},
		{name: "a resume epoch with a control character", raw: `{"type":"subscribe","id":2,"inbox_id":"i","resume":{"epoch":"e\u0001","seq":1}}`, wantErr: "resume.epoch must not contain", ref: "2"},
		{name: "an inbox id with a control character", raw: `{"type":"unsubscribe","id":2,"inbox_id":"in\u007f"}`, wantErr: "inbox_id must not contain", ref: "2"},
		// An id too long to exist is left to be not found, as in a REST
		// path; past a path's length it is invalid.
		{name: "a conversation id longer than a path", raw: `{"type":"watch","id":2,"conversation_id":"` + strings.Repeat("c", MaxPath+1) + `"}`, wantErr: "conversation_id must be at most", ref: "2"},
		{name: "a filter's cursor that is none", raw: `{"type":"subscribe","id":2,"inbox_id":"i","filter":{"cursor":"zzz"}}`, wantErr: "filter.cursor", ref: "2"},
		{name: "an empty client_id", raw: `{"type":"send","id":2,"conversation_id":"c","body":"x","client_id":""}`, wantErr: "client_id must not be empty", ref: "2"},
		{name: "an empty kind", raw: `{"type":"send","id":2,"conversation_id":"c","body":"x","kind":""}`, wantErr: "kind must not be empty", ref: "2"},
		{name: "a control character in a filter value", raw: `{"type":"subscribe","id":2,"inbox_id":"i","filter":{"assignee":"x\u0001"}}`, wantErr: "control", ref: "2"},
		{name: "a control character in a filter key", raw: `{"type":"subscribe","id":2,"inbox_id":"i","filter":{"\u007f":"x"}}`, wantErr: "control", ref: "2"},
		{name: "a filter value too long", raw: `{"type":"subscribe","id":2,"inbox_id":"i","filter":{"assignee":"` + strings.Repeat("a", 5000) + `"}}`, wantErr: "assignee must be at most", ref: "2"},
		{name: "a tag filter too long", raw: `{"type":"subscribe","id":2,"inbox_id":"i","filter":{"tag":"` + strings.Repeat("t", 65) + `"}}`, wantErr: "tag must be at most 64", ref: "2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := DecodeClientFrame([]byte(c.raw))
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if c.check != nil {
					c.check(t, f)
				}
				return
			}
			e, ok := AsError(err)
			if !ok || e.Code != CodeInvalid || !strings.Contains(e.Message, c.wantErr) {
				t.Fatalf("error %v, want invalid_argument %q", err, c.wantErr)
			}
			if string(f.ID) != c.ref {
				t.Errorf("ref %s, want %s", f.ID, c.ref)
			}
		})
	}
}

func TestListQuery(t *testing.T) {
	no := false
	for _, c := range []struct {
		query   string
		want    inbox.Query
		wantErr string
	}{
		{query: "", want: inbox.Query{}},
		{query: "access_token=secret&foo=bar", want: inbox.Query{}},
		{query: "status=open,%20new&addressed=false&assignee=me&channel=chat&tag=vip&sort=longest_wait&limit=200&cursor=abc",
			want: inbox.Query{Statuses: []conversation.Status{"open", "new"}, Addressed: &no, Assignee: "me",
				Channel: "chat", Tag: "vip", Sort: inbox.SortLongestWait, Limit: 200, Cursor: "abc"}},
		// Values are checked by inbox.Query.Resolve, not here.
		{query: "status=archived&channel=fax&sort=newest", want: inbox.Query{Statuses: []conversation.Status{"archived"},
			Channel: "fax", Sort: "newest"}},
		{query: "addressed=yes", wantErr: "addressed"},
		{query: "addressed=1", wantErr: "addressed"},
		{query: "limit=0", wantErr: "limit"},
		{query: "limit=201", wantErr: "limit"},
		{query: "limit=ten", wantErr: "limit"},
	} {
		q, _ := url.ParseQuery(c.query)
		got, err := ListQuery(q)
		if c.wantErr != "" {
			if e, ok := AsError(err); !ok || e.Code != CodeInvalid || !strings.Contains(e.Message, c.wantErr) {
				t.Errorf("%q: error %v, want invalid_argument naming %s", c.query, err, c.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v, want %+v", c.query, got, err, c.want)
		}
	}
}

func TestFilterQuery(t *testing.T) {
	yes := true
	for _, c := range []struct {
		filter  string
		want    inbox.Query
		wantErr string
	}{
		{filter: `{}`, want: inbox.Query{}},
		{filter: `{"status":["open","new"],"addressed":true,"assignee":"me","limit":5,"tag":null}`,
			want: inbox.Query{Statuses: []conversation.Status{"open", "new"}, Addressed: &yes, Assignee: "me", Limit: 5}},
		// A subscription starts at the first page.
		{filter: `{"sort":"oldest","limit":"2","cursor":""}`, want: inbox.Query{Sort: inbox.SortOldest, Limit: 2}},
		{filter: `{"assigne":"me"}`, wantErr: `unknown key "assigne"`},
		{filter: `{"access_token":"at_x"}`, wantErr: "unknown key"},
		{filter: `{"status":[1]}`, wantErr: "filter.status"},
		{filter: `{"addressed":{}}`, wantErr: "filter.addressed"},
		{filter: `{"limit":0}`, wantErr: "limit"},
		{filter: `{"cursor":"not a cursor"}`, wantErr: "filter.cursor"},
	} {
		var f map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.filter), &f); err != nil {
			t.Fatal(err)
		}
		got, err := FilterQuery(f)
		if c.wantErr != "" {
			if e, ok := AsError(err); !ok || e.Code != CodeInvalid || !strings.Contains(e.Message, c.wantErr) {
				t.Errorf("%s: error %v, want invalid_argument naming %s", c.filter, err, c.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v %v, want %+v", c.filter, got, err, c.want)
		}
	}
}

// FuzzDecodeClientFrame: no input panics, an error is always an
// invalid_argument Error, and a frame that decodes has a known type and the
// fields that type requires.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":1}`,
		`{"type":"subscribe","id":"a","inbox_id":"in1","filter":{"status":"open,new","limit":5},"resume":{"epoch":"e","seq":3}}`,
		`{"type":"watch","conversation_id":"c1"}`,
		`{"type":"update_conversation","conversation_id":"c1","assignee_id":null,"tags_add":["x"]}`,
		`{"type":"send","conversation_id":"c1","body":"hi"}`,
		`{"type":`, `[]`, `null`, `{"type":"x"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := DecodeClientFrame(raw)
		if err != nil {
			if e, ok := AsError(err); !ok || e.Code != CodeInvalid {
				t.Fatalf("error %v is not invalid_argument", err)
			}
			return
		}
		switch fr.Type {
		case TypePing:
		case TypeSubscribe, TypeUnsubscribe:
			if fr.InboxID == "" {
				t.Fatal("accepted without inbox_id")
			}
		case TypeWatch, TypeUnwatch, TypeTyping, TypeSend, TypeUpdateConversation:
			if fr.ConversationID == "" {
				t.Fatal("accepted without conversation_id")
			}
		default:
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		if fr.ID != nil && !json.Valid(fr.ID) {
			t.Fatalf("id %q is not JSON", fr.ID)
		}
	})
}
