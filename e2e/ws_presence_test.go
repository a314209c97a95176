package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// expectPresence reads the next frame, which must be the conversation's
// presence with exactly the agents want (in sorted order, as docs/api.md says).
func (c *wsClient) expectPresence(conv string, want ...string) {
	c.t.Helper()
	f := c.expect("presence")
	raw, _ := f.m["agents"].([]any)
	got := make([]string, 0, len(raw))
	for _, a := range raw {
		s, _ := a.(string)
		got = append(got, s)
	}
	want = slices.Clone(want)
	slices.Sort(want)
	if f.str("conversation_id") != conv || f.m["agents"] == nil || !slices.Equal(got, want) {
		c.t.Fatalf("presence %v, want agents %v", f.m, want)
	}
}

// TestWSPresence: watchers learn which agents have the conversation open,
// once after watching and whenever that changes; an agent's second tab and
// an account key change nothing; a closed connection drops its agent.
func TestWSPresence(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Presence")
	k := c.with(tn.key)
	bea := k.must(201, "POST", "/v1/agents", map[string]any{"name": "Bea", "email": "bea@example.com", "inbox_ids": []string{tn.inbox}})
	beaID, beaToken := bea["agent"].(map[string]any)["id"].(string), bea["token"].(string)
	id := inbound(k, tn.inbox, phoneN(1), "is anyone there?")["conversation_id"].(string)
	watch := func(ws *wsClient) {
		t.Helper()
		ws.send(map[string]any{"type": "watch", "id": "w", "conversation_id": id})
		if f := ws.expect("watching"); f.str("ref") != "w" {
			t.Fatalf("watching %v", f.m)
		}
	}
	// quiet checks that nothing but the pong of a ping is waiting.
	quiet := func(ws *wsClient, who string) {
		t.Helper()
		ws.ping("quiet")
		if f := ws.expect("pong"); f.str("ref") != "quiet" {
			t.Fatalf("%s got %v", who, f.m)
		}
	}

	a := mustWS(t, n.URL(), wsOpts{token: tn.agentToken})
	watch(a)
	a.expectPresence(id, tn.agentID)

	b := mustWS(t, n.URL(), wsOpts{token: beaToken})
	watch(b)
	b.expectPresence(id, tn.agentID, beaID)
	a.expectPresence(id, tn.agentID, beaID)
	// Watching again: watching, then presence, as after every watch.
	watch(a)
	a.expectPresence(id, tn.agentID, beaID)

	// A second tab of A's, and the account key: each is told who is there,
	// and nobody else hears of it.
	a2 := mustWS(t, n.URL(), wsOpts{token: tn.agentToken})
	watch(a2)
	a2.expectPresence(id, tn.agentID, beaID)
	key := mustWS(t, n.URL(), wsOpts{token: tn.key})
	watch(key)
	key.expectPresence(id, tn.agentID, beaID)
	quiet(a, "A after a second tab and a key watched")
	quiet(b, "B after a second tab and a key watched")
	// Closing A's second tab leaves A listed.
	_ = a2.c.CloseNow()

	// B disconnects: the others hear that only A is left.
	_ = b.c.CloseNow()
	a.expectPresence(id, tn.agentID)
	key.expectPresence(id, tn.agentID)

	// A unwatches: the key sees nobody.
	a.send(map[string]any{"type": "unwatch", "conversation_id": id})
	key.expectPresence(id)
	quiet(a, "A after unwatching")

	// Presence travels like the items: in order with them.
	k.must(201, "POST", "/v1/conversations/"+id+"/messages", map[string]any{"body": "still here"})
	if f := key.until(10*time.Second, func(f wsFrame) bool { return f.typ() == "item" }); !strings.Contains(f.obj("item")["body"].(string), "still here") {
		t.Fatalf("item %v", f.m)
	}
}
