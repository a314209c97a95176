package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/server"
)

// Poison (docs/api.md "Limits and bad input"): one account sends every kind of
// bad string in every field, over REST and the websocket, while another
// account writes. Each bad request is a 400 invalid_argument and writes
// nothing; the other account's writes in the same seconds all succeed.
func TestBadStringsInEveryFieldCostNoOneElse(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	att := newTenant(t, c, "Attacker")
	vic := newTenant(t, c, "Victim")
	ak := c.with(att.key)
	// The attacker's own things: a conversation to reply to and patch, and
	// an agent of another of its inboxes (not an agent of the first).
	first := ak.must(201, "POST", "/v1/inboxes/"+att.inbox+"/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "hello"})
	convID := str(t, first, "conversation_id")
	other := ak.must(201, "POST", "/v1/inboxes", obj{"name": "Other"})
	otherAgent := ak.must(201, "POST", "/v1/agents", obj{"name": "Olga", "email": "olga@example.com", "inbox_ids": []string{str(t, other, "id")}})
	otherAgentID := str(t, otherAgent, "agent.id")

	// The victim writes throughout.
	stop := make(chan struct{})
	var victimOK, victimFailed atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(obj{"contact": obj{"handle": fmt.Sprintf("victim-%d-%d", w, i%20)}, "body": fmt.Sprintf("message %d", i)})
				req, _ := http.NewRequest("POST", n.URL()+"/v1/inboxes/"+vic.inbox+"/messages", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+vic.key)
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					victimFailed.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					victimFailed.Add(1)
					failures.Store(fmt.Sprintf("%d %s", res.StatusCode, raw), true)
					continue
				}
				victimOK.Add(1)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	before := accountRows(t, n, att.inbox)
	convBefore := ak.must(200, "GET", "/v1/conversations/"+convID, nil)

	inbox, conv := "/v1/inboxes/"+att.inbox, "/v1/conversations/"+convID
	var cases []poisonCase
	add := func(method, path, template string, fields ...badField) {
		for _, f := range fields {
			for _, b := range f.bad() {
				cases = append(cases, poisonCase{method, path, template, f.name, b})
			}
		}
	}
	// %s marks where the bad value goes (inside a JSON string).
	add("POST", "/v1/admin/accounts", `{"name":"%s"}`, badField{"name", 200, false, "Acme"})
	add("POST", "/v1/inboxes", `{"name":"%s"}`, badField{"name", 200, false, "Sales"})
	add("POST", "/v1/inboxes", `{"name":"x","phone_number":"%s"}`, badField{"phone_number", 0, false, "+14155550199"})
	add("POST", "/v1/agents", `{"name":"%s","email":"a@example.com","inbox_ids":[]}`, badField{"name", 200, false, "Ann"})
	add("POST", "/v1/agents", `{"name":"Ann","email":"%s","inbox_ids":[]}`, badField{"email", 254, false, "ann@example.com"})
	add("POST", "/v1/agents", `{"name":"Ann","email":"a@example.com","inbox_ids":["%s"]}`, badField{"inbox_ids", 0, false, att.inbox})
	msg := inbox + "/messages"
	add("POST", msg, `{"contact":{"phone":"%s"},"body":"hi"}`, badField{"contact.phone", 0, false, "+14155550100"})
	add("POST", msg, `{"contact":{"email":"%s"},"body":"hi"}`, badField{"contact.email", 254, false, "c@example.com"})
	add("POST", msg, `{"contact":{"handle":"%s"},"body":"hi"}`, badField{"contact.handle", 128, false, "visitor"})
	add("POST", msg, `{"contact":{"handle":"v1","name":"%s"},"body":"hi"}`, badField{"contact.name", 200, false, "Ada"})
	add("POST", msg, `{"contact":{"handle":"v1"},"body":"%s"}`, badField{"body", 16 << 10, true, "hi"})
	add("POST", msg, `{"contact":{"handle":"v1"},"body":"hi","channel":"%s"}`, badField{"channel", 0, false, "chat"})
	add("POST", msg, `{"contact":{"handle":"v1"},"body":"hi","external_id":"%s"}`, badField{"external_id", 128, false, "ext"})
	calls := inbox + "/calls"
	add("POST", calls, `{"contact":{"handle":"%s"},"call_id":"c1","state":"ringing"}`, badField{"contact.handle", 128, false, "caller"})
	add("POST", calls, `{"contact":{"handle":"v1"},"call_id":"%s","state":"ringing"}`, badField{"call_id", 128, false, "c1"})
	add("POST", calls, `{"contact":{"handle":"v1"},"call_id":"c1","state":"%s"}`, badField{"state", 0, false, "ringing"})
	add("POST", calls, `{"contact":{"handle":"v1"},"call_id":"c1","state":"completed","recording_url":"%s"}`,
		badField{"recording_url", 2048, false, "https://rec.example.com/1.mp3"})
	add("POST", conv+"/messages", `{"body":"%s"}`, badField{"body", 16 << 10, true, "thanks"})
	add("POST", conv+"/messages", `{"body":"ok","kind":"%s"}`, badField{"kind", 0, false, "note"})
	add("POST", conv+"/messages", `{"body":"ok","client_id":"%s"}`, badField{"client_id", 128, false, "draft"})
	add("PATCH", conv, `{"status":"%s"}`, badField{"status", 0, false, "open"})
	add("PATCH", conv, `{"assignee_id":"%s"}`, badField{"assignee_id", 0, false, att.agentID})
	add("PATCH", conv, `{"tags_add":["%s"]}`, badField{"tags_add", 64, false, "vip"})
	add("PATCH", conv, `{"tags_remove":["%s"]}`, badField{"tags_remove", 64, false, "vip"})
	// Beyond strings: 51 tags, and assignees that are no agent of the inbox.
	cases = append(cases,
		poisonCase{"PATCH", conv, `{"tags_add":%s}`, "51 tags", tagsJSON(51)},
		poisonCase{"PATCH", conv, `{"assignee_id":"%s"}`, "another account's agent", badValue{vic.agentID, "another account's agent"}},
		poisonCase{"PATCH", conv, `{"assignee_id":"%s"}`, "an agent of another inbox", badValue{otherAgentID, "an agent of another inbox"}},
	)

	rest := func() {
		for _, pc := range cases {
			cl := ak
			if pc.path == "/v1/admin/accounts" {
				cl = c.with(testAdminToken)
			}
			r := cl.send(pc.method, pc.path, "application/json", strings.NewReader(pc.body()))
			checkErr(t, r, 400, "invalid_argument", fmt.Sprintf("REST %s %s, %s %s", pc.method, pc.path, pc.field, pc.what()))
		}
		// Query strings obey the same rule.
		for _, p := range []string{inbox + "/conversations?tag=vip%00", inbox + "/conversations?assignee=a%1Fb",
			"/v1/search?q=hello%00", "/v1/search?q=%FF", conv + "/messages?limit=5&x=%7F"} {
			checkErr(t, ak.do("GET", p, nil), 400, "invalid_argument", p)
		}
		// Path ids obey the string rule too; a clean id that cannot exist
		// is simply not found.
		for _, p := range []string{"/v1/inboxes/ib%00x/conversations", "/v1/conversations/cv%7Fx"} {
			checkErr(t, ak.do("GET", p, nil), 400, "invalid_argument", p)
		}
		checkErr(t, ak.do("GET", "/v1/conversations/"+strings.Repeat("c", 300), nil), 404, "not_found", "a 300-character id")
	}

	// The websocket frames, the same rules.
	ws := mustWS(t, n.URL(), wsOpts{token: att.key})
	var frames []poisonCase
	addFrame := func(template string, fields ...badField) {
		for _, f := range fields {
			for _, b := range f.bad() {
				frames = append(frames, poisonCase{"WS", "", template, f.name, b})
			}
		}
	}
	send := `{"type":"send","id":"%%ID%%","conversation_id":"` + convID + `",`
	addFrame(send+`"body":"%s"}`, badField{"body", 16 << 10, true, "thanks"})
	addFrame(send+`"body":"ok","kind":"%s"}`, badField{"kind", 0, false, "note"})
	addFrame(send+`"body":"ok","client_id":"%s"}`, badField{"client_id", 128, false, "draft"})
	upd := `{"type":"update_conversation","id":"%%ID%%","conversation_id":"` + convID + `",`
	addFrame(upd+`"status":"%s"}`, badField{"status", 0, false, "open"})
	addFrame(upd+`"assignee_id":"%s"}`, badField{"assignee_id", 0, false, att.agentID})
	addFrame(upd+`"tags_add":["%s"]}`, badField{"tags_add", 64, false, "vip"})
	addFrame(upd+`"tags_remove":["%s"]}`, badField{"tags_remove", 64, false, "vip"})
	frames = append(frames,
		poisonCase{"WS", "", upd + `"tags_add":%s}`, "51 tags", tagsJSON(51)},
		poisonCase{"WS", "", upd + `"assignee_id":"%s"}`, "another account's agent", badValue{vic.agentID, "another account's agent"}},
		poisonCase{"WS", "", upd + `"assignee_id":"%s"}`, "an agent of another inbox", badValue{otherAgentID, "an agent of another inbox"}},
	)
	frameRound := func() {
		for i, pc := range frames {
			id := fmt.Sprintf("bad-%d", i)
			ws.sendRaw([]byte(strings.Replace(pc.body(), "%%ID%%", id, 1)))
			f := ws.next(15 * time.Second)
			e := f.obj("error")
			if f.typ() != "error" || e["code"] != "invalid_argument" || f.str("ref") != id {
				t.Errorf("websocket %s %s: got %v, want an invalid_argument error with ref %s", pc.field, pc.what(), f.m, id)
			}
		}
	}
	// Rounds of both until the other account has written a few hundred
	// messages in the same seconds.
	rounds := 0
	for ; rounds < 30 && (rounds == 0 || victimOK.Load() < 300) && !t.Failed(); rounds++ {
		rest()
		frameRound()
	}
	ws.ping("still-open")
	if f := ws.expect("pong"); f.str("ref") != "still-open" {
		t.Errorf("pong %v", f.m)
	}

	// Nothing of the attacker's was written, and the conversation is as it was.
	sameRows(t, "bad input", before, accountRows(t, n, att.inbox))
	if after := ak.must(200, "GET", "/v1/conversations/"+convID, nil); num(t, after, "version") != num(t, convBefore, "version") {
		t.Errorf("conversation moved from version %v to %v on bad input", convBefore["version"], after["version"])
	}
	// A valid assignee still works.
	if p := ak.must(200, "PATCH", "/v1/conversations/"+convID, obj{"assignee_id": att.agentID}); str(t, p, "assignee_id") != att.agentID {
		t.Errorf("assigning the inbox's own agent: %v", p)
	}

	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	if victimFailed.Load() != 0 {
		var msgs []string
		failures.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return len(msgs) < 5 })
		t.Errorf("the other account had %d failed writes among %d: %v", victimFailed.Load(), victimOK.Load()+victimFailed.Load(), msgs)
	}
	if victimOK.Load() < 100 {
		t.Errorf("the other account wrote only %d messages meanwhile", victimOK.Load())
	}
	t.Logf("%d rounds of %d bad REST requests and %d bad frames refused while the other account wrote %d messages",
		rounds, len(cases), len(frames), victimOK.Load())
}

