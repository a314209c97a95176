package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Conversation endpoints of the API: inbound messages, calls, replies and
// notes, PATCH, GET, and the timeline.

func TestRESTInboundMessage(t *testing.T) {
	f := newFixture(t)
	ann := obj{"phone": "+14155550123", "name": "Ann"}

	r := f.k.do("POST", "/v1/inboxes/"+f.tn.inbox+"/messages", obj{"contact": ann, "body": "hello", "external_id": "sms-1"})
	if r.Status != 201 {
		t.Fatalf("first inbound: status %d, want 201: %s", r.Status, r.Body)
	}
	first := r.json(t)
	convID := str(t, first, "conversation_id")
	msg := sub(t, first, "message")
	checkItem(t, msg, "inbound", "message")
	if num(t, msg, "seq") != 1 || str(t, msg, "channel") != "sms" || str(t, msg, "body") != "hello" || str(t, msg, "external_id") != "sms-1" {
		t.Errorf("message: %v", msg)
	}
	conv := sub(t, first, "conversation")
	checkSummary(t, conv)
	if str(t, conv, "id") != convID || str(t, conv, "inbox_id") != f.tn.inbox {
		t.Errorf("conversation id/inbox: %v", conv)
	}
	if str(t, conv, "status") != "new" || conv["addressed"] != false || !isNull(t, conv, "assignee_id") ||
		len(list(t, conv, "tags")) != 0 || str(t, conv, "channel") != "sms" || num(t, conv, "unread_count") != 1 ||
		!isNull(t, conv, "active_call") || num(t, conv, "version") != 1 {
		t.Errorf("new conversation summary: %v", conv)
	}
	if isNull(t, conv, "waiting_since") || isNull(t, conv, "last_message") {
		t.Fatalf("waiting_since and last_message must be set after an inbound message: %v", conv)
	}
	if lm := sub(t, conv, "last_message"); str(t, lm, "id") != str(t, msg, "id") || num(t, lm, "seq") != 1 ||
		str(t, lm, "direction") != "inbound" || str(t, lm, "kind") != "message" || str(t, lm, "body") != "hello" {
		t.Errorf("last_message: %v", lm)
	}
	if c := sub(t, conv, "contact"); str(t, c, "phone") != "+14155550123" || str(t, c, "name") != "Ann" {
		t.Errorf("contact: %v", c)
	}
	if !rfc3339(t, conv, "waiting_since").Equal(rfc3339(t, msg, "created_at")) {
		t.Errorf("waiting_since %v, want the message's created_at %v", conv["waiting_since"], msg["created_at"])
	}

	t.Run("without external_id it is null", func(t *testing.T) {
		k := f.c.with(newTenant(t, f.c, "Initech").key)
		inbox := str(t, k.must(201, "POST", "/v1/inboxes", obj{"name": "Chat"}), "id")
		r := k.must(201, "POST", "/v1/inboxes/"+inbox+"/messages", obj{"contact": obj{"handle": "visitor-9"}, "body": "hi"})
		m := sub(t, r, "message")
		checkItem(t, m, "inbound", "message")
		if !isNull(t, m, "external_id") {
			t.Errorf("external_id %v, want null", m["external_id"])
		}
		page := k.must(200, "GET", "/v1/conversations/"+str(t, r, "conversation_id")+"/messages", nil)
		if got := list(t, page, "messages"); len(got) != 1 || !isNull(t, got[0].(obj), "external_id") {
			t.Errorf("the timeline's message: %v, want external_id null", got)
		}
	})

	t.Run("same external_id is answered with the original", func(t *testing.T) {
		f := f.in(t)
		before := rows(t, f.n)
		for range 2 {
			r := f.k.do("POST", "/v1/inboxes/"+f.tn.inbox+"/messages", obj{"contact": ann, "body": "hello", "external_id": "sms-1"})
			if r.Status != 200 {
				t.Fatalf("repeat: status %d, want 200: %s", r.Status, r.Body)
			}
			again := r.json(t)
			if str(t, again, "conversation_id") != convID || str(t, again, "message.id") != str(t, msg, "id") ||
				num(t, again, "message.seq") != 1 || str(t, again, "message.body") != "hello" {
				t.Errorf("repeat answered %v, want the original message %v", again, msg)
			}
			if v := num(t, again, "conversation.version"); v != 1 {
				t.Errorf("repeat: conversation version %d, want 1 (no new event)", v)
			}
		}
		// Even with another body or from another contact of the same inbox.
		r := f.k.do("POST", "/v1/inboxes/"+f.tn.inbox+"/messages", obj{"contact": obj{"handle": "other"}, "body": "different", "external_id": "sms-1"})
		if r.Status != 200 {
			t.Fatalf("repeat from another contact: status %d, want 200: %s", r.Status, r.Body)
		}
		if again := r.json(t); str(t, again, "message.id") != str(t, msg, "id") || str(t, again, "conversation_id") != convID {
			t.Errorf("repeat from another contact answered %v", again)
		}
		sameRows(t, "repeated external_id", before, rows(t, f.n))
		if v := num(t, f.get(convID), "version"); v != 1 {
			t.Errorf("version %d after repeats, want 1", v)
		}
		page := f.k.must(200, "GET", "/v1/conversations/"+convID+"/messages", nil)
		if n := len(list(t, page, "messages")); n != 1 {
			t.Errorf("%d messages after repeats, want 1", n)
		}
		f.settle()
		ids, _ := listIDs(t, f.k, f.tn.inbox, url.Values{"status": {"new,open,pending,closed"}})
		if len(ids) != 1 {
			t.Errorf("inbox lists %v, want only %s", ids, convID)
		}
	})

	t.Run("external_id is scoped to the inbox", func(t *testing.T) {
		f := f.in(t)
		other := f.k.must(201, "POST", "/v1/inboxes", obj{"name": "Second"})
		r := f.k.must(201, "POST", "/v1/inboxes/"+str(t, other, "id")+"/messages", obj{"contact": ann, "body": "hello", "external_id": "sms-1"})
		if str(t, r, "conversation_id") == convID || str(t, r, "message.id") == str(t, msg, "id") {
			t.Errorf("another inbox's message was taken for a duplicate: %v", r)
		}
	})

	t.Run("second message of a contact joins its conversation", func(t *testing.T) {
		f := f.in(t)
		r := f.inbound(obj{"phone": "+14155550123"}, "still there?", obj{"channel": "chat"})
		if str(t, r, "conversation_id") != convID || num(t, r, "message.seq") != 2 || num(t, r, "conversation.version") != 2 {
			t.Errorf("second message: %v", r)
		}
		if str(t, r, "message.channel") != "chat" || str(t, r, "conversation.channel") != "chat" {
			t.Errorf("channel: %v", r)
		}
		if num(t, r, "conversation.unread_count") != 2 || !rfc3339(t, r, "conversation.waiting_since").Equal(rfc3339(t, conv, "waiting_since")) {
			t.Errorf("unread/waiting_since after a second message: %v", sub(t, r, "conversation"))
		}
		// Without external_id, two equal messages are two messages.
		r2 := f.inbound(obj{"phone": "+14155550123"}, "still there?")
		if num(t, r2, "message.seq") != 3 {
			t.Errorf("third message seq %d, want 3", num(t, r2, "message.seq"))
		}
	})

	t.Run("default channel follows the contact", func(t *testing.T) {
		f := f.in(t)
		for _, c := range []struct {
			contact obj
			want    string
		}{
			{obj{"email": "bob@example.com"}, "email"},
			{obj{"handle": "visitor-42"}, "chat"},
			{obj{"phone": "+447700900123"}, "sms"},
		} {
			r := f.inbound(c.contact, "hi")
			if str(t, r, "message.channel") != c.want || str(t, r, "conversation.channel") != c.want {
				t.Errorf("%v: channel %v, want %s", c.contact, r["message"], c.want)
			}
			checkSummary(t, sub(t, r, "conversation"))
		}
	})

	t.Run("an agent of the inbox may post inbound messages", func(t *testing.T) {
		f := f.in(t)
		f.ag.must(201, "POST", "/v1/inboxes/"+f.tn.inbox+"/messages", obj{"contact": obj{"handle": "by-agent"}, "body": "x"})
	})
}

