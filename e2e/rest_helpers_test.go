package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/switchboard-dev/switchboard/server"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the rest_*_test.go contract tests.

type obj = map[string]any

// field reads a nested field by dotted path ("conversation.contact.id").
func field(t testing.TB, m obj, path string) any {
	t.Helper()
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := cur.(obj)
		if !ok {
			t.Fatalf("field %s: %q is not an object in %v", path, k, m)
		}
		v, present := o[k]
		if !present {
			t.Fatalf("field %s: %q missing in %v", path, k, o)
		}
		cur = v
	}
	return cur
}

func str(t testing.TB, m obj, path string) string {
	t.Helper()
	v, ok := field(t, m, path).(string)
	if !ok {
		t.Fatalf("field %s = %#v, want a string", path, field(t, m, path))
	}
	return v
}

func num(t testing.TB, m obj, path string) int64 {
	t.Helper()
	v, ok := field(t, m, path).(float64)
	if !ok || v != float64(int64(v)) {
		t.Fatalf("field %s = %#v, want an integer", path, field(t, m, path))
	}
	return int64(v)
}

func sub(t testing.TB, m obj, path string) obj {
	t.Helper()
	v, ok := field(t, m, path).(obj)
	if !ok {
		t.Fatalf("field %s = %#v, want an object", path, field(t, m, path))
	}
	return v
}

func list(t testing.TB, m obj, path string) []any {
	t.Helper()
	v, ok := field(t, m, path).([]any)
	if !ok {
		t.Fatalf("field %s = %#v, want an array", path, field(t, m, path))
	}
	return v
}

// strs is an array field whose every element is a string.
func strs(t testing.TB, m obj, path string) []string {
	t.Helper()
	var out []string
	for _, v := range list(t, m, path) {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("field %s holds %#v, want strings only", path, v)
		}
		out = append(out, s)
	}
	return out
}

func isNull(t testing.TB, m obj, path string) bool {
	t.Helper()
	return field(t, m, path) == nil
}

func rfc3339(t testing.TB, m obj, path string) time.Time {
	t.Helper()
	s := str(t, m, path)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("field %s = %q: not RFC 3339: %v", path, s, err)
	}
	if _, off := ts.Zone(); off != 0 {
		t.Fatalf("field %s = %q: not UTC", path, s)
	}
	return ts
}

// expectErr does a request and checks the status and the error shape
// {"error": {"code", "message"}}.
func expectErr(t testing.TB, c api, status int, code, method, path string, body any) {
	t.Helper()
	r := c.do(method, path, body)
	checkErr(t, r, status, code, method+" "+path)
}

func checkErr(t testing.TB, r response, status int, code, what string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d: %.300s", what, r.Status, status, r.Body)
		return
	}
	var m struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &m); err != nil || m.Error == nil || m.Error.Code == nil || m.Error.Message == nil {
		t.Errorf("%s: body %.300q is not the error shape {\"error\":{\"code\",\"message\"}}", what, r.Body)
		return
	}
	if *m.Error.Code != code {
		t.Errorf("%s: error code %q, want %q (%s)", what, *m.Error.Code, code, *m.Error.Message)
	}
	if *m.Error.Message == "" {
		t.Errorf("%s: empty error message", what)
	}
}

// summaryKeys are the conversation summary's fields, as the API lists them.
var summaryKeys = []string{"id", "inbox_id", "contact", "status", "addressed", "assignee_id", "tags", "channel",
	"last_message", "last_activity_at", "waiting_since", "unread_count", "active_call", "version"}