// badField is a string field with its length limit (0: an enum or a shape,
// where any bad string fails) and a valid value to corrupt.
type badField struct {
	name   string
	max    int
	isBody bool
	valid  string
}

// badValue is a raw JSON string body (escapes allowed) and a label.
type badValue struct{ raw, label string }

// bad lists the API's (docs/api.md) bad strings for the field: NUL, other control
// characters (tab, LF and CR only in a body), invalid UTF-8, and one
// character over the limit.
func (f badField) bad() []badValue {
	mid := len(f.valid) / 2
	at := func(s string) string { return f.valid[:mid] + s + f.valid[mid:] }
	out := []badValue{
		{at(`\u0000`), "NUL"}, {at(`\u0001`), "U+0001"}, {at(`\u001b`), "ESC"}, {at(`\u001f`), "U+001F"},
		{at(`\u007f`), "DEL"}, {at("\xff"), "invalid UTF-8"}, {at("\xe2\x82"), "truncated UTF-8"},
	}
	if !f.isBody {
		out = append(out, badValue{at(`\n`), "line feed"}, badValue{at(`\t`), "tab"})
	}
	if f.max > 0 {
		over := strings.Repeat("x", f.max+1)
		switch {
		case f.name == "email" || f.name == "contact.email":
			over = strings.Repeat("a", 64) + "@" + strings.Repeat("b", f.max-64-4) + ".com"
		case f.name == "recording_url":
			over = "https://rec.example.com/" + strings.Repeat("r", f.max-23)
		}
		out = append(out, badValue{over, fmt.Sprintf("%d characters", len(over))})
	}
	return out
}

