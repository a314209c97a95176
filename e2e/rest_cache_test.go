package e2e

import (
	"fmt"
	"testing"

	"github.com/switchboard-dev/switchboard/server"
)

// TestLookupCacheEvictionKeepsAuthorization: with the gateway's lookup
// caches bounded to one entry each, every request but the last-used one
// misses and reads from PostgreSQL; answers and tenant isolation are the
// same as with a warm cache.
func TestLookupCacheEvictionKeepsAuthorization(t *testing.T) {
	n := testNode(t, func(c *server.Config) { c.GatewayCacheSize = 1 })
	c := api{t: t, base: n.URL()}
	a, b := newTenant(t, c, "Alpha"), newTenant(t, c, "Beta")
	ka, kb, agentA := c.with(a.key), c.with(b.key), c.with(a.agentToken)

	var convs []string
	for i := range 3 {
		r := ka.must(201, "POST", "/v1/inboxes/"+a.inbox+"/messages", map[string]any{
			"contact": map[string]any{"phone": fmt.Sprintf("+1415555%04d", i)}, "body": fmt.Sprintf("hello %d", i)})
		convs = append(convs, r["conversation_id"].(string))
	}
	// Twice round, alternating callers and inboxes, so each lookup evicts
	// the entry the next one needs.
	for round := range 2 {
		for i, id := range convs {
			if got := ka.must(200, "GET", "/v1/conversations/"+id, nil)["id"]; got != id {
				t.Fatalf("round %d conversation %d: got %v", round, i, got)
			}
			expectErr(t, kb, 404, "not_found", "GET", "/v1/conversations/"+id, nil)
			agentA.must(200, "GET", "/v1/conversations/"+id+"/messages", nil)
			kb.must(200, "GET", "/v1/inboxes/"+b.inbox+"/counts", nil)
			expectErr(t, kb, 404, "not_found", "GET", "/v1/inboxes/"+a.inbox+"/counts", nil)
			ka.must(200, "GET", "/v1/inboxes/"+a.inbox+"/counts", nil)
		}
	}
}