func TestRESTReplyAndNote(t *testing.T) {
	f := newFixture(t)
	in := f.inbound(obj{"phone": "+14155550123"}, "hello")
	convID := str(t, in, "conversation_id")

	// A note: outbound, but the contact is still waiting.
	note := f.reply(convID, obj{"body": "VIP, be nice", "kind": "note"})
	checkItem(t, note, "outbound", "note")
	if num(t, note, "seq") != 2 || str(t, note, "body") != "VIP, be nice" {
		t.Errorf("note: %v", note)
	}
	s := f.get(convID)
	checkSummary(t, s)
	if s["addressed"] != false || isNull(t, s, "waiting_since") || str(t, s, "status") != "new" || num(t, s, "version") != 2 {
		t.Errorf("after a note: %v", s)
	}

	// A reply marks it addressed (kind defaults to message).
	rep := f.reply(convID, obj{"body": "on it", "client_id": "cl-1"})
	checkItem(t, rep, "outbound", "message")
	if num(t, rep, "seq") != 3 || str(t, rep, "channel") != "sms" || str(t, rep, "client_id") != "cl-1" {
		t.Errorf("reply: %v", rep)
	}
	s = f.get(convID)
	if s["addressed"] != true || !isNull(t, s, "waiting_since") || num(t, s, "unread_count") != 0 || str(t, s, "status") != "open" || num(t, s, "version") != 3 {
		t.Errorf("after a reply: %v", s)
	}
	if lm := sub(t, s, "last_message"); str(t, lm, "direction") != "outbound" || num(t, lm, "seq") != 3 {
		t.Errorf("last_message after reply: %v", lm)
	}

	t.Run("same client_id is answered with the original", func(t *testing.T) {
		f := f.in(t)
		before := rows(t, f.n)
		for range 2 {
			again := f.k.must(200, "POST", "/v1/conversations/"+convID+"/messages", obj{"body": "on it", "client_id": "cl-1"})
			if str(t, again, "id") != str(t, rep, "id") || num(t, again, "seq") != 3 {
				t.Errorf("repeat answered %v, want %v", again, rep)
			}
		}
		sameRows(t, "repeated client_id", before, rows(t, f.n))
		if v := num(t, f.get(convID), "version"); v != 3 {
			t.Errorf("version %d after repeats, want 3", v)
		}
		page := f.k.must(200, "GET", "/v1/conversations/"+convID+"/messages", nil)
		n := 0
		for _, it := range list(t, page, "messages") {
			if it.(obj)["client_id"] == "cl-1" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d items with client_id cl-1, want 1", n)
		}
		// A resend drafted against the version the first was: the
		// conversation moved on since, but the first one committed.
		if again := f.k.must(200, "POST", "/v1/conversations/"+convID+"/messages", obj{"body": "on it", "client_id": "cl-1", "if_version": 2}); str(t, again, "id") != str(t, rep, "id") {
			t.Errorf("repeat with the first one's if_version: %v", again)
		}
		// A new client_id with that stale if_version is refused as before.
		expectErr(t, f.k, 409, "conflict", "POST", "/v1/conversations/"+convID+"/messages", obj{"body": "on it", "client_id": "cl-new", "if_version": 2})
		// The agent repeating it gets the same answer.
		if again := f.ag.must(200, "POST", "/v1/conversations/"+convID+"/messages", obj{"body": "on it", "client_id": "cl-1"}); str(t, again, "id") != str(t, rep, "id") {
			t.Errorf("agent repeat: %v", again)
		}
	})

	t.Run("client_id is scoped to the conversation", func(t *testing.T) {
		f := f.in(t)
		other := str(t, f.inbound(obj{"handle": "h2"}, "hi"), "conversation_id")
		r := f.reply(other, obj{"body": "on it", "client_id": "cl-1"})
		if str(t, r, "id") == str(t, rep, "id") {
			t.Errorf("another conversation's reply taken for a duplicate")
		}
	})

	t.Run("a reply by an agent names its author", func(t *testing.T) {
		f := f.in(t)
		r := f.ag.must(201, "POST", "/v1/conversations/"+convID+"/messages", obj{"body": "agent here"})
		checkItem(t, r, "outbound", "message")
		if a, ok := r["author_id"]; ok && a != f.tn.agentID {
			t.Errorf("author_id %v, want %s", a, f.tn.agentID)
		}
	})

	t.Run("reply to an unknown conversation", func(t *testing.T) {
		f := f.in(t)
		expectErr(t, f.k, 404, "not_found", "POST", "/v1/conversations/cv_nope/messages", obj{"body": "x"})
		expectErr(t, f.k, 404, "not_found", "GET", "/v1/conversations/cv_nope", nil)
		expectErr(t, f.k, 404, "not_found", "PATCH", "/v1/conversations/cv_nope", obj{"status": "closed"})
		expectErr(t, f.k, 404, "not_found", "GET", "/v1/conversations/cv_nope/messages", nil)
	})
}

