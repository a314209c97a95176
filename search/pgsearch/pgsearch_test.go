package pgsearch

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/search"
	"github.com/switchboard-dev/switchboard/search/searchtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newBackend(t testing.TB) *Backend {
	t.Helper()
	pool, _ := searchtest.NewPool(t)
	b := New(pool)
	t.Cleanup(b.Close)
	return b
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func doc(id, account, inbox, body string, minute int) search.Document {
	return search.Document{
		ID: id, AccountID: account, InboxID: inbox, ConversationID: "conv_" + id, Seq: 1,
		Direction: "inbound", Kind: "message", Body: body, CreatedAt: t0.Add(time.Duration(minute) * time.Minute),
	}
}

func upsert(t testing.TB, b search.Backend, docs ...search.Document) {
	t.Helper()
	bad, err := b.Upsert(context.Background(), docs)
	if err != nil || len(bad) > 0 {
		t.Fatalf("upsert: %v %v", bad, err)
	}
}

func ids(r search.Result) []string {
	out := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = h.MessageID
	}
	return out
}

func run(t testing.TB, b search.Backend, q search.Query) search.Result {
	t.Helper()
	r, err := b.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return r
}

func TestSearchScopedToAccountAndInboxes(t *testing.T) {
	b := newBackend(t)
	upsert(t, b,
		doc("m1", "acc_a", "ib_a1", "my parcel never arrived", 1),
		doc("m2", "acc_a", "ib_a2", "parcel tracking number please", 2),
		doc("m3", "acc_b", "ib_b1", "where is my parcel", 3),
	)
	cases := []struct {
		name string
		q    search.Query
		want []string
	}{
		{"both inboxes", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a1", "ib_a2"}, Text: "parcel"}, []string{"m2", "m1"}},
		{"one inbox", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a2"}, Text: "parcel"}, []string{"m2"}},
		{"other account", search.Query{AccountID: "acc_b", InboxIDs: []string{"ib_b1"}, Text: "parcel"}, []string{"m3"}},
		{"other account's inbox id", search.Query{AccountID: "acc_b", InboxIDs: []string{"ib_a1", "ib_a2"}, Text: "parcel"}, nil},
		{"foreign inbox in own account scope", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_b1"}, Text: "parcel"}, nil},
		{"no inboxes", search.Query{AccountID: "acc_a", Text: "parcel"}, nil},
		{"no text", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a1"}, Text: "  "}, nil},
		{"unknown account", search.Query{AccountID: "acc_x", InboxIDs: []string{"ib_a1"}, Text: "parcel"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, b, c.q)
			if got := ids(r); strings.Join(got, ",") != strings.Join(c.want, ",") || r.Found != len(c.want) {
				t.Fatalf("got %v found %d, want %v", got, r.Found, c.want)
			}
			if r.Hits == nil {
				t.Fatal("Hits is nil; the API wants []")
			}
		})
	}
}

func TestSearchPrefixRankingSnippet(t *testing.T) {
	b := newBackend(t)
	in := []string{"ib_1"}
	upsert(t, b,
		doc("old", "acc", "ib_1", "refund refund refund for order 1234", 1),
		doc("new", "acc", "ib_1", "refund for order 5678 <script>alert(1)</script> & 1 < 2", 5),
		doc("newer", "acc", "ib_1", "a refund was issued", 9),
		doc("other", "acc", "ib_1", "ordering pizza tonight", 10),
		doc("mail", "acc", "ib_1", "write to John.Doe@example.com about it", 11),
	)
	// Relevance first: "old" mentions refund three times; then newest first.
	r := run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "refund"})
	if got := strings.Join(ids(r), ","); got != "old,newer,new" {
		t.Fatalf("ranking: got %s", got)
	}
	// The last word is a prefix; earlier words are whole words.
	r = run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "ord"})
	if r.Found != 3 {
		t.Fatalf("prefix ord: found %d %v", r.Found, ids(r))
	}
	r = run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "ord refu"})
	if r.Found != 0 {
		t.Fatalf("non-last word must be whole: %v", ids(r))
	}
	r = run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "REFUND ord"})
	if got := strings.Join(ids(r), ","); got != "old,new" {
		t.Fatalf("two words: got %s", got)
	}
	// Punctuation and quotes in user text are literal, never query syntax.
	for _, text := range []string{"refund & !", "it's", `back\slash`, "a:*", "(", "'"} {
		if _, err := b.Search(context.Background(), search.Query{AccountID: "acc", InboxIDs: in, Text: text}); err != nil {
			t.Fatalf("query %q: %v", text, err)
		}
	}
	r = run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "john.doe@example.com"})
	if got := strings.Join(ids(r), ","); got != "mail" {
		t.Fatalf("e-mail: got %s", got)
	}
	// Snippet: matches marked, the rest escaped.
	r = run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "5678"})
	if len(r.Hits) != 1 {
		t.Fatalf("5678: %v", ids(r))
	}
	h := r.Hits[0]
	// (ts_headline drops what its parser takes for HTML tags; what remains is escaped.)
	if !strings.Contains(h.Snippet, "<mark>5678</mark>") || strings.Contains(h.Snippet, "<script>") || !strings.Contains(h.Snippet, "&amp; 1 &lt; 2") {
		t.Fatalf("snippet %q", h.Snippet)
	}
	if h.Body != "refund for order 5678 <script>alert(1)</script> & 1 < 2" || h.ConversationID != "conv_new" || h.InboxID != "ib_1" ||
		h.Seq != 1 || !h.CreatedAt.Equal(t0.Add(5*time.Minute)) || h.CreatedAt.Location() != time.UTC {
		t.Fatalf("hit %+v", h)
	}
	// Limit.
	r = run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "refund", Limit: 2})
	if len(r.Hits) != 2 || r.Found != 3 {
		t.Fatalf("limit: %d hits, found %d", len(r.Hits), r.Found)
	}
}

