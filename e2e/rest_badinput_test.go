package e2e

import (
	"net/url"
	"strings"
	"testing"
)

// Bad input (the API's errors): the documented 4xx with the error shape, and
// nothing written.

func TestRESTBadInput(t *testing.T) {
	f := newFixture(t)
	phone := obj{"phone": "+14155550123"}
	convID := str(t, f.inbound(phone, "hello", obj{"external_id": "e1"}), "conversation_id")
	f.reply(convID, obj{"body": "hi", "client_id": "c1"})
	f.settle()

	inbox := "/v1/inboxes/" + f.tn.inbox
	conv := "/v1/conversations/" + convID
	newContact := obj{"phone": "+14155550777"}
	big := strings.Repeat("x", 16<<10+1)
	huge := strings.Repeat("y", 1<<20+10)
	msg := func(contact any, body any) obj { return obj{"contact": contact, "body": body} }
	callReq := func(contact any, callID, state string) obj {
		return obj{"contact": contact, "call_id": callID, "state": state}
	}

	type tc struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
	}
	const bad = "invalid_argument"
	cases := []tc{
		// inbound messages
		{"inbound malformed JSON", "POST", inbox + "/messages", `{"contact": {"phone": "+14155550777"}, "body": "x"`, 400, bad},
		{"inbound not JSON", "POST", inbox + "/messages", `hello`, 400, bad},
		// An optional enum or URL given as "" is a value the API does not
		// know, not the default.
		{"inbound empty channel", "POST", inbox + "/messages", obj{"contact": newContact, "body": "x", "channel": ""}, 400, bad},
		{"reply empty kind", "POST", conv + "/messages", obj{"body": "x", "kind": ""}, 400, bad},
		{"reply empty client_id", "POST", conv + "/messages", obj{"body": "x", "client_id": ""}, 400, bad},
		{"inbound empty external_id", "POST", inbox + "/messages", obj{"contact": newContact, "body": "x", "external_id": ""}, 400, bad},
		{"call empty recording_url", "POST", inbox + "/calls", obj{"contact": newContact, "call_id": "k0", "state": "ringing", "recording_url": ""}, 400, bad},
		{"inbound JSON array", "POST", inbox + "/messages", `[]`, 400, bad},
		{"inbound trailing data", "POST", inbox + "/messages", `{"contact":{"phone":"+14155550777"},"body":"x"} {}`, 400, bad},
		{"inbound empty request", "POST", inbox + "/messages", ``, 400, bad},
		{"inbound body of wrong type", "POST", inbox + "/messages", msg(newContact, 5), 400, bad},
		{"inbound empty body", "POST", inbox + "/messages", msg(newContact, ""), 400, bad},
		{"inbound blank body", "POST", inbox + "/messages", msg(newContact, "  \n\t "), 400, bad},
		{"inbound missing body", "POST", inbox + "/messages", obj{"contact": newContact}, 400, bad},
		{"inbound body over 16 KiB", "POST", inbox + "/messages", msg(newContact, big), 400, bad},
		{"inbound unknown channel", "POST", inbox + "/messages", obj{"contact": newContact, "body": "x", "channel": "fax"}, 400, bad},
		{"inbound channel voice", "POST", inbox + "/messages", obj{"contact": newContact, "body": "x", "channel": "voice"}, 400, bad},
		{"inbound channel in capitals", "POST", inbox + "/messages", obj{"contact": newContact, "body": "x", "channel": "SMS"}, 400, bad},
		{"inbound no contact", "POST", inbox + "/messages", obj{"body": "x"}, 400, bad},
		{"inbound contact null", "POST", inbox + "/messages", msg(nil, "x"), 400, bad},
		{"inbound contact with no identifier", "POST", inbox + "/messages", msg(obj{"name": "Ann"}, "x"), 400, bad},
		{"inbound contact with two identifiers", "POST", inbox + "/messages", msg(obj{"phone": "+14155550777", "email": "a@example.com"}, "x"), 400, bad},
		{"inbound contact with three identifiers", "POST", inbox + "/messages", msg(obj{"phone": "+14155550777", "email": "a@example.com", "handle": "h"}, "x"), 400, bad},
		{"inbound phone without +", "POST", inbox + "/messages", msg(obj{"phone": "14155550777"}, "x"), 400, bad},
		{"inbound phone with dashes", "POST", inbox + "/messages", msg(obj{"phone": "+1-415-555-0777"}, "x"), 400, bad},
		{"inbound phone with letters", "POST", inbox + "/messages", msg(obj{"phone": "+1415555CALL"}, "x"), 400, bad},
		{"inbound phone starting with 0", "POST", inbox + "/messages", msg(obj{"phone": "+04155550777"}, "x"), 400, bad},
		{"inbound phone too long", "POST", inbox + "/messages", msg(obj{"phone": "+1415555077712345"}, "x"), 400, bad},
		{"inbound phone too short", "POST", inbox + "/messages", msg(obj{"phone": "+1234"}, "x"), 400, bad},
		{"inbound phone of wrong type", "POST", inbox + "/messages", msg(obj{"phone": 14155550777}, "x"), 400, bad},
		{"inbound bad email", "POST", inbox + "/messages", msg(obj{"email": "not-an-email"}, "x"), 400, bad},
		{"inbound blank handle", "POST", inbox + "/messages", msg(obj{"handle": "   "}, "x"), 400, bad},
		{"inbound external_id too long", "POST", inbox + "/messages", obj{"contact": newContact, "body": "x", "external_id": strings.Repeat("e", 201)}, 400, bad},
		{"inbound over 1 MiB", "POST", inbox + "/messages", msg(newContact, huge), 413, "payload_too_large"},
		{"inbound text/plain", "POST", inbox + "/messages", nil, 400, bad},        // body set below
		{"inbound application/jsonx", "POST", inbox + "/messages", nil, 400, bad}, // body set below

		// calls
		{"call unknown state", "POST", inbox + "/calls", callReq(newContact, "k1", "on_hold"), 400, bad},
		{"call empty state", "POST", inbox + "/calls", callReq(newContact, "k1", ""), 400, bad},
		{"call state in capitals", "POST", inbox + "/calls", callReq(newContact, "k1", "RINGING"), 400, bad},
		{"call no call_id", "POST", inbox + "/calls", callReq(newContact, "", "ringing"), 400, bad},
		{"call negative duration", "POST", inbox + "/calls", obj{"contact": newContact, "call_id": "k1", "state": "completed", "duration_s": -1}, 400, bad},
		{"call duration of wrong type", "POST", inbox + "/calls", obj{"contact": newContact, "call_id": "k1", "state": "completed", "duration_s": "long"}, 400, bad},
		{"call bad phone", "POST", inbox + "/calls", callReq(obj{"phone": "555-0100"}, "k1", "ringing"), 400, bad},
		{"call two identifiers", "POST", inbox + "/calls", callReq(obj{"phone": "+14155550777", "handle": "h"}, "k1", "ringing"), 400, bad},
		{"call no contact", "POST", inbox + "/calls", obj{"call_id": "k1", "state": "ringing"}, 400, bad},
		{"call malformed JSON", "POST", inbox + "/calls", `{"call_id": }`, 400, bad},
		{"call over 1 MiB", "POST", inbox + "/calls", obj{"contact": newContact, "call_id": "k1", "state": "ringing", "recording_url": huge}, 413, "payload_too_large"},

		// replies and notes
		{"reply malformed JSON", "POST", conv + "/messages", `{"body": "x",}`, 400, bad},
		{"reply empty request", "POST", conv + "/messages", ``, 400, bad},
		{"reply empty body", "POST", conv + "/messages", obj{"body": ""}, 400, bad},
		{"reply blank body", "POST", conv + "/messages", obj{"body": "   "}, 400, bad},
		{"reply body over 16 KiB", "POST", conv + "/messages", obj{"body": big}, 400, bad},
		{"reply unknown kind", "POST", conv + "/messages", obj{"body": "x", "kind": "sticker"}, 400, bad},
		{"reply kind call", "POST", conv + "/messages", obj{"body": "x", "kind": "call"}, 400, bad},
		{"reply client_id of wrong type", "POST", conv + "/messages", obj{"body": "x", "client_id": 7}, 400, bad},
		{"reply over 1 MiB", "POST", conv + "/messages", obj{"body": huge}, 413, "payload_too_large"},

		// PATCH
		{"patch malformed JSON", "PATCH", conv, `{"status": "closed"`, 400, bad},
		{"patch empty request", "PATCH", conv, ``, 400, bad},
		{"patch null", "PATCH", conv, `null`, 400, bad},
		{"patch array", "PATCH", conv, `[{"status": "closed"}]`, 400, bad},
		{"inbox settings null", "PATCH", "/v1/inboxes/" + f.tn.inbox, ` null`, 400, bad},
		{"patch unknown status", "PATCH", conv, obj{"status": "archived"}, 400, bad},
		{"patch status in capitals", "PATCH", conv, obj{"status": "CLOSED"}, 400, bad},
		{"patch status of wrong type", "PATCH", conv, obj{"status": 1}, 400, bad},
		{"patch addressed of wrong type", "PATCH", conv, obj{"addressed": "yes"}, 400, bad},
		{"patch assignee_id of wrong type", "PATCH", conv, obj{"assignee_id": 5}, 400, bad},
		{"patch assignee_id empty", "PATCH", conv, obj{"assignee_id": ""}, 400, bad},
		{"patch empty tag", "PATCH", conv, obj{"tags_add": []string{""}}, 400, bad},
		{"patch tag too long", "PATCH", conv, obj{"tags_add": []string{strings.Repeat("t", 65)}}, 400, bad},
		{"patch tags of wrong type", "PATCH", conv, obj{"tags_add": "vip"}, 400, bad},
		{"patch if_version of wrong type", "PATCH", conv, obj{"status": "closed", "if_version": "2"}, 400, bad},
		{"patch valid change with a bad part", "PATCH", conv, obj{"tags_add": []string{"ok"}, "status": "archived"}, 400, bad},
		{"patch over 1 MiB", "PATCH", conv, obj{"tags_add": []string{"x"}, "pad": huge}, 413, "payload_too_large"},

		// set-up
		{"inbox bad phone", "POST", "/v1/inboxes", obj{"name": "x", "phone_number": "4155550100"}, 400, bad},
		{"inbox phone with spaces", "POST", "/v1/inboxes", obj{"name": "x", "phone_number": "+1 415 555 0100"}, 400, bad},
		{"inbox no name", "POST", "/v1/inboxes", obj{"phone_number": "+14155550100"}, 400, bad},
		{"inbox empty phone", "POST", "/v1/inboxes", obj{"name": "x", "phone_number": ""}, 400, bad},
		// Every string, in fields the endpoint does not know too.
		{"inbox unknown field with a control character", "POST", "/v1/inboxes", obj{"name": "x", "extra": "a\u0001"}, 400, bad},
		{"inbound contact's unknown field with a control character", "POST", inbox + "/messages", obj{"contact": obj{"phone": "+14155550778", "x": "\u007f"}, "body": "x"}, 400, bad},
		{"inbox unknown field with a tab", "POST", "/v1/inboxes", obj{"name": "x", "x": "a\tb"}, 400, bad},
		{"inbound line feed in an unknown body", "POST", inbox + "/messages", obj{"contact": obj{"phone": "+14155550778"}, "body": "x", "more": obj{"body": "a\nb"}}, 400, bad},
		{"websocket without an upgrade", "GET", "/v1/ws", nil, 400, bad},
		{"inbox malformed JSON", "POST", "/v1/inboxes", `{"name":`, 400, bad},
		{"inbox over 1 MiB", "POST", "/v1/inboxes", obj{"name": huge}, 413, "payload_too_large"},
		{"agent bad email", "POST", "/v1/agents", obj{"name": "x", "email": "nope", "inbox_ids": []string{f.tn.inbox}}, 400, bad},
		{"agent no name", "POST", "/v1/agents", obj{"email": "x@example.com", "inbox_ids": []string{f.tn.inbox}}, 400, bad},
		{"agent unknown inbox", "POST", "/v1/agents", obj{"name": "x", "email": "x@example.com", "inbox_ids": []string{"ib_nope"}}, 400, bad},
		{"agent inbox_ids of wrong type", "POST", "/v1/agents", obj{"name": "x", "email": "x@example.com", "inbox_ids": "all"}, 400, bad},

		// query parameters
		{"messages limit 0", "GET", conv + "/messages?limit=0", nil, 400, bad},
		{"messages limit 201", "GET", conv + "/messages?limit=201", nil, 400, bad},
		{"messages limit abc", "GET", conv + "/messages?limit=abc", nil, 400, bad},
		{"messages limit negative", "GET", conv + "/messages?limit=-5", nil, 400, bad},
		{"messages before 0", "GET", conv + "/messages?before=0", nil, 400, bad},
		{"messages before negative", "GET", conv + "/messages?before=-1", nil, 400, bad},
		{"messages before abc", "GET", conv + "/messages?before=abc", nil, 400, bad},
		{"messages before float", "GET", conv + "/messages?before=2.5", nil, 400, bad},
		{"list limit 0", "GET", inbox + "/conversations?limit=0", nil, 400, bad},
		{"list limit 201", "GET", inbox + "/conversations?limit=201", nil, 400, bad},
		{"list unknown status", "GET", inbox + "/conversations?status=archived", nil, 400, bad},
		{"list unknown sort", "GET", inbox + "/conversations?sort=alphabetical", nil, 400, bad},
		{"list unknown channel", "GET", inbox + "/conversations?channel=pigeon", nil, 400, bad},
		{"list bad cursor", "GET", inbox + "/conversations?cursor=" + url.QueryEscape("not a cursor"), nil, 400, bad},
		{"list tag too long", "GET", inbox + "/conversations?tag=" + strings.Repeat("t", 65), nil, 400, bad},
		{"control character in a path id", "GET", "/v1/inboxes/ib%01", nil, 400, bad},
		{"control character in a conversation id", "PATCH", "/v1/conversations/cv%7F", obj{"status": "closed"}, 400, bad},

		// JSON that encoding/json alone would let through
		{"inbound stray closing brace", "POST", inbox + "/messages", `{"contact":{"phone":"+14155550777"},"body":"x"}}`, 400, bad},
		{"inbox stray closing bracket", "POST", "/v1/inboxes", `{"name":"x"}]`, 400, bad},
		{"inbound lone surrogate", "POST", inbox + "/messages", `{"contact":{"phone":"+14155550777"},"body":"a\ud800"}`, 400, bad},
	}
	before := rows(t, f.n)
	countsBefore := f.k.must(200, "GET", inbox+"/counts", nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := f.k
			k.t = t
			if ct, ok := rawContentTypes[c.name]; ok {
				r := doRaw(t, k, "POST", inbox+"/messages", ct, `{"contact":{"phone":"+14155550777"},"body":"x"}`)
				checkErr(t, r, c.status, c.code, c.name)
				return
			}
			expectErr(t, k, c.status, c.code, c.method, c.path, c.body)
		})
	}
	// The admin endpoint validates too.
	expectErr(t, f.c.with(testAdminToken), 400, bad, "POST", "/v1/admin/accounts", obj{"name": ""})
	expectErr(t, f.c.with(testAdminToken), 400, bad, "POST", "/v1/admin/accounts", `{`)

	sameRows(t, "bad input", before, rows(t, f.n))
	g := f.get(convID)
	if num(t, g, "version") != 2 || str(t, g, "status") != "open" || len(list(t, g, "tags")) != 0 || !isNull(t, g, "assignee_id") {
		t.Errorf("conversation changed by bad input: %v", g)
	}
	page := f.k.must(200, "GET", inbox+"/conversations?"+allStatuses, nil)
	if num(t, page, "total") != 1 {
		t.Errorf("bad input created conversations: total %v", page["total"])
	}
	countsAfter := f.k.must(200, "GET", inbox+"/counts", nil)
	for _, key := range []string{"new", "open", "pending", "closed", "unaddressed", "unassigned", "seq"} {
		if countsAfter[key] != countsBefore[key] {
			t.Errorf("counts[%s] %v → %v after bad input", key, countsBefore[key], countsAfter[key])
		}
	}

	t.Run("limits are inclusive", func(t *testing.T) {
		f := f.in(t)
		r := f.inbound(newContact, strings.Repeat("z", 16<<10))
		if len(str(t, r, "message.body")) != 16<<10 {
			t.Error("a 16 KiB body was cut")
		}
		f.reply(convID, obj{"body": strings.Repeat("z", 16<<10)})
		// Multi-byte text: 16 KiB of bytes is the limit.
		f.inbound(newContact, strings.Repeat("é", 8<<10))
		expectErr(t, f.k, 400, bad, "POST", inbox+"/messages", msg(newContact, strings.Repeat("é", 8<<10)+"x"))
		f.k.must(201, "POST", "/v1/inboxes", obj{"name": "Intl", "phone_number": "+442071838750"})
		// The media type's case and parameters do not matter.
		for _, ct := range []string{"APPLICATION/JSON", "application/json; charset=utf-8", "application/problem+json"} {
			if r := doRaw(t, f.k, "POST", inbox+"/messages", ct, `{"contact":{"phone":"+14155550778"},"body":"x"}`); r.Status != 201 {
				t.Errorf("Content-Type %q: status %d, want 201: %s", ct, r.Status, r.Body)
			}
		}
	})
}

