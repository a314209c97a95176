package e2e

import (
	"strings"
	"testing"
)

// Operations endpoints (the API's operations) and unknown paths.

func TestRESTOperations(t *testing.T) {
	f := newFixture(t)
	// Some traffic so that the metrics have observations.
	conv := str(t, f.inbound(obj{"phone": "+14155550123"}, "hello"), "conversation_id")
	f.reply(conv, obj{"body": "hi"})
	f.settle()

	t.Run("healthz and readyz need no credentials", func(t *testing.T) {
		c := f.in(t).c
		h := c.must(200, "GET", "/healthz", nil)
		if h == nil {
			t.Error("healthz: empty body")
		}
		r := c.must(200, "GET", "/readyz", nil)
		if r["ready"] != true {
			t.Errorf("readyz: %v", r)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := f.in(t).c.do("GET", "/metrics", nil)
		if r.Status != 200 {
			t.Fatalf("metrics: status %d", r.Status)
		}
		body := string(r.Body)
		for _, name := range []string{"switchboard_http_request_duration_seconds", "switchboard_commit_batch_size", "switchboard_actor_activations"} {
			if !strings.Contains(body, "\n"+name) && !strings.HasPrefix(body, name) {
				t.Errorf("metrics lack %s", name)
			}
		}
		// Prometheus text format: HELP/TYPE lines and at least one sample.
		if !strings.Contains(body, "# TYPE switchboard_http_request_duration_seconds histogram") ||
			!strings.Contains(body, "switchboard_http_request_duration_seconds_bucket{") {
			t.Errorf("switchboard_http_request_duration_seconds is not a histogram with samples")
		}
		if !strings.Contains(body, "switchboard_commit_batch_size_count") {
			t.Errorf("switchboard_commit_batch_size has no samples")
		}
		// Every metric of ours carries the namespace, so none can collide
		// with another program's in a shared Prometheus; only the Go
		// runtime's, the process's and promhttp's own go without.
		for _, line := range strings.Split(body, "\n") {
			name, ok := strings.CutPrefix(line, "# TYPE ")
			if !ok {
				continue
			}
			name, _, _ = strings.Cut(name, " ")
			switch {
			case strings.HasPrefix(name, "switchboard_"), strings.HasPrefix(name, "go_"),
				strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "promhttp_"):
			default:
				t.Errorf("metric %s lacks the switchboard_ namespace", name)
			}
		}
	})

	t.Run("unknown paths under /v1 are JSON 404", func(t *testing.T) {
		f := f.in(t)
		for _, c := range []api{f.c, f.k} {
			for _, p := range []string{"/v1/nope", "/v1/", "/v1/inboxes/" + f.tn.inbox + "/nope", "/v1/conversations/" + conv + "/nope/deeper"} {
				expectErr(t, c, 404, "not_found", "GET", p, nil)
			}
			expectErr(t, c, 404, "not_found", "POST", "/v1/nope", obj{"x": 1})
		}
		// A method the path does not serve: 405 in the API's shape, with
		// the methods it does serve in Allow.
		for _, c := range []struct{ method, path, allow string }{
			{"DELETE", "/v1/conversations/" + conv, "GET, HEAD, PATCH"},
			{"PUT", "/v1/inboxes/" + f.tn.inbox + "/messages", "POST"},
			{"GET", "/v1/webhooks/wh_x/deliveries/ev_x/retry", "POST"},
			{"POST", "/v1/admin/cluster", "GET, HEAD"},
		} {
			token := f.k
			if strings.HasPrefix(c.path, "/v1/admin/") {
				token = f.c.with(testAdminToken)
			}
			r := token.do(c.method, c.path, nil)
			checkErr(t, r, 405, "method_not_allowed", c.method+" "+c.path)
			if got := r.Header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
		}
		// Nothing was deleted.
		f.get(conv)
	})
}