func TestUpsertIsIdempotentAndReplaces(t *testing.T) {
	b := newBackend(t)
	in := []string{"ib"}
	d := doc("m1", "acc", "ib", "first version", 1)
	for range 3 {
		upsert(t, b, d, d) // duplicates inside one batch too
	}
	r := run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "first"})
	if r.Found != 1 {
		t.Fatalf("found %d", r.Found)
	}
	d.Body = "second version"
	upsert(t, b, d)
	if r := run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "first"}); r.Found != 0 {
		t.Fatalf("old body still found")
	}
	if r := run(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "second"}); r.Found != 1 {
		t.Fatalf("new body not found")
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM search_messages").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows %d %v", n, err)
	}
}

func TestUpsertIsolatesPoisonDocuments(t *testing.T) {
	b := newBackend(t)
	docs := []search.Document{
		doc("ok1", "acc", "ib", "fine message", 1),
		doc("nul", "acc", "ib", "bad \x00 byte", 2),
		doc("utf", "acc", "ib", "bad \xff utf8", 3),
		doc("ok2", "acc", "ib", "another fine message", 4),
	}
	bad, err := b.Upsert(context.Background(), docs)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 2 || bad[0].ID != "nul" || bad[1].ID != "utf" || bad[0].Reason == "" {
		t.Fatalf("doc errors %+v", bad)
	}
	if r := run(t, b, search.Query{AccountID: "acc", InboxIDs: []string{"ib"}, Text: "fine"}); r.Found != 2 {
		t.Fatalf("found %d", r.Found)
	}
}

func TestUpsertWholeBatchErrorWhenDatabaseDown(t *testing.T) {
	b := newBackend(t)
	b.pool.Close()
	bad, err := b.Upsert(context.Background(), []search.Document{doc("m", "a", "i", "x", 1)})
	if err == nil || bad != nil {
		t.Fatalf("want a batch error, got %v %v", bad, err)
	}
}

// TestScopedSearchUsesGINIndex loads enough rows over many accounts for the
// planner to have a real choice, then checks that a scoped search — common
// word and prefix alike — is answered through the (account_id, tsv) GIN
// index rather than by a scan.
var (
	ginScan      = regexp.MustCompile(`Bitmap Index Scan on search_messages_p\d+_account_id_tsv_idx`)
	partitionRef = regexp.MustCompile(`Bitmap Heap Scan on search_messages_p\d+`)
)

func TestScopedSearchUsesGINIndex(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	load(t, b, 20_000, 200)
	if _, err := b.pool.Exec(ctx, "ANALYZE search_messages"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"the", "order refu", benchRareWord(7)} {
		q := search.Query{AccountID: benchAccount(3), InboxIDs: []string{benchInbox(3, 0), benchInbox(3, 1)}, Text: text}
		plan, err := b.explain(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if text == "the" {
			t.Logf("plan of a scoped search for a common word:\n%s", plan)
		}
		if !ginScan.MatchString(plan) || strings.Contains(plan, "Seq Scan") {
			t.Fatalf("query %q does not use the GIN index:\n%s", text, plan)
		}
		if n := len(partitionRef.FindAllString(plan, -1)); n != 1 {
			t.Fatalf("query %q should touch one partition, plan names %d:\n%s", text, n, plan)
		}
		if !strings.Contains(plan, "account_id = ") || !strings.Contains(plan, "tsv @@") {
			t.Fatalf("query %q: account and words should both be index conditions:\n%s", text, plan)
		}
		if r := run(t, b, q); r.Found == 0 && text == "the" {
			t.Fatalf("query %q found nothing", text)
		}
	}
}
