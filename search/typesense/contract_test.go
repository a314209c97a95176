package typesense_test

// The contract suite: the same assertions run against the fake
// (search/typesensefake) always, and against a real Typesense server when
// TYPESENSE_URL (and TYPESENSE_API_KEY) are set. What passes on both is what
// the fake may be trusted for; the backend's own behaviour is checked on top
// of the same targets.

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

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func doc(id, account, inbox, body string, minute int) search.Document {
	return search.Document{
		ID: id, AccountID: account, InboxID: inbox, ConversationID: "conv_" + id, Seq: int64(minute),
		Direction: "inbound", Kind: "message", Body: body, CreatedAt: t0.Add(time.Duration(minute) * time.Minute),
	}
}

func mustUpsert(t *testing.T, b search.Backend, docs ...search.Document) {
	t.Helper()
	bad, err := b.Upsert(context.Background(), docs)
	if err != nil || len(bad) > 0 {
		t.Fatalf("upsert: %v %v", bad, err)
	}
}

func hitIDs(r search.Result) string {
	ids := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		ids[i] = h.MessageID
	}
	return strings.Join(ids, ",")
}

func mustSearch(t *testing.T, b search.Backend, q search.Query) search.Result {
	t.Helper()
	r, err := b.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return r
}

func TestContract(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Run("HTTP", func(t *testing.T) { httpContract(t, tg) })
			t.Run("Backend", func(t *testing.T) { backendContract(t, tg) })
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

func backendContract(t *testing.T, tg target) {
	ctx := context.Background()
	b, name := newBackend(t, tg)

	// Nodes racing to create the collection all succeed.
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

	mustUpsert(t, b,
		doc("m1", "acc_a", "ib_a1", "my parcel never arrived", 1),
		doc("m2", "acc_a", "ib_a2", "parcel tracking number please", 2),
		doc("m3", "acc_b", "ib_b1", "where is my parcel", 3),
		doc("m4", "acc_a", "ib_a1", "Refund for order 5678 <i>now</i> & 1 < 2", 4),
	)
	both := []string{"ib_a1", "ib_a2"}
	cases := []struct {
		name string
		q    search.Query
		want string
	}{
		{"scoped, newest first", search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parcel"}, "m2,m1"},
		{"one inbox", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a2"}, Text: "parcel"}, "m2"},
		{"other account", search.Query{AccountID: "acc_b", InboxIDs: []string{"ib_b1"}, Text: "parcel"}, "m3"},
		{"other account, foreign inboxes", search.Query{AccountID: "acc_b", InboxIDs: both, Text: "parcel"}, ""},
		{"own account, foreign inbox", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_b1"}, Text: "parcel"}, ""},
		{"no inboxes", search.Query{AccountID: "acc_a", Text: "parcel"}, ""},
		{"prefix last word", search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parc"}, "m2,m1"},
		{"every word required", search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parcel refund"}, ""},
		{"case-insensitive", search.Query{AccountID: "acc_a", InboxIDs: both, Text: "REFUND ord"}, "m4"},
		{"query syntax is literal", search.Query{AccountID: "acc_a", InboxIDs: both, Text: `"parcel -never *`}, "m1"},
		{"limit", search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parcel", Limit: 1}, "m2"},
	}
	for _, c := range cases {
		r := mustSearch(t, b, c.q)
		if hitIDs(r) != c.want {
			t.Errorf("%s: got %q, want %q", c.name, hitIDs(r), c.want)
		}
		if r.Hits == nil {
			t.Errorf("%s: Hits is nil", c.name)
		}
	}
	if r := mustSearch(t, b, search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parcel", Limit: 1}); r.Found != 2 {
		t.Errorf("found with limit: %d", r.Found)
	}

	r := mustSearch(t, b, search.Query{AccountID: "acc_a", InboxIDs: both, Text: "refund"})
	if len(r.Hits) != 1 {
		t.Fatalf("refund: %s", hitIDs(r))
	}
	h := r.Hits[0]
	if h.ConversationID != "conv_m4" || h.InboxID != "ib_a1" || h.Seq != 4 || !h.CreatedAt.Equal(t0.Add(4*time.Minute)) ||
		h.Body != "Refund for order 5678 <i>now</i> & 1 < 2" {
		t.Fatalf("hit %+v", h)
	}
	if !strings.Contains(h.Snippet, "<mark>Refund</mark>") || strings.Contains(h.Snippet, "<i>") {
		t.Fatalf("snippet %q", h.Snippet)
	}

	// Upserts are idempotent and replace.
	mustUpsert(t, b, doc("m1", "acc_a", "ib_a1", "my parcel never arrived", 1))
	mustUpsert(t, b, doc("m2", "acc_a", "ib_a2", "tracking number please", 2))
	if r := mustSearch(t, b, search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parcel"}); hitIDs(r) != "m1" || r.Found != 1 {
		t.Fatalf("after re-upsert: %s found %d", hitIDs(r), r.Found)
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
		doc("ok1", "a", "i", "fine", 1), doc("bad", "a", "i", "poison pill", 2), doc("ok2", "a", "i", "fine too", 3),
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
	if bad, err := b.Upsert(context.Background(), []search.Document{doc("x", "a", "i", "y", 1)}); err == nil {
		t.Fatalf("want a batch error, got %v", bad)
	}
}

func TestFaultsAreBatchErrorsAndRecover(t *testing.T) {
	fake, b, coll := fakeBackend(t)
	ctx := context.Background()
	d := []search.Document{doc("m1", "a", "i", "hello", 1)}
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

	mustUpsert(t, b, d...)
	if r := mustSearch(t, b, q); hitIDs(r) != "m1" || fake.Count(coll) != 1 {
		t.Fatalf("after recovery: %s", hitIDs(r))
	}
	if fake.Failures() < 3 {
		t.Fatalf("failures %d", fake.Failures())
	}
}

func TestCollectionRecreatedAfterDeletion(t *testing.T) {
	fake, b, coll := fakeBackend(t)
	ctx := context.Background()
	mustUpsert(t, b, doc("m1", "a", "i", "hello", 1))
	tg := target{url: fake.URL(), key: "k"}
	if code, _ := raw(t, tg, http.MethodDelete, "/collections/"+coll, "", "", true); code != 200 {
		t.Fatal("delete")
	}
	if _, err := b.Upsert(ctx, []search.Document{doc("m2", "a", "i", "hello", 2)}); err == nil {
		t.Fatal("first upsert after deletion should fail (and be retried)")
	}
	mustUpsert(t, b, doc("m2", "a", "i", "hello", 2))
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
