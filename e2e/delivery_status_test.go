package e2e

import (
	"strings"
	"testing"
)

// Carriers report out of order and more than once: the item ends at the
// furthest status, with one event (version + 1) per real change, updated
// in place (same seq), and watchers of the timeline see it as an item.
func TestDeliveryStatusOutOfOrderAndRepeated(t *testing.T) {
	f := newFixture(t)
	in := f.inbound(phoneContact(1), "my order?")
	conv := str(t, in, "conversation_id")
	rep := f.reply(conv, obj{"body": "on its way"})
	if str(t, rep, "status") != "pending" {
		t.Fatalf("a new outbound message is pending: %v", rep)
	}
	msgID, seq := str(t, rep, "id"), num(t, rep, "seq")
	path := "/v1/conversations/" + conv + "/messages/" + msgID + "/status"
	version := num(t, f.get(conv), "version")

	steps := []struct {
		report, want string
		changed      bool
	}{
		{"delivered", "delivered", true}, // before sent
		{"sent", "delivered", false},
		{"sent", "delivered", false},
		{"queued", "delivered", false},
		{"failed", "delivered", false}, // out of a final status
	}
	for _, s := range steps {
		r := f.k.must(200, "POST", path, obj{"status": s.report, "provider_message_id": "SM1"})
		msg, sum := sub(t, r, "message"), sub(t, r, "conversation")
		checkItem(t, msg, "outbound", "message")
		if str(t, msg, "status") != s.want || num(t, msg, "seq") != seq || str(t, msg, "id") != msgID {
			t.Fatalf("report %s: message %v, want status %s at seq %d", s.report, msg, s.want, seq)
		}
		if s.changed {
			version++
		}
		if v := num(t, sum, "version"); v != version {
			t.Fatalf("report %s: version %d, want %d (one event per real change)", s.report, v, version)
		}
	}
	// The timeline shows the item updated in place.
	page := f.k.must(200, "GET", "/v1/conversations/"+conv+"/messages", nil)
	for _, it := range list(t, page, "messages") {
		m := it.(map[string]any)
		if m["id"] == msgID && (m["status"] != "delivered" || int64(m["seq"].(float64)) != seq) {
			t.Fatalf("timeline item %v", m)
		}
	}

	// A second message: queued after failed stays failed.
	rep2 := f.reply(conv, obj{"body": "again"})
	p2 := "/v1/conversations/" + conv + "/messages/" + str(t, rep2, "id") + "/status"
	f.k.must(200, "POST", p2, obj{"status": "sent"})
	r := f.k.must(200, "POST", p2, obj{"status": "failed", "error_code": "30003"})
	if m := sub(t, r, "message"); str(t, m, "status") != "failed" || str(t, m, "error_code") != "30003" {
		t.Fatalf("failed report: %v", m)
	}
	r = f.k.must(200, "POST", p2, obj{"status": "queued"})
	if str(t, sub(t, r, "message"), "status") != "failed" {
		t.Fatalf("queued after failed: %v", r)
	}

	// Not an outbound message of this conversation: 404. Bad status: 400.
	note := f.reply(conv, obj{"body": "internal", "kind": "note"})
	inMsg := sub(t, in, "message")
	other := newTenant(t, f.c, "Other")
	before := rows(t, f.n)
	for _, id := range []string{str(t, note, "id"), str(t, inMsg, "id"), "msg_nope"} {
		expectErr(t, f.k, 404, "not_found", "POST", "/v1/conversations/"+conv+"/messages/"+id+"/status", obj{"status": "sent"})
	}
	expectErr(t, f.k, 400, "invalid_argument", "POST", path, obj{"status": "pending"})
	expectErr(t, f.k, 400, "invalid_argument", "POST", path, obj{"status": "bounced"})
	expectErr(t, f.k, 400, "invalid_argument", "POST", path, obj{"status": "sent", "error_code": strings.Repeat("x", 129)})
	// Another tenant cannot see it; an agent may not report.
	expectErr(t, f.c.with(other.key), 404, "not_found", "POST", path, obj{"status": "sent"})
	expectErr(t, f.ag, 403, "forbidden", "POST", path, obj{"status": "sent"})
	sameRows(t, "refused status reports", before, rows(t, f.n))
}

// STOP then a reply → 409, a note → 201, START then a reply → 201.
func TestSMSOptOut(t *testing.T) {
	f := newFixture(t)
	in := f.inbound(phoneContact(2), "hello")
	conv := str(t, in, "conversation_id")
	first := f.reply(conv, obj{"body": "hi, how can we help?", "client_id": "draft-1"})
	stop := f.inbound(phoneContact(2), " stop ")
	if sub(t, sub(t, stop, "conversation"), "contact")["opted_out"] != true {
		t.Fatalf("STOP must set contact.opted_out: %v", stop)
	}
	before := rows(t, f.n)
	r := f.ag.do("POST", "/v1/conversations/"+conv+"/messages", obj{"body": "are you there?"})
	checkErr(t, r, 409, "conflict", "reply to an opted-out contact")
	if msg := str(t, r.json(t), "error.message"); !strings.Contains(msg, "opted out") || !strings.Contains(msg, "START") {
		t.Fatalf("the message must tell the agent why: %q", msg)
	}
	// A resend of the reply that went out before the STOP is answered
	// with it, not refused: it was sent while the contact consented.
	if again := f.k.must(200, "POST", "/v1/conversations/"+conv+"/messages", obj{"body": "hi, how can we help?", "client_id": "draft-1"}); str(t, again, "id") != str(t, first, "id") {
		t.Errorf("resend after STOP: %v, want the original %v", again, first)
	}
	sameRows(t, "refused reply", before, rows(t, f.n))
	f.ag.must(201, "POST", "/v1/conversations/"+conv+"/messages", obj{"body": "contact opted out", "kind": "note"})
	if sub(t, f.get(conv), "contact")["opted_out"] != true {
		t.Fatal("GET conversation shows opted_out")
	}
	start := f.inbound(phoneContact(2), "START")
	if sub(t, sub(t, start, "conversation"), "contact")["opted_out"] != false {
		t.Fatalf("START must clear contact.opted_out: %v", start)
	}
	f.ag.must(201, "POST", "/v1/conversations/"+conv+"/messages", obj{"body": "welcome back"})
}