func TestRESTPatchConversation(t *testing.T) {
	f := newFixture(t)
	convID := str(t, f.inbound(obj{"phone": "+14155550123"}, "hello"), "conversation_id")
	path := "/v1/conversations/" + convID

	s := f.patch(f.k, convID, obj{"assignee_id": f.tn.agentID, "tags_add": []string{"vip", "billing", "vip"}, "status": "pending"})
	checkSummary(t, s)
	if str(t, s, "assignee_id") != f.tn.agentID || str(t, s, "status") != "pending" || num(t, s, "version") != 2 {
		t.Errorf("after assign+tag+pending: %v", s)
	}
	if tags := list(t, s, "tags"); len(tags) != 2 || !slices.Contains(tags, any("vip")) || !slices.Contains(tags, any("billing")) {
		t.Errorf("tags %v, want billing and vip once each", tags)
	}

	t.Run("if_version mismatch is 409 and changes nothing", func(t *testing.T) {
		f := f.in(t)
		before := rows(t, f.n)
		for _, v := range []int64{0, 1, 3, 99} {
			expectErr(t, f.k, 409, "conflict", "PATCH", path, obj{"status": "closed", "if_version": v, "tags_add": []string{"x"}})
		}
		// Also when the rest of the update would change nothing.
		expectErr(t, f.k, 409, "conflict", "PATCH", path, obj{"status": "pending", "if_version": 1})
		sameRows(t, "stale if_version", before, rows(t, f.n))
		g := f.get(convID)
		if num(t, g, "version") != 2 || str(t, g, "status") != "pending" || len(list(t, g, "tags")) != 2 {
			t.Errorf("after conflicts: %v", g)
		}
		// The matching version applies.
		s := f.patch(f.k, convID, obj{"status": "open", "if_version": 2})
		if num(t, s, "version") != 3 || str(t, s, "status") != "open" {
			t.Errorf("matching if_version: %v", s)
		}
	})

	t.Run("assignee_id null unassigns, absent leaves it", func(t *testing.T) {
		f := f.in(t)
		s := f.patch(f.k, convID, obj{"addressed": true})
		if str(t, s, "assignee_id") != f.tn.agentID || s["addressed"] != true || !isNull(t, s, "waiting_since") {
			t.Errorf("absent assignee_id changed it, or addressed failed: %v", s)
		}
		v := num(t, s, "version")
		s = f.patch(f.k, convID, obj{"assignee_id": nil})
		if !isNull(t, s, "assignee_id") || num(t, s, "version") != v+1 {
			t.Errorf("assignee_id null: %v", s)
		}
		if g := f.get(convID); !isNull(t, g, "assignee_id") {
			t.Errorf("GET after unassign: %v", g["assignee_id"])
		}
		// The agent may assign itself.
		s = f.patch(f.ag, convID, obj{"assignee_id": f.tn.agentID})
		if str(t, s, "assignee_id") != f.tn.agentID {
			t.Errorf("agent self-assign: %v", s)
		}
		s = f.patch(f.k, convID, obj{"addressed": false})
		if s["addressed"] != false || isNull(t, s, "waiting_since") {
			t.Errorf("addressed=false: %v", s)
		}
	})

	t.Run("tags are a set", func(t *testing.T) {
		f := f.in(t)
		s := f.patch(f.k, convID, obj{"tags_add": []string{"urgent"}, "tags_remove": []string{"billing", "absent"}})
		tags := list(t, s, "tags")
		if len(tags) != 2 || !slices.Contains(tags, any("urgent")) || !slices.Contains(tags, any("vip")) {
			t.Errorf("tags %v, want urgent and vip", tags)
		}
		v := num(t, s, "version")
		// Adding what is there and removing what is not changes nothing.
		s = f.patch(f.k, convID, obj{"tags_add": []string{"vip"}, "tags_remove": []string{"nope"}})
		if num(t, s, "version") != v {
			t.Errorf("no-op tags update moved the version %d → %d", v, num(t, s, "version"))
		}
		s = f.patch(f.k, convID, obj{"tags_remove": []string{"vip", "urgent"}})
		if tags := list(t, s, "tags"); len(tags) != 0 {
			t.Errorf("tags %v, want []", tags)
		}
	})

	t.Run("empty PATCH is a no-op", func(t *testing.T) {
		f := f.in(t)
		v := num(t, f.get(convID), "version")
		s := f.patch(f.k, convID, obj{})
		checkSummary(t, s)
		if num(t, s, "version") != v {
			t.Errorf("empty PATCH moved version %d → %d", v, num(t, s, "version"))
		}
		s = f.patch(f.k, convID, obj{"if_version": v})
		if num(t, s, "version") != v {
			t.Errorf("if_version-only PATCH moved the version")
		}
	})

	t.Run("close, then an inbound message reopens", func(t *testing.T) {
		f := f.in(t)
		f.reply(convID, obj{"body": "sorted"})
		s := f.patch(f.k, convID, obj{"status": "closed"})
		if str(t, s, "status") != "closed" {
			t.Fatalf("close: %v", s)
		}
		f.settle()
		ids, _ := listIDs(t, f.k, f.tn.inbox, url.Values{})
		if slices.Contains(ids, convID) {
			t.Errorf("default list shows a closed conversation")
		}
		ids, _ = listIDs(t, f.k, f.tn.inbox, url.Values{"status": {"closed"}})
		if !slices.Contains(ids, convID) {
			t.Errorf("status=closed lacks the closed conversation")
		}
		r := f.inbound(obj{"phone": "+14155550123"}, "one more thing")
		if str(t, r, "conversation_id") != convID {
			t.Fatalf("inbound after close made a new conversation %s, want %s", str(t, r, "conversation_id"), convID)
		}
		c := sub(t, r, "conversation")
		if str(t, c, "status") != "open" || c["addressed"] != false || isNull(t, c, "waiting_since") {
			t.Errorf("after reopening: %v", c)
		}
		f.settle()
		ids, _ = listIDs(t, f.k, f.tn.inbox, url.Values{})
		if !slices.Contains(ids, convID) {
			t.Errorf("reopened conversation missing from the default list")
		}
	})
}

