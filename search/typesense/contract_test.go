package typesense_test

// The contract suite: the same assertions run against the fake
// (search/typesensefake) always, and against a real Typesense server when
// TYPESENSE_URL (and TYPESENSE_API_KEY) are set. What passes on both is what
// the fake may be trusted for; on top of the same targets run the HTTP
// behaviour the backend relies on and the conformance suite every search
// backend passes (search/searchtest).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/search"
	"github.com/switchboard-dev/switchboard/search/searchtest"
	"github.com/switchboard-dev/switchboard/search/typesense"
	"github.com/switchboard-dev/switchboard/search/typesensefake"
)

type target struct {
	name string
	url  string
	key  string
	fake *typesensefake.Server // nil for a real server
}

func targets(t *testing.T) []target {
	fake := typesensefake.New("test-key")
	t.Cleanup(fake.Close)
	out := []target{{name: "fake", url: fake.URL(), key: "test-key", fake: fake}}
	if u := os.Getenv("TYPESENSE_URL"); u != "" {
		out = append(out, target{name: "real", url: strings.TrimRight(u, "/"), key: os.Getenv("TYPESENSE_API_KEY")})
	} else {
		t.Log("TYPESENSE_URL not set: contract checked against the fake only")
	}
	return out
}

func uniqueName(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "sbtest_" + hex.EncodeToString(b[:])
}

