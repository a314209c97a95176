package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// awaitClosedByServer waits for the server to close ws and returns the close
// status it gave.
func awaitClosedByServer(t *testing.T, ws *wsClient, what string) websocket.StatusCode {
	t.Helper()
	select {
	case <-ws.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: websocket still open", what)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return websocket.CloseStatus(ws.err)
}

func listedIDs(t *testing.T, m obj, path string) []string {
	t.Helper()
	var out []string
	for _, v := range list(t, m, path) {
		out = append(out, str(t, v.(obj), "id"))
	}
	return out
}

func TestAPIKeyLifecycle(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	acc := c.with(testAdminToken).must(201, "POST", "/v1/admin/accounts", obj{"name": "Acme"})
	first, firstID := str(t, acc, "api_key"), str(t, acc, "api_key_id")
	k1 := c.with(first)
	if got := listedIDs(t, k1.must(200, "GET", "/v1/api-keys", nil), "api_keys"); !slices.Equal(got, []string{firstID}) {
		t.Fatalf("api keys %v, want the account's first key %s", got, firstID)
	}

	created := k1.must(201, "POST", "/v1/api-keys", nil)
	second, secondID := str(t, created, "api_key"), str(t, created, "id")
	if second == first || secondID == firstID {
		t.Fatal("the new key repeats the first")
	}
	k2 := c.with(second)
	k2.must(200, "GET", "/v1/inboxes", nil)
	listed := k2.must(200, "GET", "/v1/api-keys", nil)
	if got := listedIDs(t, listed, "api_keys"); !slices.Equal(got, []string{firstID, secondID}) {
		t.Fatalf("api keys %v, want [%s %s]", got, firstID, secondID)
	}
	for _, k := range list(t, listed, "api_keys") {
		rfc3339(t, k.(obj), "created_at")
		if _, leaked := k.(obj)["api_key"]; leaked {
			t.Fatalf("listing shows a secret: %v", k)
		}
	}

	// Another account cannot see or delete them; agents may not manage keys.
	other := newTenant(t, c, "Other")
	expectErr(t, c.with(other.key), 404, "not_found", "DELETE", "/v1/api-keys/"+firstID, nil)
	if got := listedIDs(t, c.with(other.key).must(200, "GET", "/v1/api-keys", nil), "api_keys"); slices.Contains(got, firstID) {
		t.Fatal("another account lists this account's key")
	}
	expectErr(t, c.with(other.agentToken), 403, "forbidden", "POST", "/v1/api-keys", nil)
	expectErr(t, c.with(other.agentToken), 403, "forbidden", "GET", "/v1/api-keys", nil)

	// Rotation: the second key deletes the first, which fails from the next request on.
	k2.do("DELETE", "/v1/api-keys/"+firstID, nil)
	expectErr(t, k1, 401, "unauthorized", "GET", "/v1/inboxes", nil)
	expectErr(t, k2, 404, "not_found", "DELETE", "/v1/api-keys/"+firstID, nil)
	if got := listedIDs(t, k2.must(200, "GET", "/v1/api-keys", nil), "api_keys"); !slices.Equal(got, []string{secondID}) {
		t.Fatalf("api keys after delete %v, want [%s]", got, secondID)
	}
}

func TestAgentsTokensAndDeletion(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	k := c.with(a.key)
	bob := k.must(201, "POST", "/v1/agents", obj{"name": "Bob", "email": "bob@example.com", "inbox_ids": []string{a.inbox}})
	bobID, bobToken := str(t, bob, "agent.id"), str(t, bob, "token")

	all := k.must(200, "GET", "/v1/agents", nil)
	if got := listedIDs(t, all, "agents"); !slices.Equal(got, []string{a.agentID, bobID}) {
		t.Fatalf("agents %v, want [%s %s]", got, a.agentID, bobID)
	}
	listedBob := list(t, all, "agents")[1].(obj)
	if in := list(t, listedBob, "inbox_ids"); len(in) != 1 || in[0] != a.inbox || str(t, listedBob, "email") != "bob@example.com" {
		t.Fatalf("bob listed as %v", listedBob)
	}
	if got := listedIDs(t, c.with(bobToken).must(200, "GET", "/v1/agents", nil), "agents"); !slices.Equal(got, []string{bobID}) {
		t.Fatalf("an agent lists %v, want only itself", got)
	}

	// A further token works alongside the first; only the account key issues one.
	second := str(t, k.must(201, "POST", "/v1/agents/"+bobID+"/tokens", nil), "token")
	c.with(second).must(200, "GET", "/v1/inboxes", nil)
	c.with(bobToken).must(200, "GET", "/v1/inboxes", nil)
	expectErr(t, c.with(bobToken), 403, "forbidden", "POST", "/v1/agents/"+bobID+"/tokens", nil)
	expectErr(t, c.with(bobToken), 403, "forbidden", "DELETE", "/v1/agents/"+a.agentID, nil)
	expectErr(t, c.with(bobToken), 403, "forbidden", "DELETE", "/v1/agents/"+a.agentID+"/tokens", nil)
	other := newTenant(t, c, "Other")
	for _, req := range [][2]string{{"POST", "/tokens"}, {"DELETE", "/tokens"}, {"DELETE", ""}} {
		expectErr(t, c.with(other.key), 404, "not_found", req[0], "/v1/agents/"+bobID+req[1], nil)
	}
	c.with(bobToken).must(200, "GET", "/v1/inboxes", nil) // untouched by the refusals

	// Revoking every token: both fail from the next request, and an open
	// websocket of each closes.
	ws1 := mustWS(t, n.URL(), wsOpts{query: bobToken})
	ws2 := mustWS(t, n.URL(), wsOpts{token: second})
	ws1.subscribe(a.inbox, nil)
	keep := mustWS(t, n.URL(), wsOpts{query: a.agentToken})
	k.must(204, "DELETE", "/v1/agents/"+bobID+"/tokens", nil)
	expectErr(t, c.with(bobToken), 401, "unauthorized", "GET", "/v1/inboxes", nil)
	expectErr(t, c.with(second), 401, "unauthorized", "GET", "/v1/inboxes", nil)
	for i, ws := range []*wsClient{ws1, ws2} {
		if code := awaitClosedByServer(t, ws, "revoked token's websocket"); code != websocket.StatusPolicyViolation {
			t.Errorf("websocket %d closed with %v, want policy violation", i+1, code)
		}
	}
	keep.ping("still")
	if f := keep.expect("pong"); f.str("ref") != "still" {
		t.Fatalf("another agent's websocket: %v", f.m)
	}
	if _, res, err := dialWS(t, n.URL(), wsOpts{query: bobToken}); err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("websocket with a revoked token: %v %v", err, res)
	}

	// An agent may sign itself out everywhere.
	third := str(t, k.must(201, "POST", "/v1/agents/"+bobID+"/tokens", nil), "token")
	c.with(third).must(204, "DELETE", "/v1/agents/"+bobID+"/tokens", nil)
	expectErr(t, c.with(third), 401, "unauthorized", "GET", "/v1/inboxes", nil)

	// Deleting an agent: its token fails at once, its websocket closes, its
	// assignments stay, and it is no longer listed or assignable.
	conv := inbound(k, a.inbox, phoneN(1), "hello")
	convID := str(t, conv, "conversation_id")
	k.must(200, "PATCH", "/v1/conversations/"+convID, obj{"assignee_id": a.agentID})
	ws := mustWS(t, n.URL(), wsOpts{query: a.agentToken})
	ws.subscribe(a.inbox, nil)
	k.must(204, "DELETE", "/v1/agents/"+a.agentID, nil)
	expectErr(t, c.with(a.agentToken), 401, "unauthorized", "GET", "/v1/inboxes", nil)
	awaitClosedByServer(t, ws, "deleted agent's websocket")
	awaitClosedByServer(t, keep, "deleted agent's other websocket")
	if got := str(t, k.must(200, "GET", "/v1/conversations/"+convID, nil), "assignee_id"); got != a.agentID {
		t.Fatalf("assignee after deleting the agent: %q, want %q", got, a.agentID)
	}
	if got := listedIDs(t, k.must(200, "GET", "/v1/agents", nil), "agents"); !slices.Equal(got, []string{bobID}) {
		t.Fatalf("agents after delete %v, want [%s]", got, bobID)
	}
	expectErr(t, k, 404, "not_found", "DELETE", "/v1/agents/"+a.agentID, nil)
	expectErr(t, k, 404, "not_found", "POST", "/v1/agents/"+a.agentID+"/tokens", nil)
}

