package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// Automation end to end (docs/api.md "Automation"): durable timers fire on the
// conversation's own path, as events by the actor "automation".

func (f *fixture) settings(req obj) obj {
	f.t.Helper()
	return f.k.must(200, "PATCH", "/v1/inboxes/"+f.tn.inbox, req)
}

// awaitConv polls a conversation until cond holds and returns it.
func (f *fixture) awaitConv(id string, within time.Duration, what string, cond func(obj) bool) obj {
	f.t.Helper()
	var got obj
	poll.Until(f.t, within, what, func() bool {
		got = f.k.must(200, "GET", "/v1/conversations/"+id, nil)
		return cond(got)
	})
	return got
}

// lastEventAt is when the conversation's newest journal event committed:
// the server's own time for what a timer did, free of the test's polling
// and of how long the machine took to run the test's next line.
func (f *fixture) lastEventAt(id string) time.Time {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var at time.Time
	if err := f.n.Store().Pool().QueryRow(ctx, `SELECT created_at FROM journal WHERE conversation_id = $1
		ORDER BY version DESC LIMIT 1`, id).Scan(&at); err != nil {
		f.t.Fatalf("newest event of %s: %v", id, err)
	}
	return at
}

func TestInboxSettings(t *testing.T) {
	f := newFixture(t)
	got := f.k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox, nil)
	if !isNull(t, got, "auto_close_after_s") || !isNull(t, got, "sla_first_response_s") || str(t, got, "auto_assign") != "none" {
		t.Fatalf("defaults: %v", got)
	}
	got = f.settings(obj{"auto_close_after_s": 3600, "sla_first_response_s": 60, "auto_assign": "round_robin", "name": "Renamed"})
	if num(t, got, "auto_close_after_s") != 3600 || num(t, got, "sla_first_response_s") != 60 ||
		str(t, got, "auto_assign") != "round_robin" || str(t, got, "name") != "Renamed" {
		t.Fatalf("after PATCH: %v", got)
	}
	got = f.settings(obj{"auto_close_after_s": nil})
	if !isNull(t, got, "auto_close_after_s") || num(t, got, "sla_first_response_s") != 60 {
		t.Fatalf("null turns one setting off and leaves the other: %v", got)
	}
	for _, bad := range []obj{{"auto_close_after_s": 0}, {"sla_first_response_s": 1.5}, {"auto_assign": "random"}, {"auto_close_after_s": "10"},
		{"sla_first_response_s": 315360001}, {"auto_close_after_s": 1 << 62}} {
		expectErr(t, f.k, 400, "invalid_argument", "PATCH", "/v1/inboxes/"+f.tn.inbox, bad)
	}
	// The documented bound, ten years, is accepted (and the answer
	// validates against the document that states it).
	if got := f.settings(obj{"sla_first_response_s": 315360000}); num(t, got, "sla_first_response_s") != 315360000 {
		t.Fatalf("ten years: %v", got)
	}
	f.settings(obj{"sla_first_response_s": 60})
	// Whole seconds written as an encoder may write them: 120.0, 1.2e2.
	for _, whole := range []string{`{"auto_close_after_s":120.0}`, `{"auto_close_after_s":1.2e2}`} {
		if got := f.k.must(200, "PATCH", "/v1/inboxes/"+f.tn.inbox, whole); num(t, got, "auto_close_after_s") != 120 {
			t.Fatalf("%s: %v", whole, got)
		}
	}
	f.settings(obj{"auto_close_after_s": nil})
	// The phone number: changed, refused when malformed (nothing written),
	// removed with null; the other settings stay.
	if got := f.settings(obj{"phone_number": "+14155550123"}); str(t, got, "phone_number") != "+14155550123" || num(t, got, "sla_first_response_s") != 60 {
		t.Fatalf("a new number: %v", got)
	}
	for _, bad := range []obj{{"phone_number": "555-0123"}, {"phone_number": ""}, {"phone_number": 14155550123}, {"phone_number": "+1", "name": "Not renamed"}} {
		expectErr(t, f.k, 400, "invalid_argument", "PATCH", "/v1/inboxes/"+f.tn.inbox, bad)
	}
	if got := f.k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox, nil); str(t, got, "phone_number") != "+14155550123" || str(t, got, "name") != "Renamed" {
		t.Fatalf("refused patches wrote something: %v", got)
	}
	if got := f.settings(obj{"phone_number": nil}); !isNull(t, got, "phone_number") {
		t.Fatalf("null removes the number: %v", got)
	}
	expectErr(t, f.ag, 403, "forbidden", "PATCH", "/v1/inboxes/"+f.tn.inbox, obj{"auto_assign": "none"})
	if got := f.ag.must(200, "GET", "/v1/inboxes/"+f.tn.inbox, nil); str(t, got, "auto_assign") != "round_robin" {
		t.Fatalf("agent GET: %v", got)
	}
	for _, bad := range []obj{{"auto_assign": 1}, {"auto_assign": ""}} {
		expectErr(t, f.k, 400, "invalid_argument", "PATCH", "/v1/inboxes/"+f.tn.inbox, bad)
	}
	// null is the default, as for the durations.
	if got := f.settings(obj{"auto_assign": nil}); str(t, got, "auto_assign") != "none" {
		t.Fatalf("auto_assign null: %v, want none", got)
	}
	other := newTenant(t, f.c, "Other")
	expectErr(t, f.c.with(other.key), 404, "not_found", "GET", "/v1/inboxes/"+f.tn.inbox, nil)
	expectErr(t, f.c.with(other.key), 404, "not_found", "PATCH", "/v1/inboxes/"+f.tn.inbox, obj{"auto_assign": "none"})
}

