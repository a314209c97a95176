package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/switchboard-dev/switchboard/server"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testAdminToken = "adm_test_token"

// testSecretKey seals webhook secrets for every node of the test process, so
// a node restarted on the same database opens what its predecessor sealed.
var testSecretKey = webhooks.NewKey()

// testNode starts an in-process node on a fresh database.
func testNode(t testing.TB, mutate ...func(*server.Config)) *server.Node {
	t.Helper()
	n, _ := nodeOn(t, pgtest.NewDatabase(t), mutate...)
	return n
}

// nodeOn starts a node on an existing database; stop is idempotent and also
// runs at cleanup, so a test can stop the node and start another.
func nodeOn(t testing.TB, url string, mutate ...func(*server.Config)) (n *server.Node, stop func()) {
	t.Helper()
	env := map[string]string{
		"SWITCHBOARD_DATABASE_URL": url,
		"SWITCHBOARD_ADMIN_TOKEN":  testAdminToken,
		"SWITCHBOARD_HTTP_ADDR":    "127.0.0.1:0",
		"SWITCHBOARD_SECRET_KEY":   testSecretKey,
	}
	cfg, err := server.LoadConfig("test", nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// A test that stops a node waits for nothing else.
	cfg.ShutdownDrain = 0
	for _, m := range mutate {
		m(&cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err = server.Start(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			if err := n.Stop(context.Background()); err != nil {
				t.Errorf("stop node: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return n, stop
}

// api is a small REST client for tests.
type api struct {
	t     testing.TB
	base  string
	token string
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return m
}

func (a api) with(token string) api { a.token = token; return a }

func (a api) do(method, path string, body any) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	contentType := ""
	if rd != nil {
		contentType = "application/json"
	}
	return a.send(method, path, contentType, rd)
}

// send is the one request path of the test client.
func (a api) send(method, path, contentType string, body io.Reader) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	checkResponse(a.t, req, res.StatusCode, res.Header, raw)
	return response{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// must does a request and fails the test unless the status matches.
func (a api) must(status int, method, path string, body any) map[string]any {
	a.t.Helper()
	r := a.do(method, path, body)
	if r.Status != status {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(a.t)
}

// tenant is an account with one inbox and one agent of that inbox.
type tenant struct {
	key, inbox, agentID, agentToken string
}

func newTenant(t testing.TB, c api, name string) tenant {
	t.Helper()
	acc := c.with(testAdminToken).must(201, "POST", "/v1/admin/accounts", map[string]any{"name": name})
	key := acc["api_key"].(string)
	ib := c.with(key).must(201, "POST", "/v1/inboxes", map[string]any{"name": name + " support", "phone_number": "+14155550100"})
	ag := c.with(key).must(201, "POST", "/v1/agents", map[string]any{"name": "Agent", "email": "agent@example.com", "inbox_ids": []string{ib["id"].(string)}})
	return tenant{key: key, inbox: ib["id"].(string), agentID: ag["agent"].(map[string]any)["id"].(string), agentToken: ag["token"].(string)}
}