// checkSummary checks a summary's field names and types.
func checkSummary(t testing.TB, s obj) {
	t.Helper()
	for _, k := range summaryKeys {
		if _, ok := s[k]; !ok {
			t.Errorf("summary lacks %q: %v", k, s)
		}
	}
	if t.Failed() {
		return
	}
	str(t, s, "id")
	str(t, s, "inbox_id")
	if st := str(t, s, "status"); !slices.Contains([]string{"new", "open", "pending", "closed"}, st) {
		t.Errorf("status %q", st)
	}
	if _, ok := s["addressed"].(bool); !ok {
		t.Errorf("addressed = %#v, want a bool", s["addressed"])
	}
	if !isNull(t, s, "assignee_id") {
		str(t, s, "assignee_id")
	}
	for _, tag := range list(t, s, "tags") {
		if _, ok := tag.(string); !ok {
			t.Errorf("tag %#v is not a string", tag)
		}
	}
	if ch := str(t, s, "channel"); !slices.Contains([]string{"sms", "chat", "email", "voice"}, ch) {
		t.Errorf("channel %q", ch)
	}
	if !isNull(t, s, "last_message") {
		lm := sub(t, s, "last_message")
		for _, k := range []string{"id", "seq", "direction", "kind", "body", "created_at"} {
			field(t, lm, k)
		}
		str(t, lm, "id")
		num(t, lm, "seq")
		if d := str(t, lm, "direction"); d != "inbound" && d != "outbound" {
			t.Errorf("last_message.direction %q", d)
		}
		if k := str(t, lm, "kind"); !slices.Contains([]string{"message", "note", "call"}, k) {
			t.Errorf("last_message.kind %q", k)
		}
		str(t, lm, "body")
		rfc3339(t, lm, "created_at")
	}
	rfc3339(t, s, "last_activity_at")
	if !isNull(t, s, "waiting_since") {
		rfc3339(t, s, "waiting_since")
	}
	if num(t, s, "unread_count") < 0 {
		t.Errorf("unread_count < 0")
	}
	if !isNull(t, s, "active_call") {
		ac := sub(t, s, "active_call")
		str(t, ac, "call_id")
		if st := str(t, ac, "state"); st != "ringing" && st != "in_progress" {
			t.Errorf("active_call.state %q", st)
		}
	}
	if num(t, s, "version") < 1 {
		t.Errorf("version < 1")
	}
	c := sub(t, s, "contact")
	str(t, c, "id")
	ids := 0
	for _, k := range []string{"phone", "email", "handle", "name"} {
		v, present := c[k]
		if !present {
			t.Errorf("contact lacks %q (the API lists id, phone, email, handle, name): %v", k, c)
			continue
		}
		if v == nil {
			continue
		}
		if s, ok := v.(string); !ok || s == "" {
			t.Errorf("contact.%s = %#v, want a non-empty string or null", k, v)
		} else if k != "name" {
			ids++
		}
	}
	if ids != 1 {
		t.Errorf("contact has %d identifiers, want 1: %v", ids, c)
	}
}

// checkItem checks a timeline item's common fields.
func checkItem(t testing.TB, it obj, direction, kind string) {
	t.Helper()
	str(t, it, "id")
	if num(t, it, "seq") < 1 {
		t.Errorf("item seq < 1: %v", it)
	}
	if d := str(t, it, "direction"); d != direction {
		t.Errorf("item direction %q, want %q", d, direction)
	}
	if k := str(t, it, "kind"); k != kind {
		t.Errorf("item kind %q, want %q", k, kind)
	}
	str(t, it, "channel")
	str(t, it, "body")
	rfc3339(t, it, "created_at")
	if direction == "inbound" && kind == "message" {
		// The API names external_id in every inbound message: null when
		// the integration sent none.
		if _, ok := it["external_id"]; !ok {
			t.Errorf("inbound message without external_id: %v", it)
		}
	}
}

// rows counts what the database holds for the "nothing written" checks.
func rows(t testing.TB, n *server.Node) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tbl := range []string{"accounts", "api_keys", "inboxes", "agents", "agent_inboxes", "agent_tokens",
		"journal", "items", "conversations", "idempotency_keys"} {
		var c int64
		if err := n.Store().Pool().QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&c); err != nil {
			t.Fatalf("count %s: %v", tbl, err)
		}
		out[tbl] = c
	}
	return out
}

func sameRows(t testing.TB, what string, before, after map[string]int64) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: table %s has %d rows, had %d: something was written", what, k, after[k], v)
		}
	}
}

// allStatuses lists every conversation of an inbox, closed ones included.
const allStatuses = "status=new,open,pending,closed"

// settle waits until the inbox actor holds at least the given version of
// every conversation. The conversation actor acknowledges a command before
// it hands the summary to its inbox (the API: the list is the inbox actor's
// view), so a test that reads a list right after a write waits on this
// observable condition, with a deadline, rather than sleeping.
func settle(t testing.TB, c api, inbox string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		page := c.must(200, "GET", "/v1/inboxes/"+inbox+"/conversations?"+allStatuses+"&limit=200", nil)
		have := map[string]int64{}
		for _, cv := range list(t, page, "conversations") {
			o := cv.(obj)
			have[str(t, o, "id")] = num(t, o, "version")
		}
		missing := ""
		for id, v := range want {
			if have[id] < v {
				missing = fmt.Sprintf("%s at version %d (inbox has %d)", id, v, have[id])
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox %s never caught up: %s", inbox, missing)
		}
		// The next read is itself the wait: each round trip goes through
		// the inbox actor's mailbox behind the pending summary.
	}
}