type poisonCase struct {
	method, path, template, field string
	bad                           badValue
}

func (p poisonCase) body() string { return strings.Replace(p.template, "%s", p.bad.raw, 1) }
func (p poisonCase) what() string { return p.bad.label }

func tagsJSON(n int) badValue {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%02d", i)
	}
	raw, _ := json.Marshal(tags)
	return badValue{string(raw), fmt.Sprintf("%d tags", n)}
}

// accountRows counts what the database holds for the account of an inbox,
// and the accounts themselves (only the bad input could add one).
func accountRows(t testing.TB, n *server.Node, inboxID string) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool := n.Store().Pool()
	var acc string
	if err := pool.QueryRow(ctx, `SELECT account_id FROM inboxes WHERE id = $1`, inboxID).Scan(&acc); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for name, q := range map[string]string{
		"accounts":         `SELECT count(*) FROM accounts WHERE $1 <> ''`,
		"inboxes":          `SELECT count(*) FROM inboxes WHERE account_id = $1`,
		"agents":           `SELECT count(*) FROM agents WHERE account_id = $1`,
		"agent_inboxes":    `SELECT count(*) FROM agent_inboxes ai JOIN agents a ON a.id = ai.agent_id WHERE a.account_id = $1`,
		"journal":          `SELECT count(*) FROM journal WHERE account_id = $1`,
		"items":            `SELECT count(*) FROM items WHERE account_id = $1`,
		"conversations":    `SELECT count(*) FROM conversations WHERE account_id = $1`,
		"idempotency_keys": `SELECT count(*) FROM idempotency_keys WHERE account_id = $1`,
	} {
		var c int64
		if err := pool.QueryRow(ctx, q, acc).Scan(&c); err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		out[name] = c
	}
	return out
}
