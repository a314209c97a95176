package typesensefake

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, c *http.Client, method, u, key, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-TYPESENSE-API-KEY", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestFaultSwitches(t *testing.T) {
	s := New("k")
	defer s.Close()
	c := &http.Client{Timeout: 2 * time.Second}
	health := s.URL() + "/health"

	if code, _, err := do(t, c, http.MethodGet, health, "", ""); err != nil || code != 200 {
		t.Fatalf("healthy: %d %v", code, err)
	}

	s.SetUnavailable(true)
	if code, body, err := do(t, c, http.MethodGet, health, "", ""); err != nil || code != 503 || !strings.Contains(body, "Not Ready") {
		t.Fatalf("unavailable: %d %s %v", code, body, err)
	}
	s.SetUnavailable(false)

	s.SetDropConnections(true)
	if _, _, err := do(t, c, http.MethodGet, health, "", ""); err == nil {
		t.Fatal("dropped connection: want a transport error")
	}
	s.SetDropConnections(false)

	s.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("latency: want the client to give up")
	}
	cancel()
	s.SetLatency(0)
	if code, _, err := do(t, c, http.MethodGet, health, "", ""); err != nil || code != 200 {
		t.Fatalf("recovered: %d %v", code, err)
	}
	if s.Failures() != 2 {
		t.Fatalf("failures %d", s.Failures())
	}
}

func TestRequestValidation(t *testing.T) {
	s := New("k")
	defer s.Close()
	c := http.DefaultClient
	schema := `{"name":"m","fields":[{"name":"a","type":"string"},{"name":"n","type":"int64"}],"default_sorting_field":"n"}`
	if code, _, _ := do(t, c, http.MethodPost, s.URL()+"/collections", "wrong", schema); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	if code, body, _ := do(t, c, http.MethodPost, s.URL()+"/collections", "k", `{"name":"x","fields":[{"name":"a","type":"strang"}]}`); code != 400 {
		t.Fatalf("bad type: %d %s", code, body)
	}
	if code, _, _ := do(t, c, http.MethodPost, s.URL()+"/collections", "k", schema); code != 201 {
		t.Fatalf("create: %d", code)
	}
	// The key may also come as a query parameter.
	if code, _, _ := do(t, c, http.MethodGet, s.URL()+"/collections/m?x-typesense-api-key=k", "", ""); code != 200 {
		t.Fatalf("key in query: %d", code)
	}
	code, body, _ := do(t, c, http.MethodPost, s.URL()+"/collections/m/documents/import?action=upsert", "k",
		"{\"id\":\"1\",\"a\":\"x\",\"n\":1}\nnot json\n{\"id\":\"2\",\"a\":\"y\"}\n{\"id\":\"3\",\"a\":\"z\",\"n\":1.5}\n")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 4 || !strings.Contains(lines[0], `"success":true`) ||
		!strings.Contains(lines[1], "Bad JSON") || !strings.Contains(lines[2], "not found in the document") ||
		!strings.Contains(lines[3], "must be an int64") {
		t.Fatalf("import: %d\n%s", code, body)
	}
	search := func(params url.Values) (int, string) {
		code, body, _ := do(t, c, http.MethodGet, s.URL()+"/collections/m/documents/search?"+params.Encode(), "k", "")
		return code, body
	}
	if code, _ := search(url.Values{"q": {"x"}, "query_by": {"a"}, "per_page": {"251"}}); code != 422 {
		t.Fatalf("per_page 251: %d", code)
	}
	if code, _ := search(url.Values{"q": {"x"}, "query_by": {"a"}, "filter_by": {"nope:=1"}}); code != 404 {
		t.Fatalf("unknown filter field: %d", code)
	}
	if code, _ := search(url.Values{"q": {"x"}, "query_by": {"a"}, "filter_by": {"a"}}); code != 400 {
		t.Fatalf("bad filter: %d", code)
	}
	if code, _ := search(url.Values{"q": {"x"}}); code != 400 {
		t.Fatalf("no query_by: %d", code)
	}
	if code, body := search(url.Values{"q": {"*"}, "filter_by": {"a:=`x`"}}); code != 200 || !strings.Contains(body, `"found":1`) {
		t.Fatalf("match-all with filter: %d %s", code, body)
	}
}