// TestRevocationOnEveryNode: a revocation on node A closes websockets held
// on node B and fails the next request there.
func TestRevocationOnEveryNode(t *testing.T) {
	agent := test.NewInMemAgent()
	a := testNode(t, func(c *server.Config) { c.ClusterAgent = agent })
	b := testNode(t, func(c *server.Config) { c.ClusterAgent = agent; c.DatabaseURL = a.Config().DatabaseURL })
	poll.Until(t, 20*time.Second, "two cluster members", func() bool {
		return len(a.Member().Members()) == 2 && len(b.Member().Members()) == 2
	})
	ca, cb := api{t: t, base: a.URL()}, api{t: t, base: b.URL()}
	tn := newTenant(t, ca, "Acme")
	cb.with(tn.agentToken).must(200, "GET", "/v1/inboxes", nil)
	agentWS := mustWS(t, b.URL(), wsOpts{query: tn.agentToken})
	extra := ca.with(tn.key).must(201, "POST", "/v1/api-keys", nil)
	keyWS := mustWS(t, b.URL(), wsOpts{token: str(t, extra, "api_key")})

	ca.with(tn.key).must(204, "DELETE", "/v1/agents/"+tn.agentID+"/tokens", nil)
	expectErr(t, cb.with(tn.agentToken), 401, "unauthorized", "GET", "/v1/inboxes", nil)
	if code := awaitClosedByServer(t, agentWS, "websocket on the other node"); code != websocket.StatusPolicyViolation {
		t.Errorf("closed with %v, want policy violation", code)
	}

	ca.with(tn.key).must(204, "DELETE", "/v1/api-keys/"+str(t, extra, "id"), nil)
	expectErr(t, cb.with(str(t, extra, "api_key")), 401, "unauthorized", "GET", "/v1/inboxes", nil)
	awaitClosedByServer(t, keyWS, "deleted key's websocket on the other node")
}