// raw sends one request and returns the status and body.
func raw(t *testing.T, tg target, method, path, contentType, body string, withKey bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, tg.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if withKey {
		req.Header.Set("X-TYPESENSE-API-KEY", tg.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func dropCollection(t *testing.T, tg target, name string) {
	t.Cleanup(func() { raw(t, tg, http.MethodDelete, "/collections/"+name, "", "", true) })
}

func newBackend(t *testing.T, tg target) (*typesense.Backend, string) {
	t.Helper()
	name := uniqueName(t)
	dropCollection(t, tg, name)
	b, err := typesense.New(typesense.Config{URL: tg.url, APIKey: tg.key, Collection: name, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, name
}

func TestContract(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Run("HTTP", func(t *testing.T) { httpContract(t, tg) })
			t.Run("EnsureCollection", func(t *testing.T) { ensureCollectionRace(t, tg) })
			t.Run("Conformance", func(t *testing.T) {
				searchtest.Run(t, func(t *testing.T) search.Backend { b, _ := newBackend(t, tg); return b })
			})
		})
	}
}

// httpContract pins down the server behaviour the backend relies on.
func httpContract(t *testing.T, tg target) {
	code, body := raw(t, tg, http.MethodGet, "/health", "", "", false)
	if code != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("health: %d %s", code, body)
	}
	name := uniqueName(t)
	if code, _ := raw(t, tg, http.MethodGet, "/collections/"+name, "", "", false); code != 401 {
		t.Fatalf("no API key: want 401, got %d", code)
	}
	if code, _ := raw(t, tg, http.MethodGet, "/collections/"+name, "", "", true); code != 404 {
		t.Fatalf("missing collection: want 404, got %d", code)
	}
	schema := `{"name":"` + name + `","fields":[{"name":"account_id","type":"string"},{"name":"seq","type":"int64"},{"name":"body","type":"string"}],"default_sorting_field":"seq"}`
	dropCollection(t, tg, name)
	code, body = raw(t, tg, http.MethodPost, "/collections", "application/json", schema, true)
	if code != 201 || !strings.Contains(string(body), `"name":"`+name+`"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := raw(t, tg, http.MethodPost, "/collections", "application/json", schema, true); code != 409 {
		t.Fatalf("create twice: want 409, got %d", code)
	}
	if code, _ := raw(t, tg, http.MethodGet, "/collections/"+name, "", "", true); code != 200 {
		t.Fatalf("get collection: %d", code)
	}

	// Import answers 200 with one line per document, in order; a bad
	// document fails alone, echoed back.
	jsonl := `{"id":"d1","account_id":"a","seq":1,"body":"Hello <b>big</b> world"}
{"id":"d2","account_id":"a","seq":"not a number","body":"x"}
{"id":"d3","account_id":"b","seq":3,"body":"hello again"}
`
	code, body = raw(t, tg, http.MethodPost, "/collections/"+name+"/documents/import?action=upsert", "text/plain", jsonl, true)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if code != 200 || len(lines) != 3 {
		t.Fatalf("import: %d %s", code, body)
	}
	var res [3]struct {
		Success  bool   `json:"success"`
		Error    string `json:"error"`
		Document string `json:"document"`
		Code     int    `json:"code"`
	}
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &res[i]); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
	}
	if !res[0].Success || res[1].Success || !res[2].Success || res[1].Error == "" || !strings.Contains(res[1].Document, `"d2"`) {
		t.Fatalf("import results: %+v", res)
	}
	if res[1].Code != 0 && res[1].Code != 400 { // servers before 0.25 send no code
		t.Fatalf("bad document code %d", res[1].Code)
	}
	// create refuses an existing id, per document.
	code, body = raw(t, tg, http.MethodPost, "/collections/"+name+"/documents/import?action=create", "text/plain",
		`{"id":"d1","account_id":"a","seq":1,"body":"dup"}`, true)
	if code != 200 || !strings.Contains(string(body), `"success":false`) {
		t.Fatalf("create existing: %d %s", code, body)
	}

	// Search: filter, prefix on the last word, custom highlight tags.
	q := url.Values{
		"q": {"hel"}, "query_by": {"body"}, "filter_by": {"account_id:=`a`"}, "prefix": {"true"},
		"num_typos": {"0"}, "highlight_start_tag": {"[["}, "highlight_end_tag": {"]]"}, "per_page": {"10"},
	}
	code, body = raw(t, tg, http.MethodGet, "/collections/"+name+"/documents/search?"+q.Encode(), "", "", true)
	var sr struct {
		Found int `json:"found"`
		Hits  []struct {
			Document   map[string]any `json:"document"`
			Highlights []struct {
				Field   string `json:"field"`
				Snippet string `json:"snippet"`
			} `json:"highlights"`
			Highlight map[string]struct {
				Snippet string `json:"snippet"`
			} `json:"highlight"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &sr); err != nil || code != 200 {
		t.Fatalf("search: %d %s %v", code, body, err)
	}
	if sr.Found != 1 || len(sr.Hits) != 1 || sr.Hits[0].Document["id"] != "d1" || sr.Hits[0].Document["seq"] != float64(1) {
		t.Fatalf("search result: %s", body)
	}
	snippet := sr.Hits[0].Highlight["body"].Snippet
	if snippet == "" && len(sr.Hits[0].Highlights) > 0 {
		snippet = sr.Hits[0].Highlights[0].Snippet
	}
	if !strings.Contains(snippet, "[[Hello]]") {
		t.Fatalf("snippet %q", snippet)
	}
	// An inbox-list style filter.
	q.Set("filter_by", "account_id:=[`a`,`b`]")
	code, body = raw(t, tg, http.MethodGet, "/collections/"+name+"/documents/search?"+q.Encode(), "", "", true)
	if err := json.Unmarshal(body, &sr); err != nil || code != 200 || sr.Found != 2 {
		t.Fatalf("list filter: %d %s", code, body)
	}
	if code, _ := raw(t, tg, http.MethodGet, "/collections/"+uniqueName(t)+"/documents/search?"+q.Encode(), "", "", true); code != 404 {
		t.Fatalf("search missing collection: want 404, got %d", code)
	}
}

// ensureCollectionRace: nodes racing to create the collection all succeed.
func ensureCollectionRace(t *testing.T, tg target) {
	ctx := context.Background()
	_, name := newBackend(t, tg)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			other, err := typesense.New(typesense.Config{URL: tg.url, APIKey: tg.key, Collection: name})
			if err == nil {
				err = other.EnsureCollection(ctx)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("ensure collection: %v", err)
		}
	}
}

// The rest needs the fake's switches.

