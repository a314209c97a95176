package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestJSClient runs switchboard.js's own tests (e2e/jsclient, Node's test
// runner) against a real node: the client's reconnect, resume and version
// guard are only worth something against the real protocol.
func TestJSClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (Node 20 or newer runs the JS client's tests): %v", err)
	}
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "JS client")
	second := c.with(tn.key).must(201, "POST", "/v1/agents",
		map[string]any{"name": "Second", "email": "second@example.com", "inbox_ids": []string{tn.inbox}})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Node 20 has WebSocket behind a flag; later versions have it on.
	cmd := exec.CommandContext(ctx, node, "--experimental-websocket", "--test", "--test-reporter=spec", "jsclient/switchboard.test.mjs")
	cmd.Env = append(os.Environ(),
		"SB_URL="+n.URL(), "SB_KEY="+tn.key, "SB_INBOX="+tn.inbox,
		"SB_TOKEN="+tn.agentToken, "SB_TOKEN2="+second["token"].(string))
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("the JS client's tests failed: %v", err)
	}
}