func TestAccessTokenOnlyOnWebsocket(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	for _, path := range []string{"/v1/inboxes", "/v1/agents", "/v1/inboxes/" + a.inbox + "/conversations"} {
		expectErr(t, c, 401, "unauthorized", "GET", path+"?access_token="+a.agentToken, nil)
		expectErr(t, c, 401, "unauthorized", "GET", path+"?access_token="+a.key, nil)
		// Even beside a valid header: the token in the URL is refused, not ignored.
		expectErr(t, c.with(a.key), 401, "unauthorized", "GET", path+"?access_token="+a.agentToken, nil)
	}
	if _, res, err := dialWS(t, n.URL(), wsOpts{query: a.key}); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("websocket with an API key in the query: %v %v", err, res)
	}
	mustWS(t, n.URL(), wsOpts{query: a.agentToken}).ping("q")
	mustWS(t, n.URL(), wsOpts{token: a.key}).ping("h")
}

// TestWhoAmIAndInboxAgents: GET /v1/me names the caller's role, and an
// inbox's agents are listed by name to whoever may see the inbox — never
// outside it, and never with emails.
func TestWhoAmIAndInboxAgents(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	k := c.with(a.key)
	bob := k.must(201, "POST", "/v1/agents", obj{"name": "Bob", "email": "bob@example.com", "inbox_ids": []string{a.inbox}})
	bobID, bobToken := str(t, bob, "agent.id"), str(t, bob, "token")
	other := str(t, k.must(201, "POST", "/v1/inboxes", obj{"name": "Other"}), "id")
	carol := k.must(201, "POST", "/v1/agents", obj{"name": "Carol", "email": "carol@example.com", "inbox_ids": []string{other}})
	carolToken := str(t, carol, "token")

	asKey := k.must(200, "GET", "/v1/me", nil)
	if asKey["agent"] != nil || str(t, asKey, "account_id") == "" {
		t.Fatalf("an account key is %v", asKey)
	}
	asBob := c.with(bobToken).must(200, "GET", "/v1/me", nil)
	if str(t, asBob, "agent.id") != bobID || str(t, asBob, "account_id") != str(t, asKey, "account_id") {
		t.Fatalf("bob is %v", asBob)
	}
	expectErr(t, c.with(testAdminToken), 401, "unauthorized", "GET", "/v1/me", nil)

	for _, who := range []api{k, c.with(bobToken), c.with(a.agentToken)} {
		listed := who.must(200, "GET", "/v1/inboxes/"+a.inbox+"/agents", nil)
		if got := listedIDs(t, listed, "agents"); !slices.Equal(got, []string{a.agentID, bobID}) {
			t.Fatalf("agents of the inbox %v, want [%s %s]", got, a.agentID, bobID)
		}
		first := list(t, listed, "agents")[1].(obj)
		if first["name"] != "Bob" || first["status"] != "available" || first["email"] != nil || first["inbox_ids"] != nil {
			t.Fatalf("a colleague listed as %v", first)
		}
	}
	expectErr(t, c.with(carolToken), 404, "not_found", "GET", "/v1/inboxes/"+a.inbox+"/agents", nil)
	expectErr(t, c.with(newTenant(t, c, "Else").key), 404, "not_found", "GET", "/v1/inboxes/"+a.inbox+"/agents", nil)

	k.must(204, "DELETE", "/v1/agents/"+bobID, nil)
	if got := listedIDs(t, k.must(200, "GET", "/v1/inboxes/"+a.inbox+"/agents", nil), "agents"); !slices.Equal(got, []string{a.agentID}) {
		t.Fatalf("agents after deleting bob %v, want [%s]", got, a.agentID)
	}
}