func TestAutoClose(t *testing.T) {
	f := newFixture(t)
	f.settings(obj{"auto_close_after_s": 2})
	m := f.inbound(phoneContact(1), "hello")
	id := str(t, m, "conversation_id")
	// A new inbound message a second later moves the deadline.
	poll.Until(t, 3*time.Second, "a second to pass", func() bool {
		return time.Since(rfc3339(t, sub(t, m, "conversation"), "last_activity_at")) >= time.Second
	})
	m = f.inbound(phoneContact(1), "still there?")
	last := rfc3339(t, sub(t, m, "conversation"), "last_activity_at")
	// Decided under the inbox's current settings, the deadline is stored as
	// decided (one decided under older settings would be stored as now).
	var due time.Time
	if err := f.n.Store().Pool().QueryRow(context.Background(), `SELECT due_at FROM conversations WHERE id = $1`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if d := due.Sub(last.Add(2 * time.Second)); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("due_at %v, want the last activity %v + 2 s", due, last)
	}
	got := f.awaitConv(id, 5*time.Second, "auto-close", func(s obj) bool { return str(t, s, "status") == "closed" })
	closedAfter := f.lastEventAt(id).Sub(last)
	if closedAfter < 2*time.Second || closedAfter > 3*time.Second+500*time.Millisecond {
		t.Fatalf("closed %s after the last activity, want 2–3 s", closedAfter)
	}
	if num(t, got, "version") != 3 {
		t.Fatalf("version %d, want 3 (two messages and the close)", num(t, got, "version"))
	}
	checkSummary(t, got)
}

func TestSnooze(t *testing.T) {
	f := newFixture(t)
	a := str(t, f.inbound(phoneContact(1), "a"), "conversation_id")
	b := str(t, f.inbound(phoneContact(2), "b"), "conversation_id")
	until := time.Now().Add(2 * time.Second).UTC()
	for _, id := range []string{a, b} {
		s := f.patch(f.k, id, obj{"status": "pending", "snooze_until": until.Format(time.RFC3339Nano)})
		// Kept to the microsecond, as the API keeps every time.
		if str(t, s, "status") != "pending" || !rfc3339(t, s, "snooze_until").Equal(until.Truncate(time.Microsecond)) {
			t.Fatalf("snoozed until %v: %v", until, s)
		}
	}
	// b hears from the contact: open at once, snooze gone.
	s := sub(t, f.inbound(phoneContact(2), "hello?"), "conversation")
	if str(t, s, "status") != "open" || !isNull(t, s, "snooze_until") {
		t.Fatalf("inbound on a snoozed conversation: %v", s)
	}
	got := f.awaitConv(a, 4*time.Second, "snooze to end", func(s obj) bool { return str(t, s, "status") == "open" })
	if late := f.lastEventAt(a).Sub(until); late < 0 || late > time.Second+500*time.Millisecond {
		t.Fatalf("woke %s after snooze_until", late)
	}
	if !isNull(t, got, "snooze_until") {
		t.Fatalf("snooze_until after waking: %v", got)
	}
	// Bad snoozes write nothing.
	before := rows(t, f.n)
	for _, bad := range []obj{
		{"snooze_until": time.Now().Add(time.Hour).Format(time.RFC3339)}, // open conversation
		{"status": "pending", "snooze_until": time.Now().Add(-time.Hour).Format(time.RFC3339)},
		{"status": "pending", "snooze_until": time.Now().Add(400 * 24 * time.Hour).Format(time.RFC3339)},
		{"status": "pending", "snooze_until": "tomorrow"},
	} {
		expectErr(t, f.k, 400, "invalid_argument", "PATCH", "/v1/conversations/"+a, bad)
	}
	sameRows(t, "bad snoozes", before, rows(t, f.n))
}

