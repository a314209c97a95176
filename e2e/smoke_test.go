package e2e

import "testing"

func TestSmokeInboundListCounts(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Acme")
	k := c.with(tn.key)
	r := k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", map[string]any{"contact": map[string]any{"phone": "+14155550123"}, "body": "hello"})
	conv := r["conversation"].(map[string]any)
	if conv["version"].(float64) != 1 || conv["status"] != "new" {
		t.Fatalf("summary: %v", conv)
	}
	list := k.must(200, "GET", "/v1/inboxes/"+tn.inbox+"/conversations", nil)
	if len(list["conversations"].([]any)) != 1 {
		t.Fatalf("list: %v", list)
	}
	counts := k.must(200, "GET", "/v1/inboxes/"+tn.inbox+"/counts", nil)
	if counts["new"].(float64) != 1 || counts["unaddressed"].(float64) != 1 {
		t.Fatalf("counts: %v", counts)
	}
}