func fakeBackend(t *testing.T) (*typesensefake.Server, *typesense.Backend, string) {
	fake := typesensefake.New("k")
	t.Cleanup(fake.Close)
	b, err := typesense.New(typesense.Config{URL: fake.URL(), APIKey: "k", Collection: "msgs", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return fake, b, "msgs"
}

func TestUpsertReportsRefusedDocuments(t *testing.T) {
	fake, b, coll := fakeBackend(t)
	fake.RejectDocuments(func(d map[string]any) (int, string, bool) {
		body, _ := d["body"].(string)
		return 400, "Document is too large.", strings.Contains(body, "poison")
	})
	bad, err := b.Upsert(context.Background(), []search.Document{
		searchtest.Doc("ok1", "a", "i", "fine", 1), searchtest.Doc("bad", "a", "i", "poison pill", 2), searchtest.Doc("ok2", "a", "i", "fine too", 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].ID != "bad" || !strings.Contains(bad[0].Reason, "too large") {
		t.Fatalf("doc errors %+v", bad)
	}
	if fake.Count(coll) != 2 {
		t.Fatalf("stored %d", fake.Count(coll))
	}
	// A per-document failure that is the server's fault fails the batch.
	fake.RejectDocuments(func(map[string]any) (int, string, bool) { return 503, "Not Ready or Lagging", true })
	if bad, err := b.Upsert(context.Background(), []search.Document{searchtest.Doc("x", "a", "i", "y", 1)}); err == nil {
		t.Fatalf("want a batch error, got %v", bad)
	}
}

func TestFaultsAreBatchErrorsAndRecover(t *testing.T) {
	fake, b, coll := fakeBackend(t)
	ctx := context.Background()
	d := []search.Document{searchtest.Doc("m1", "a", "i", "hello", 1)}
	q := search.Query{AccountID: "a", InboxIDs: []string{"i"}, Text: "hello"}

	fake.SetUnavailable(true)
	if bad, err := b.Upsert(ctx, d); err == nil || bad != nil {
		t.Fatalf("503: want batch error, got %v %v", bad, err)
	}
	if _, err := b.Search(ctx, q); err == nil {
		t.Fatal("503: search should fail")
	}
	fake.SetUnavailable(false)

	fake.SetDropConnections(true)
	if bad, err := b.Upsert(ctx, d); err == nil || bad != nil {
		t.Fatalf("dropped: want batch error, got %v %v", bad, err)
	}
	fake.SetDropConnections(false)

	fake.SetLatency(time.Second)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := b.Upsert(short, d)
	cancel()
	if err == nil {
		t.Fatal("slow server: want timeout")
	}
	fake.SetLatency(0)

	searchtest.MustUpsert(t, b, d...)
	if r := searchtest.MustSearch(t, b, q); searchtest.HitIDs(r) != "m1" || fake.Count(coll) != 1 {
		t.Fatalf("after recovery: %s", searchtest.HitIDs(r))
	}
	if fake.Failures() < 3 {
		t.Fatalf("failures %d", fake.Failures())
	}
}

func TestCollectionRecreatedAfterDeletion(t *testing.T) {
	fake, b, coll := fakeBackend(t)
	ctx := context.Background()
	searchtest.MustUpsert(t, b, searchtest.Doc("m1", "a", "i", "hello", 1))
	tg := target{url: fake.URL(), key: "k"}
	if code, _ := raw(t, tg, http.MethodDelete, "/collections/"+coll, "", "", true); code != 200 {
		t.Fatal("delete")
	}
	if _, err := b.Upsert(ctx, []search.Document{searchtest.Doc("m2", "a", "i", "hello", 2)}); err == nil {
		t.Fatal("first upsert after deletion should fail (and be retried)")
	}
	searchtest.MustUpsert(t, b, searchtest.Doc("m2", "a", "i", "hello", 2))
	if fake.Count(coll) != 1 {
		t.Fatalf("count %d", fake.Count(coll))
	}
}

func TestSchema(t *testing.T) {
	_, b, _ := fakeBackend(t)
	var names []string
	for _, f := range b.Schema().Fields {
		names = append(names, f.Name+":"+f.Type)
	}
	want := []string{"account_id:string", "inbox_id:string", "conversation_id:string", "seq:int64",
		"direction:string", "kind:string", "body:string", "created_at:int64"}
	if !slices.Equal(names, want) {
		t.Fatalf("schema %v", names)
	}
}