func TestRESTCallsAndTimeline(t *testing.T) {
	f := newFixture(t)
	ann := obj{"phone": "+14155550123"}
	bob := obj{"phone": "+14155550199"}

	convID := str(t, f.inbound(ann, "m1"), "conversation_id")
	f.inbound(ann, "m2")
	f.inbound(ann, "m3")
	f.reply(convID, obj{"body": "r4"})
	f.reply(convID, obj{"body": "n5", "kind": "note"})

	// The call: one item (seq 6) updated in place through its states.
	var callItemID string
	var lastActivity time.Time
	steps := []struct {
		state  string
		extra  obj
		active bool
	}{
		{"ringing", nil, true},
		{"in_progress", nil, true},
		{"completed", obj{"duration_s": 93, "recording_url": "https://rec.example.com/c1.mp3"}, false},
	}
	for i, st := range steps {
		// Another conversation gets newer activity first, so the call event
		// must move this one back to the top of sort=recent.
		f.inbound(bob, "interleaved")
		r := f.call(ann, "call-1", st.state, st.extra)
		if str(t, r, "conversation_id") != convID {
			t.Fatalf("call landed in %s, want %s", str(t, r, "conversation_id"), convID)
		}
		it := sub(t, r, "call")
		if str(t, it, "call_id") != "call-1" || str(t, it, "state") != st.state || num(t, it, "seq") != 6 || str(t, it, "kind") != "call" {
			t.Errorf("%s: call item %v, want call-1 at seq 6", st.state, it)
		}
		if i == 0 {
			callItemID = str(t, it, "id")
		} else if str(t, it, "id") != callItemID {
			t.Errorf("%s: call item id %s, want %s (same item)", st.state, str(t, it, "id"), callItemID)
		}
		c := sub(t, r, "conversation")
		checkSummary(t, c)
		if v := num(t, c, "version"); v != int64(6+i) {
			t.Errorf("%s: version %d, want %d", st.state, v, 6+i)
		}
		at := rfc3339(t, c, "last_activity_at")
		if !at.After(lastActivity) {
			t.Errorf("%s: last_activity_at %v did not move past %v", st.state, at, lastActivity)
		}
		lastActivity = at
		if st.active {
			if isNull(t, c, "active_call") || str(t, c, "active_call.call_id") != "call-1" || str(t, c, "active_call.state") != st.state {
				t.Errorf("%s: active_call %v", st.state, c["active_call"])
			}
		} else if !isNull(t, c, "active_call") {
			t.Errorf("%s: active_call %v, want null", st.state, c["active_call"])
		}
		f.settle()
		ids, _ := listIDs(t, f.k, f.tn.inbox, url.Values{"sort": {"recent"}})
		if len(ids) != 2 || ids[0] != convID {
			t.Errorf("%s: sort=recent gives %v, want %s first", st.state, ids, convID)
		}
		g := f.get(convID)
		if str(t, g, "last_activity_at") != str(t, c, "last_activity_at") || num(t, g, "version") != num(t, c, "version") {
			t.Errorf("%s: GET %v differs from the call's summary %v", st.state, g, c)
		}
	}
	// A ringing that arrives after the hang-up is activity (every call
	// event is), but the call stays as it was and no call shows as active.
	f.inbound(bob, "interleaved")
	late := f.call(ann, "call-1", "ringing")
	if it := sub(t, late, "call"); str(t, it, "state") != "completed" || str(t, it, "id") != callItemID || num(t, it, "duration_s") != 93 {
		t.Errorf("a late ringing answered the call %v, want it completed as it was", it)
	}
	if c := sub(t, late, "conversation"); num(t, c, "version") != 9 || !isNull(t, c, "active_call") ||
		!rfc3339(t, c, "last_activity_at").After(lastActivity) || str(t, c, "last_message.body") != "Call completed (93s)" {
		t.Errorf("a late ringing: %v, want version 9, last_activity_at moved, no active call", c)
	}
	f.settle()
	if ids, _ := listIDs(t, f.k, f.tn.inbox, url.Values{"sort": {"recent"}}); len(ids) != 2 || ids[0] != convID {
		t.Errorf("late ringing: sort=recent gives %v, want %s first", ids, convID)
	}
	f.inbound(ann, "m10")

	t.Run("paging newest first", func(t *testing.T) {
		f := f.in(t)
		base := "/v1/conversations/" + convID + "/messages"
		all := f.k.must(200, "GET", base, nil)
		if !isNull(t, all, "next_before") {
			t.Errorf("one page holds all: next_before %v, want null", all["next_before"])
		}
		var seqs []int64
		for _, x := range list(t, all, "messages") {
			seqs = append(seqs, num(t, x.(obj), "seq"))
		}
		if !slices.Equal(seqs, []int64{10, 6, 5, 4, 3, 2, 1}) {
			t.Fatalf("seqs %v, want [10 6 5 4 3 2 1]", seqs)
		}
		kinds := map[int64]string{10: "message", 6: "call", 5: "note", 4: "message", 3: "message", 2: "message", 1: "message"}
		dirs := map[int64]string{10: "inbound", 6: "inbound", 5: "outbound", 4: "outbound", 3: "inbound", 2: "inbound", 1: "inbound"}
		for _, x := range list(t, all, "messages") {
			it := x.(obj)
			s := num(t, it, "seq")
			checkItem(t, it, dirs[s], kinds[s])
		}
		callItem := list(t, all, "messages")[1].(obj)
		if str(t, callItem, "id") != callItemID || str(t, callItem, "call_id") != "call-1" || str(t, callItem, "state") != "completed" ||
			num(t, callItem, "duration_s") != 93 || str(t, callItem, "recording_url") != "https://rec.example.com/c1.mp3" ||
			str(t, callItem, "channel") != "voice" {
			t.Errorf("call item: %v", callItem)
		}

		var got []int64
		before := ""
		pages := 0
		for {
			q := "?limit=3"
			if before != "" {
				q += "&before=" + before
			}
			page := f.k.must(200, "GET", base+q, nil)
			items := list(t, page, "messages")
			if len(items) > 3 {
				t.Fatalf("page of %d items with limit=3", len(items))
			}
			for _, x := range items {
				got = append(got, num(t, x.(obj), "seq"))
			}
			pages++
			if isNull(t, page, "next_before") {
				break
			}
			nb := num(t, page, "next_before")
			if nb != got[len(got)-1] {
				t.Errorf("next_before %d, want the last seq of the page %d", nb, got[len(got)-1])
			}
			before = strconv.FormatInt(nb, 10)
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		if !slices.Equal(got, seqs) || pages != 3 {
			t.Errorf("paged seqs %v in %d pages, want %v in 3", got, pages, seqs)
		}
		// before=6 gives what is older than seq 6.
		page := f.k.must(200, "GET", base+"?before=6&limit=2", nil)
		if s := list(t, page, "messages"); len(s) != 2 || num(t, s[0].(obj), "seq") != 5 || num(t, s[1].(obj), "seq") != 4 || num(t, page, "next_before") != 4 {
			t.Errorf("before=6&limit=2: %v", page)
		}
		page = f.k.must(200, "GET", base+"?before=1", nil)
		if len(list(t, page, "messages")) != 0 || !isNull(t, page, "next_before") {
			t.Errorf("before=1: %v, want no messages and next_before null", page)
		}
		page = f.k.must(200, "GET", base+"?limit=7", nil)
		if len(list(t, page, "messages")) != 7 || !isNull(t, page, "next_before") {
			t.Errorf("limit=7 of 7: next_before %v, want null", page["next_before"])
		}
		f.k.must(200, "GET", base+"?limit=1", nil)
		f.k.must(200, "GET", base+"?limit=200", nil)
		f.ag.must(200, "GET", base+"?limit=2", nil)
	})

	t.Run("first call event of a new contact", func(t *testing.T) {
		f := f.in(t)
		r := f.call(obj{"phone": "+14155550177", "name": "Carl"}, "call-2", "ringing")
		c := sub(t, r, "conversation")
		checkSummary(t, c)
		if num(t, c, "version") != 1 || str(t, c, "channel") != "voice" || str(t, c, "status") != "new" || c["addressed"] != false ||
			str(t, c, "active_call.state") != "ringing" || num(t, r, "call.seq") != 1 || str(t, c, "last_message.kind") != "call" {
			t.Errorf("first call event: %v", r)
		}
		// A call that is missed outright never shows as active.
		r = f.call(obj{"phone": "+14155550178"}, "call-3", "missed")
		if !isNull(t, sub(t, r, "conversation"), "active_call") || str(t, r, "call.state") != "missed" {
			t.Errorf("missed call: %v", r)
		}
		r = f.call(obj{"phone": "+14155550178"}, "call-4", "voicemail", obj{"recording_url": "https://rec.example.com/vm.mp3"})
		if num(t, r, "call.seq") != 2 || str(t, r, "call.recording_url") != "https://rec.example.com/vm.mp3" {
			t.Errorf("voicemail: %v", r)
		}
	})
}

// rawPost is safe to call from any goroutine (it never fails the test).
func rawPost(base, token, path string, body any) (int, obj, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var m obj
	err = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m, err
}

// TestRESTCallOneItemAfterManyCalls: a call the conversation's memory has
// dropped (hundreds of calls later) is still one item, updated in place,
// and an older call's update leaves the newest item as the preview.
func TestRESTCallOneItemAfterManyCalls(t *testing.T) {
	f := newFixture(t)
	ann := obj{"phone": "+14155550123"}
	first := f.call(ann, "c0", "ringing")
	convID, itemID := str(t, first, "conversation_id"), str(t, first, "call.id")
	const later = 300 // over what a conversation's state remembers
	for i := range later {
		f.call(ann, fmt.Sprintf("c%d", i+1), "missed")
	}
	f.reply(convID, obj{"body": "a note", "kind": "note"})
	r := f.call(ann, "c0", "completed", obj{"duration_s": 42})
	if str(t, r, "call.id") != itemID || num(t, r, "call.seq") != 1 || str(t, r, "call.state") != "completed" {
		t.Fatalf("c0 completed as %v, want item %s at seq 1", r["call"], itemID)
	}
	c := sub(t, r, "conversation")
	if str(t, c, "last_message.kind") != "note" || !isNull(t, c, "active_call") {
		t.Errorf("summary after an old call ended: %v, want the note as last_message and no active call", c)
	}
	page := f.k.must(200, "GET", "/v1/conversations/"+convID+"/messages?before=3&limit=10", nil)
	if items := list(t, page, "messages"); len(items) != 2 || str(t, items[1].(obj), "id") != itemID || str(t, items[1].(obj), "state") != "completed" {
		t.Errorf("the timeline's first items: %v", items)
	}
	if n := num(t, f.get(convID), "version"); n != later+3 {
		t.Errorf("version %d, want %d: one event per call event and the note", n, later+3)
	}
}

func TestRESTConcurrentWrites(t *testing.T) {
	f := newFixture(t)
	contact := obj{"phone": "+14155550123"}
	path := "/v1/inboxes/" + f.tn.inbox + "/messages"

	type result struct {
		status int
		m      obj
		err    error
	}
	run := func(n int, path string, body func(i int) obj) []result {
		out := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s, m, err := rawPost(f.n.URL(), f.tn.key, path, body(i))
				out[i] = result{s, m, err}
			})
		}
		wg.Wait()
		return out
	}

	// 20 distinct messages and 10 copies of one external_id, all at once, to
	// a contact with no conversation yet.
	res := run(30, path, func(i int) obj {
		ext := fmt.Sprintf("ext-%d", i)
		if i >= 20 {
			ext = "same"
		}
		return obj{"contact": contact, "body": fmt.Sprintf("m%d", i), "external_id": ext}
	})
	created, dupOK := 0, 0
	var convID, sameID string
	versions := map[int64]bool{}
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		switch r.status {
		case 201:
			created++
			v := num(t, r.m, "conversation.version")
			if versions[v] {
				t.Errorf("two acknowledged messages at version %d", v)
			}
			versions[v] = true
			if num(t, r.m, "message.seq") != v {
				t.Errorf("message seq %d at version %d", num(t, r.m, "message.seq"), v)
			}
		case 200:
			dupOK++
		default:
			t.Errorf("request %d: status %d: %v", i, r.status, r.m)
			continue
		}
		if convID == "" {
			convID = str(t, r.m, "conversation_id")
		} else if str(t, r.m, "conversation_id") != convID {
			t.Errorf("two conversations for one contact: %s and %s", convID, str(t, r.m, "conversation_id"))
		}
		if i >= 20 {
			if id := str(t, r.m, "message.id"); sameID == "" {
				sameID = id
			} else if id != sameID {
				t.Errorf("external_id \"same\" answered with two messages %s and %s", sameID, id)
			}
		}
	}
	if created != 21 || dupOK != 9 {
		t.Errorf("%d created and %d duplicates, want 21 and 9", created, dupOK)
	}
	for v := int64(1); v <= 21; v++ {
		if !versions[v] {
			t.Errorf("no message at version %d: versions are not contiguous", v)
		}
	}
	page := f.k.must(200, "GET", "/v1/conversations/"+convID+"/messages?limit=200", nil)
	if n := len(list(t, page, "messages")); n != 21 {
		t.Errorf("%d messages stored, want 21", n)
	}

	// Ten copies of one reply at once: one message.
	res = run(10, "/v1/conversations/"+convID+"/messages", func(int) obj { return obj{"body": "once", "client_id": "cl-x"} })
	created, dupOK = 0, 0
	replyID := ""
	for _, r := range res {
		if r.err != nil {
			t.Fatal(r.err)
		}
		switch r.status {
		case 201:
			created++
		case 200:
			dupOK++
		default:
			t.Errorf("reply: status %d: %v", r.status, r.m)
			continue
		}
		if replyID == "" {
			replyID = str(t, r.m, "id")
		} else if str(t, r.m, "id") != replyID {
			t.Errorf("client_id answered with two messages")
		}
	}
	if created != 1 || dupOK != 9 {
		t.Errorf("replies: %d created and %d duplicates, want 1 and 9", created, dupOK)
	}
	if v := num(t, f.get(convID), "version"); v != 22 {
		t.Errorf("version %d, want 22", v)
	}
	f.settle()
}

