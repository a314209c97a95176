package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Set-up endpoints, credentials and tenancy (the API's credentials and set-up).

func TestRESTSetup(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	admin := c.with(testAdminToken)

	acc := admin.must(201, "POST", "/v1/admin/accounts", obj{"name": "Globex"})
	key := str(t, acc, "api_key")
	if str(t, acc, "account.id") == "" || str(t, acc, "account.name") != "Globex" || key == "" {
		t.Fatalf("account: %v", acc)
	}
	k := c.with(key)

	ib := k.must(201, "POST", "/v1/inboxes", obj{"name": "Sales", "phone_number": "+14155550100"})
	if str(t, ib, "id") == "" || str(t, ib, "name") != "Sales" || str(t, ib, "phone_number") != "+14155550100" {
		t.Errorf("inbox: %v", ib)
	}
	ib2 := k.must(201, "POST", "/v1/inboxes", obj{"name": "Web chat"})
	if !isNull(t, ib2, "phone_number") {
		t.Errorf("inbox without phone: phone_number %v, want null", ib2["phone_number"])
	}
	ib3 := k.must(201, "POST", "/v1/inboxes", obj{"name": "Support", "phone_number": "+447700900123"})

	ag := k.must(201, "POST", "/v1/agents", obj{"name": "Ann", "email": "ann@example.com", "inbox_ids": []string{str(t, ib, "id"), str(t, ib2, "id")}})
	agent := sub(t, ag, "agent")
	if str(t, agent, "id") == "" || str(t, agent, "name") != "Ann" || str(t, agent, "email") != "ann@example.com" || str(t, ag, "token") == "" {
		t.Errorf("agent: %v", ag)
	}
	if got := list(t, agent, "inbox_ids"); len(got) != 2 || !slices.Contains(got, any(str(t, ib, "id"))) || !slices.Contains(got, any(str(t, ib2, "id"))) {
		t.Errorf("agent inbox_ids %v", got)
	}
	// An agent of no inbox yet.
	none := k.must(201, "POST", "/v1/agents", obj{"name": "Zed", "email": "zed@example.com", "inbox_ids": []string{}})
	if l := list(t, sub(t, none, "agent"), "inbox_ids"); len(l) != 0 {
		t.Errorf("inbox_ids %v, want []", l)
	}
	if str(t, ag, "token") == key || str(t, none, "token") == str(t, ag, "token") {
		t.Error("credentials are not distinct")
	}

	inboxIDs := func(t *testing.T, c api) []string {
		var out []string
		for _, x := range list(t, c.must(200, "GET", "/v1/inboxes", nil), "inboxes") {
			o := x.(obj)
			str(t, o, "name")
			field(t, o, "phone_number")
			out = append(out, str(t, o, "id"))
		}
		slices.Sort(out)
		return out
	}
	all := []string{str(t, ib, "id"), str(t, ib2, "id"), str(t, ib3, "id")}
	slices.Sort(all)
	if got := inboxIDs(t, k); !slices.Equal(got, all) {
		t.Errorf("account lists inboxes %v, want %v", got, all)
	}
	mine := []string{str(t, ib, "id"), str(t, ib2, "id")}
	slices.Sort(mine)
	if got := inboxIDs(t, c.with(str(t, ag, "token"))); !slices.Equal(got, mine) {
		t.Errorf("agent lists inboxes %v, want its own %v", got, mine)
	}
	if got := inboxIDs(t, c.with(str(t, none, "token"))); len(got) != 0 {
		t.Errorf("agent of no inbox lists %v", got)
	}
	// Another account sees none of these.
	other := newTenant(t, c, "Initech")
	if got := inboxIDs(t, c.with(other.key)); len(got) != 1 || got[0] != other.inbox {
		t.Errorf("another account lists %v, want only %s", got, other.inbox)
	}

	t.Run("agent of another account's inbox is refused", func(t *testing.T) {
		k := c.with(key)
		k.t = t
		before := rows(t, n)
		r := k.do("POST", "/v1/agents", obj{"name": "X", "email": "x@example.com", "inbox_ids": []string{other.inbox}})
		if r.Status != 400 && r.Status != 404 {
			t.Errorf("agent with another account's inbox: status %d: %s", r.Status, r.Body)
		}
		sameRows(t, "agent with a foreign inbox", before, rows(t, n))
	})

	t.Run("admin cluster and stats", func(t *testing.T) {
		admin := admin
		admin.t = t
		cl := admin.must(200, "GET", "/v1/admin/cluster", nil)
		self := str(t, cl, "self")
		ms := list(t, cl, "members")
		if len(ms) < 1 {
			t.Fatalf("cluster: %v", cl)
		}
		found := false
		for _, m := range ms {
			o := m.(obj)
			str(t, o, "address")
			field(t, o, "kinds")
			field(t, o, "status")
			field(t, o, "activations")
			if str(t, o, "id") == self {
				found = true
				act := sub(t, o, "activations")
				num(t, act, "conversation")
				num(t, act, "inbox")
			}
		}
		if !found {
			t.Errorf("self %s not among members %v", self, ms)
		}
		st := admin.must(200, "GET", "/v1/admin/stats", nil)
		if _, ok := st["ingest_per_s"].(float64); !ok {
			t.Errorf("stats lacks ingest_per_s: %v", st)
		}
	})
}

func TestRESTCredentials(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	convID := str(t, c.with(a.key).must(201, "POST", "/v1/inboxes/"+a.inbox+"/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "hi"}), "conversation_id")

	type ep struct {
		method, path string
		body         any
	}
	endpoints := []ep{
		{"POST", "/v1/inboxes", obj{"name": "x"}},
		{"GET", "/v1/inboxes", nil},
		{"POST", "/v1/agents", obj{"name": "x", "email": "x@example.com", "inbox_ids": []string{}}},
		{"POST", "/v1/inboxes/" + a.inbox + "/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "x"}},
		{"POST", "/v1/inboxes/" + a.inbox + "/calls", obj{"contact": obj{"phone": "+14155550123"}, "call_id": "c", "state": "ringing"}},
		{"GET", "/v1/inboxes/" + a.inbox + "/conversations", nil},
		{"GET", "/v1/inboxes/" + a.inbox + "/counts", nil},
		{"POST", "/v1/conversations/" + convID + "/messages", obj{"body": "x"}},
		{"PATCH", "/v1/conversations/" + convID, obj{"status": "closed"}},
		{"GET", "/v1/conversations/" + convID, nil},
		{"GET", "/v1/conversations/" + convID + "/messages", nil},
	}
	admin := []ep{
		{"POST", "/v1/admin/accounts", obj{"name": "x"}},
		{"GET", "/v1/admin/cluster", nil},
		{"GET", "/v1/admin/stats", nil},
	}
	before := rows(t, n)
	bad := map[string]string{
		"none":                "",
		"unknown key":         "sk_0000000000000000000000000000",
		"unknown agent token": "at_0000000000000000000000000000",
		"garbage":             "not-a-credential",
		"overlong":            "sk_" + strings.Repeat("a", 300),
		"admin token on /v1":  testAdminToken,
	}
	for name, tok := range bad {
		t.Run("401 "+name, func(t *testing.T) {
			cl := api{t: t, base: n.URL(), token: tok}
			for _, e := range endpoints {
				expectErr(t, cl, 401, "unauthorized", e.method, e.path, e.body)
			}
			if tok != testAdminToken {
				for _, e := range admin {
					expectErr(t, cl, 401, "unauthorized", e.method, e.path, e.body)
				}
			}
		})
	}
	// The scheme is Bearer, in any case.
	for scheme, want := range map[string]int{"Basic ": 401, "bearer ": 200, "BEARER ": 200} {
		t.Run("scheme "+scheme, func(t *testing.T) {
			req, _ := http.NewRequest("GET", n.URL()+"/v1/inboxes", nil)
			req.Header.Set("Authorization", scheme+a.key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != want {
				t.Errorf("%q: %d, want %d", scheme, res.StatusCode, want)
			}
		})
	}
	t.Run("admin endpoints refuse API keys and agent tokens", func(t *testing.T) {
		for _, tok := range []string{a.key, a.agentToken, testAdminToken + "x", ""} {
			cl := api{t: t, base: n.URL(), token: tok}
			for _, e := range admin {
				expectErr(t, cl, 401, "unauthorized", e.method, e.path, e.body)
			}
			// Paths that are not admin endpoints say so to the admin only.
			expectErr(t, cl, 401, "unauthorized", "GET", "/v1/admin/nonexistent", nil)
			expectErr(t, cl, 401, "unauthorized", "GET", "/v1/admin/accounts", nil)
		}
		expectErr(t, c.with(testAdminToken), 404, "not_found", "GET", "/v1/admin/nonexistent", nil)
	})
	t.Run("errors outside the API keep its shape", func(t *testing.T) {
		for _, e := range []ep{{"GET", "/nope", nil},
			{"GET", "/assets/nope.js", nil}, {"GET", "/assets/", nil}, {"GET", "/assets/vendor/", nil}} {
			expectErr(t, c, 404, "not_found", e.method, e.path, e.body)
		}
		for _, e := range []ep{{"POST", "/healthz", nil}, {"POST", "/", nil}} {
			expectErr(t, c, 405, "method_not_allowed", e.method, e.path, e.body)
		}
		if r := c.do("GET", "/assets/style.css", nil); r.Status != 200 {
			t.Errorf("an asset: status %d", r.Status)
		}
	})
	t.Run("agents may not create agents or inboxes", func(t *testing.T) {
		ag := api{t: t, base: n.URL(), token: a.agentToken}
		expectErr(t, ag, 403, "forbidden", "POST", "/v1/inboxes", obj{"name": "mine now"})
		expectErr(t, ag, 403, "forbidden", "POST", "/v1/agents", obj{"name": "x", "email": "x@example.com", "inbox_ids": []string{a.inbox}})
	})
	sameRows(t, "refused credentials", before, rows(t, n))
	if v := num(t, c.with(a.key).must(200, "GET", "/v1/conversations/"+convID, nil), "version"); v != 1 {
		t.Errorf("version %d after refused requests, want 1", v)
	}
}

func TestRESTTenancy(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	ka := c.with(a.key)
	// A second inbox of the same account that agent a is not a member of.
	ibB := str(t, ka.must(201, "POST", "/v1/inboxes", obj{"name": "Other team"}), "id")
	other := newTenant(t, c, "Initech")

	convA := str(t, ka.must(201, "POST", "/v1/inboxes/"+a.inbox+"/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "in A"}), "conversation_id")
	convB := str(t, ka.must(201, "POST", "/v1/inboxes/"+ibB+"/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "in B"}), "conversation_id")
	ka.must(200, "POST", "/v1/inboxes/"+ibB+"/calls", obj{"contact": obj{"phone": "+14155550123"}, "call_id": "c1", "state": "ringing"})
	if convA == convB {
		t.Fatal("one contact in two inboxes shares a conversation")
	}

	outside := func(inbox, conv string) [][3]any {
		return [][3]any{
			{"GET", "/v1/inboxes/" + inbox + "/conversations", nil},
			{"GET", "/v1/inboxes/" + inbox + "/counts", nil},
			{"POST", "/v1/inboxes/" + inbox + "/messages", obj{"contact": obj{"phone": "+14155550199"}, "body": "x"}},
			{"POST", "/v1/inboxes/" + inbox + "/calls", obj{"contact": obj{"phone": "+14155550199"}, "call_id": "c9", "state": "ringing"}},
			{"GET", "/v1/conversations/" + conv, nil},
			{"GET", "/v1/conversations/" + conv + "/messages", nil},
			{"POST", "/v1/conversations/" + conv + "/messages", obj{"body": "x"}},
			{"PATCH", "/v1/conversations/" + conv, obj{"status": "closed"}},
		}
	}
	before := rows(t, n)

	t.Run("agent of inbox A on inbox B", func(t *testing.T) {
		ag := api{t: t, base: n.URL(), token: a.agentToken}
		for _, e := range outside(ibB, convB) {
			expectErr(t, ag, 404, "not_found", e[0].(string), e[1].(string), e[2])
		}
		// ... while its own inbox works.
		ag.must(200, "GET", "/v1/conversations/"+convA, nil)
		ag.must(200, "GET", "/v1/inboxes/"+a.inbox+"/conversations", nil)
	})
	t.Run("another account's key everywhere", func(t *testing.T) {
		for _, tok := range []string{other.key, other.agentToken} {
			o := api{t: t, base: n.URL(), token: tok}
			for _, e := range append(outside(a.inbox, convA), outside(ibB, convB)...) {
				expectErr(t, o, 404, "not_found", e[0].(string), e[1].(string), e[2])
			}
		}
	})
	t.Run("an agent acting on agents", func(t *testing.T) {
		// Another account's agent, or none: 404; a colleague: 403.
		o := api{t: t, base: n.URL(), token: other.agentToken}
		for _, id := range []string{a.agentID, "ag_does_not_exist"} {
			expectErr(t, o, 404, "not_found", "PATCH", "/v1/agents/"+id, obj{"status": "away"})
			expectErr(t, o, 404, "not_found", "DELETE", "/v1/agents/"+id+"/tokens", nil)
			expectErr(t, o, 404, "not_found", "DELETE", "/v1/agents/"+id, nil)
			expectErr(t, o, 404, "not_found", "POST", "/v1/agents/"+id+"/tokens", nil)
		}
		colleague := str(t, ka.must(201, "POST", "/v1/agents", obj{"name": "Bo", "email": "bo@example.com", "inbox_ids": []string{a.inbox}}), "agent.id")
		before = rows(t, n) // the colleague above is legitimate
		ag := api{t: t, base: n.URL(), token: a.agentToken}
		expectErr(t, ag, 403, "forbidden", "PATCH", "/v1/agents/"+colleague, obj{"status": "away"})
		expectErr(t, ag, 403, "forbidden", "DELETE", "/v1/agents/"+colleague+"/tokens", nil)
		expectErr(t, ag, 403, "forbidden", "DELETE", "/v1/agents/"+colleague, nil)
		// Refused before its body is read: no 400 telling a bad status apart.
		expectErr(t, ag, 403, "forbidden", "PATCH", "/v1/agents/"+colleague, obj{"status": "busy"})
		// An agent of the same account outside the caller's inboxes is not
		// revealed either.
		ib2 := str(t, ka.must(201, "POST", "/v1/inboxes", obj{"name": "Elsewhere"}), "id")
		stranger := str(t, ka.must(201, "POST", "/v1/agents", obj{"name": "Cy", "email": "cy@example.com", "inbox_ids": []string{ib2}}), "agent.id")
		before = rows(t, n) // legitimate too
		expectErr(t, ag, 404, "not_found", "PATCH", "/v1/agents/"+stranger, obj{"status": "away"})
		expectErr(t, ag, 404, "not_found", "PATCH", "/v1/agents/"+stranger, obj{"status": "busy"})
		expectErr(t, ag, 404, "not_found", "DELETE", "/v1/agents/"+stranger+"/tokens", nil)
		expectErr(t, ag, 404, "not_found", "DELETE", "/v1/agents/"+stranger, nil)
	})
	t.Run("unknown ids are 404 like foreign ones", func(t *testing.T) {
		for _, e := range outside("ib_does_not_exist", "cv_does_not_exist") {
			expectErr(t, ka, 404, "not_found", e[0].(string), e[1].(string), e[2])
		}
	})
	// A credential's own conversation id under another account's inbox does
	// not leak either: same contact, other account.
	t.Run("other account's own data stays separate", func(t *testing.T) {
		ko := api{t: t, base: n.URL(), token: other.key}
		r := ko.must(201, "POST", "/v1/inboxes/"+other.inbox+"/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "in other"})
		if id := str(t, r, "conversation_id"); id == convA || id == convB {
			t.Errorf("other account's conversation id %s collides", id)
		}
		before = rows(t, n) // the write above is legitimate
	})
	sameRows(t, "requests outside the caller's reach", before, rows(t, n))
	for _, id := range []string{convA, convB} {
		g := ka.must(200, "GET", "/v1/conversations/"+id, nil)
		if str(t, g, "status") != "new" {
			t.Errorf("%s changed by a refused request: %v", id, g)
		}
	}
	if v := num(t, ka.must(200, "GET", "/v1/conversations/"+convB, nil), "version"); v != 2 {
		t.Errorf("conversation B version %d, want 2", v)
	}
}