// rawContentTypes are the cases of TestRESTBadInput sent with a
// Content-Type of their own.
var rawContentTypes = map[string]string{
	"inbound text/plain":        "text/plain",
	"inbound application/jsonx": "application/jsonx",
}

// doRaw sends a body with an explicit Content-Type.
func doRaw(t testing.TB, c api, method, path, contentType, body string) response {
	t.Helper()
	req := c
	req.t = t
	return req.doWith(method, path, contentType, body)
}

// TestBodilessEndpointsRefuseBadBodies: the endpoints that read no body
// take none or an empty object, and hold anything else to the rules of
// every body (400, 413) with nothing written, rather than ignoring it.
func TestBodilessEndpointsRefuseBadBodies(t *testing.T) {
	f := newFixture(t)
	agent := str(t, f.k.must(201, "POST", "/v1/agents", obj{"name": "Bo", "email": "bo@example.com", "inbox_ids": []string{f.tn.inbox}}), "agent.id")
	hook := str(t, f.k.must(201, "POST", "/v1/webhooks", obj{"url": "https://hooks.example.com/in"}), "webhook.id")
	key := str(t, f.k.must(201, "POST", "/v1/api-keys", nil), "id")
	huge := `{"x":"` + strings.Repeat("y", 1<<20) + `"}`
	admin := f.c.with(testAdminToken)
	endpoints := []struct {
		c            api
		method, path string
		ok           int
	}{
		{f.k, "POST", "/v1/api-keys", 201},
		{f.k, "POST", "/v1/agents/" + agent + "/tokens", 201},
		{f.k, "DELETE", "/v1/agents/" + agent + "/tokens", 204},
		{admin, "POST", "/v1/admin/indexer/pause", 200},
		{admin, "POST", "/v1/admin/indexer/resume", 200},
		{f.k, "DELETE", "/v1/webhooks/" + hook, 204},
		{f.k, "DELETE", "/v1/api-keys/" + key, 204},
		{f.k, "DELETE", "/v1/agents/" + agent, 204},
	}
	// The caller's role is checked first: an agent is refused whatever it
	// sends.
	checkErr(t, f.ag.do("POST", "/v1/api-keys", `{bad`), 403, "forbidden", "an agent creating a key")
	checkErr(t, f.ag.do("DELETE", "/v1/webhooks/"+hook, `{bad`), 403, "forbidden", "an agent deleting a webhook")
	for _, e := range endpoints {
		before := rows(t, f.n)
		for _, bad := range []struct {
			body   string
			status int
			code   string
		}{{`{bad`, 400, "invalid_argument"}, {`[1]`, 400, "invalid_argument"}, {`null`, 400, "invalid_argument"},
			{`{}}`, 400, "invalid_argument"}, {huge, 413, "payload_too_large"}} {
			checkErr(t, e.c.do(e.method, e.path, bad.body), bad.status, bad.code, e.method+" "+e.path+" "+bad.body[:min(len(bad.body), 8)])
		}
		r := e.c.send(e.method, e.path, "text/plain", strings.NewReader("hello"))
		checkErr(t, r, 400, "invalid_argument", e.method+" "+e.path+" as text/plain")
		sameRows(t, e.method+" "+e.path+" refused", before, rows(t, f.n))
		// An object is no body: its members mean nothing here.
		if r := e.c.do(e.method, e.path, `{"note":"x"}`); r.Status != e.ok {
			t.Errorf("%s %s with {}: %d, want %d: %s", e.method, e.path, r.Status, e.ok, r.Body)
		}
	}
}