func TestRESTDuplicateFromAnotherContactCreatesNothing(t *testing.T) {
	f := newFixture(t)
	first := f.inbound(obj{"phone": "+14155550123"}, "hello", obj{"external_id": "x-1"})
	before := rows(t, f.n)
	r := f.k.must(200, "POST", "/v1/inboxes/"+f.tn.inbox+"/messages", obj{"contact": obj{"email": "eve@example.com"}, "body": "hello", "external_id": "x-1"})
	if str(t, r, "message.id") != str(t, first, "message.id") || str(t, r, "conversation_id") != str(t, first, "conversation_id") {
		t.Errorf("duplicate answered %v", r)
	}
	sameRows(t, "duplicate from another contact", before, rows(t, f.n))
	// The other contact's conversation does not exist.
	ghost := conversation.ID(f.tn.inbox, conversation.ContactKey(conversation.Contact{Email: "eve@example.com"}))
	expectErr(t, f.k, 404, "not_found", "GET", "/v1/conversations/"+ghost, nil)
	expectErr(t, f.k, 404, "not_found", "GET", "/v1/conversations/"+ghost+"/messages", nil)
	expectErr(t, f.k, 404, "not_found", "POST", "/v1/conversations/"+ghost+"/messages", obj{"body": "x"})
	expectErr(t, f.k, 404, "not_found", "PATCH", "/v1/conversations/"+ghost, obj{"status": "closed"})
	sameRows(t, "requests on a conversation that does not exist", before, rows(t, f.n))
	f.settle()
	if n := num(t, f.k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox+"/conversations?"+allStatuses, nil), "total"); n != 1 {
		t.Errorf("total %d, want 1", n)
	}
}