// fixture is a node with a tenant and a record of the versions written,
// for settle.
type fixture struct {
	t     *testing.T
	n     *server.Node
	c     api // unauthenticated client
	tn    tenant
	k     api // the tenant's API key
	ag    api // the tenant's agent
	known map[string]int64
}

func newFixture(t *testing.T) *fixture {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Acme")
	return &fixture{t: t, n: n, c: c, tn: tn, k: c.with(tn.key), ag: c.with(tn.agentToken), known: map[string]int64{}}
}

// note records a summary's version for settle.
func (f *fixture) note(s obj) obj {
	id, v := str(f.t, s, "id"), num(f.t, s, "version")
	if v > f.known[id] {
		f.known[id] = v
	}
	return s
}

func (f *fixture) settle() { f.t.Helper(); settle(f.t, f.k, f.tn.inbox, f.known) }

// inbound posts an inbound message and returns the response.
func (f *fixture) inbound(contact obj, body string, extra ...obj) obj {
	f.t.Helper()
	req := obj{"contact": contact, "body": body}
	for _, e := range extra {
		for k, v := range e {
			req[k] = v
		}
	}
	r := f.k.do("POST", "/v1/inboxes/"+f.tn.inbox+"/messages", req)
	if r.Status != 201 && r.Status != 200 {
		f.t.Fatalf("inbound: status %d: %s", r.Status, r.Body)
	}
	m := r.json(f.t)
	f.note(sub(f.t, m, "conversation"))
	return m
}

func (f *fixture) call(contact obj, callID, state string, extra ...obj) obj {
	f.t.Helper()
	req := obj{"contact": contact, "call_id": callID, "state": state}
	for _, e := range extra {
		for k, v := range e {
			req[k] = v
		}
	}
	m := f.k.must(200, "POST", "/v1/inboxes/"+f.tn.inbox+"/calls", req)
	f.note(sub(f.t, m, "conversation"))
	return m
}

func (f *fixture) reply(convID string, req obj) obj {
	f.t.Helper()
	return f.k.must(201, "POST", "/v1/conversations/"+convID+"/messages", req)
}

func (f *fixture) patch(c api, convID string, req obj) obj {
	f.t.Helper()
	return f.note(c.must(200, "PATCH", "/v1/conversations/"+convID, req))
}

func (f *fixture) get(convID string) obj {
	f.t.Helper()
	return f.note(f.k.must(200, "GET", "/v1/conversations/"+convID, nil))
}

// listIDs returns the ids of one list page, in order, and the page.
func listIDs(t testing.TB, c api, inbox string, q url.Values) ([]string, obj) {
	t.Helper()
	page := c.must(200, "GET", "/v1/inboxes/"+inbox+"/conversations?"+q.Encode(), nil)
	var ids []string
	for _, cv := range list(t, page, "conversations") {
		o := cv.(obj)
		checkSummary(t, o)
		ids = append(ids, str(t, o, "id"))
	}
	return ids, page
}

func phoneContact(i int) obj { return obj{"phone": fmt.Sprintf("+1415555%04d", i)} }

// in returns the fixture bound to a subtest's t (Fatal must run on the
// goroutine of the test it fails).
func (f *fixture) in(t *testing.T) *fixture {
	g := *f
	g.t = t
	g.c.t, g.k.t, g.ag.t = t, t, t
	return &g
}

// doWith sends a raw body with the given Content-Type.
func (a api) doWith(method, path, contentType, body string) response {
	a.t.Helper()
	return a.send(method, path, contentType, strings.NewReader(body))
}

// listVersions walks an inbox's whole list (every status, pages of 20) and
// returns each conversation's listed version. It fails the test on a
// conversation listed twice or a total that disagrees with the walk.
func listVersions(t testing.TB, c api, inbox string) map[string]int64 {
	t.Helper()
	listed := map[string]int64{}
	base := "/v1/inboxes/" + inbox + "/conversations?limit=20&status=new,open,pending,closed"
	var total int64
	for path := base; path != ""; {
		page := c.must(200, "GET", path, nil)
		for _, raw := range page["conversations"].([]any) {
			conv := raw.(map[string]any)
			id := conv["id"].(string)
			if _, dup := listed[id]; dup {
				t.Fatalf("%s listed twice", id)
			}
			listed[id] = int64(conv["version"].(float64))
		}
		total = int64(page["total"].(float64))
		path = ""
		if cur, ok := page["next_cursor"].(string); ok && cur != "" {
			path = base + "&cursor=" + url.QueryEscape(cur)
		}
	}
	if total != int64(len(listed)) {
		t.Fatalf("list total %d, the walk found %d", total, len(listed))
	}
	return listed
}