func TestSLA(t *testing.T) {
	f := newFixture(t)
	f.settings(obj{"sla_first_response_s": 2})
	m := f.inbound(phoneContact(1), "help")
	id := str(t, m, "conversation_id")
	s := sub(t, m, "conversation")
	due := rfc3339(t, s, "sla_due_at")
	if want := rfc3339(t, s, "waiting_since").Add(2 * time.Second); !due.Equal(want) || s["sla_breached"] != false {
		t.Fatalf("sla_due_at %v, want %v; summary %v", due, want, s)
	}
	f.awaitConv(id, 4*time.Second, "SLA breach", func(s obj) bool { return s["sla_breached"] == true })
	if late := f.lastEventAt(id).Sub(due); late < 0 || late > time.Second+500*time.Millisecond {
		t.Fatalf("breached %s after sla_due_at", late)
	}
	counts := f.k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox+"/counts", nil)
	if num(t, counts, "sla_breached") != 1 {
		t.Fatalf("counts: %v", counts)
	}
	f.reply(id, obj{"body": "on it"})
	got := f.get(id)
	if got["sla_breached"] != false || !isNull(t, got, "sla_due_at") {
		t.Fatalf("after a reply: %v", got)
	}
	poll.Until(t, 5*time.Second, "sla_breached count to clear", func() bool {
		return num(t, f.k.must(200, "GET", "/v1/inboxes/"+f.tn.inbox+"/counts", nil), "sla_breached") == 0
	})
	ids, _ := listIDs(t, f.k, f.tn.inbox, map[string][]string{"sort": {"sla_due"}})
	if len(ids) != 1 {
		t.Fatalf("sla_due list: %v", ids)
	}
}

func TestReplyIfVersion(t *testing.T) {
	f := newFixture(t)
	m := f.inbound(phoneContact(1), "hi")
	id := str(t, m, "conversation_id")
	v := num(t, sub(t, m, "conversation"), "version")
	f.inbound(phoneContact(1), "one more thing")
	before := rows(t, f.n)
	expectErr(t, f.ag, 409, "conflict", "POST", "/v1/conversations/"+id+"/messages", obj{"body": "stale", "if_version": v})
	sameRows(t, "stale if_version", before, rows(t, f.n))
	f.k.must(201, "POST", "/v1/conversations/"+id+"/messages", obj{"body": "fresh", "if_version": v + 1})
}

// TestTimersAcrossRestart: timers that fall due while no node runs fire
// within a second of the next node's start, from a passivated state.
func TestTimersAcrossRestart(t *testing.T) {
	url := pgtest.NewDatabase(t)
	n1, stop1 := nodeOn(t, url)
	c := api{t: t, base: n1.URL()}
	tn := newTenant(t, c, "Acme")
	k := c.with(tn.key)
	k.must(200, "PATCH", "/v1/inboxes/"+tn.inbox, obj{"auto_close_after_s": 2})
	var ids []string
	var lastAt time.Time
	for i := range 5 {
		m := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": "hi"})
		ids = append(ids, str(t, m, "conversation_id"))
		lastAt = rfc3339(t, sub(t, m, "conversation"), "last_activity_at")
	}
	stop1()
	poll.Until(t, 5*time.Second, "the timers to fall due while down", func() bool {
		return time.Since(lastAt) > 2500*time.Millisecond
	})
	n2, _ := nodeOn(t, url)
	started := time.Now()
	k2 := api{t: t, base: n2.URL(), token: tn.key}
	for _, id := range ids {
		poll.Until(t, 5*time.Second, "auto-close after restart", func() bool {
			return str(t, k2.must(200, "GET", "/v1/conversations/"+id, nil), "status") == "closed"
		})
	}
	if d := time.Since(started); d > 1500*time.Millisecond {
		t.Fatalf("timers fired %s after the restart, want within a second", d)
	}
}

// TestRoundRobin: 300 new conversations over 3 agents, one set away half
// way; the rotation continues across a restart.
func TestRoundRobin(t *testing.T) {
	url := pgtest.NewDatabase(t)
	n1, stop1 := nodeOn(t, url)
	c := api{t: t, base: n1.URL()}
	tn := newTenant(t, c, "Acme")
	k := c.with(tn.key)
	agents := []string{tn.agentID}
	tokens := map[string]string{tn.agentID: tn.agentToken}
	for i := range 2 {
		ag := k.must(201, "POST", "/v1/agents", obj{"name": fmt.Sprint("Agent ", i), "email": fmt.Sprintf("a%d@example.com", i), "inbox_ids": []string{tn.inbox}})
		a := sub(t, ag, "agent")
		if str(t, a, "status") != "available" {
			t.Fatalf("new agent: %v", a)
		}
		agents = append(agents, str(t, a, "id"))
		tokens[str(t, a, "id")] = str(t, ag, "token")
	}
	k.must(200, "PATCH", "/v1/inboxes/"+tn.inbox, obj{"auto_assign": "round_robin"})

	// Agents may change only their own status.
	expectErr(t, c.with(tokens[agents[0]]), 403, "forbidden", "PATCH", "/v1/agents/"+agents[1], obj{"status": "away"})
	expectErr(t, k, 400, "invalid_argument", "PATCH", "/v1/agents/"+agents[1], obj{"status": "busy"})

	assigned := func(base string, from, to int) map[string]int {
		t.Helper()
		kk := api{t: t, base: base, token: tn.key}
		share := map[string]int{}
		for i := from; i < to; i++ {
			m := kk.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": phoneContact(i), "body": "hi"})
			id := str(t, m, "conversation_id")
			var who string
			poll.Until(t, 5*time.Second, "round-robin assignment", func() bool {
				s := kk.must(200, "GET", "/v1/conversations/"+id, nil)
				if isNull(t, s, "assignee_id") {
					return false
				}
				who = str(t, s, "assignee_id")
				return true
			})
			share[who]++
		}
		return share
	}
	checkShares := func(share map[string]int, avail []string) {
		t.Helper()
		lo, hi := 1<<30, 0
		for a, n := range share {
			if !contains(avail, a) {
				t.Fatalf("assigned to %s, not available: %v", a, share)
			}
			lo, hi = min(lo, n), max(hi, n)
		}
		if len(share) != len(avail) || hi-lo > 1 {
			t.Fatalf("shares %v over %v differ by more than one", share, avail)
		}
	}
	checkShares(assigned(n1.URL(), 0, 150), agents)
	c.with(tokens[agents[1]]).must(200, "PATCH", "/v1/agents/"+agents[1], obj{"status": "away"})
	avail := []string{agents[0], agents[2]}
	first := assigned(n1.URL(), 150, 225)
	stop1()
	n2, _ := nodeOn(t, url)
	second := assigned(n2.URL(), 225, 300)
	for a, n := range second {
		first[a] += n
	}
	checkShares(first, avail)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestAgentNameAndEmail: the account renames an agent and changes its
// email (validated as at creation); an agent may set only its own status.
func TestAgentNameAndEmail(t *testing.T) {
	f := newFixture(t)
	path := "/v1/agents/" + f.tn.agentID
	got := f.k.must(200, "PATCH", path, obj{"name": "Ann Renamed", "email": "ann.new@example.com"})
	if str(t, got, "name") != "Ann Renamed" || str(t, got, "email") != "ann.new@example.com" || str(t, got, "status") != "available" {
		t.Fatalf("after PATCH: %v", got)
	}
	for _, bad := range []obj{{}, {"email": "not an email"}, {"name": ""}, {"name": strings.Repeat("n", 201)}, {"status": "away", "email": "x"}} {
		expectErr(t, f.k, 400, "invalid_argument", "PATCH", path, bad)
	}
	expectErr(t, f.ag, 403, "forbidden", "PATCH", path, obj{"name": "Self-named"})
	expectErr(t, f.ag, 403, "forbidden", "PATCH", path, obj{"status": "away", "email": "me@example.com"})
	f.ag.must(200, "PATCH", path, obj{"status": "away"})
	var listed obj
	for _, a := range f.k.must(200, "GET", "/v1/agents", nil)["agents"].([]any) {
		if a.(obj)["id"] == f.tn.agentID {
			listed = a.(obj)
		}
	}
	if listed == nil || str(t, listed, "name") != "Ann Renamed" || str(t, listed, "email") != "ann.new@example.com" || str(t, listed, "status") != "away" {
		t.Fatalf("listed: %v (refused patches must write nothing)", listed)
	}
}
