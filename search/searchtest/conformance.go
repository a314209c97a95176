package searchtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/search"
)

// The conformance suite: the behaviour every search.Backend owes the indexer
// and GET /v1/search, run against each backend by its own tests (pgsearch;
// typesense against the fake, and against a real server when TYPESENSE_URL
// is set). What a backend does beyond it (ranking by term frequency, how it
// refuses a poison document, how it fails) stays in that backend's tests.

// Factory returns a fresh, empty backend for one test and arranges its own
// cleanup.
type Factory func(t *testing.T) search.Backend

// T0 is the fixtures' clock: Doc's minute counts from it.
var T0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Doc is a message document: conversation "conv_<id>", seq = minute,
// created at T0 + minute.
func Doc(id, account, inbox, body string, minute int) search.Document {
	return search.Document{
		ID: id, AccountID: account, InboxID: inbox, ConversationID: "conv_" + id, Seq: int64(minute),
		Direction: "inbound", Kind: "message", Body: body, CreatedAt: T0.Add(time.Duration(minute) * time.Minute),
	}
}

// MustUpsert upserts docs and fails t on any error or refused document.
func MustUpsert(t testing.TB, b search.Backend, docs ...search.Document) {
	t.Helper()
	bad, err := b.Upsert(context.Background(), docs)
	if err != nil || len(bad) > 0 {
		t.Fatalf("upsert: %v %v", bad, err)
	}
}

// MustSearch runs q and fails t on an error.
func MustSearch(t testing.TB, b search.Backend, q search.Query) search.Result {
	t.Helper()
	r, err := b.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return r
}

// HitIDs is the result's message ids in order, comma separated.
func HitIDs(r search.Result) string {
	ids := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		ids[i] = h.MessageID
	}
	return strings.Join(ids, ",")
}

func sortedIDs(r search.Result) string {
	ids := strings.Split(HitIDs(r), ",")
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// Run runs the conformance suite against backends made by newBackend.
func Run(t *testing.T, newBackend Factory) {
	t.Run("Scope", func(t *testing.T) { scope(t, newBackend(t)) })
	t.Run("Words", func(t *testing.T) { words(t, newBackend(t)) })
	t.Run("Hit", func(t *testing.T) { hit(t, newBackend(t)) })
	t.Run("AngleBrackets", func(t *testing.T) { angleBrackets(t, newBackend(t)) })
	t.Run("Limit", func(t *testing.T) { limit(t, newBackend(t)) })
	t.Run("Upsert", func(t *testing.T) { upsert(t, newBackend(t)) })
}

// scope: a search sees only the caller's account and the inboxes it names,
// and a query that can match nothing answers empty, with Hits never nil
// (the API wants []).
func scope(t *testing.T, b search.Backend) {
	MustUpsert(t, b,
		Doc("m1", "acc_a", "ib_a1", "my parcel never arrived", 1),
		Doc("m2", "acc_a", "ib_a2", "parcel tracking number please", 2),
		Doc("m3", "acc_b", "ib_b1", "where is my parcel", 3),
	)
	both := []string{"ib_a1", "ib_a2"}
	for _, c := range []struct {
		name string
		q    search.Query
		want string
	}{
		{"both inboxes, newest first among equals", search.Query{AccountID: "acc_a", InboxIDs: both, Text: "parcel"}, "m2,m1"},
		{"one inbox", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a2"}, Text: "parcel"}, "m2"},
		{"other account", search.Query{AccountID: "acc_b", InboxIDs: []string{"ib_b1"}, Text: "parcel"}, "m3"},
		{"other account naming foreign inboxes", search.Query{AccountID: "acc_b", InboxIDs: both, Text: "parcel"}, ""},
		{"own account naming a foreign inbox", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_b1"}, Text: "parcel"}, ""},
		{"no inboxes", search.Query{AccountID: "acc_a", Text: "parcel"}, ""},
		{"no text", search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a1"}, Text: "  "}, ""},
		{"unknown account", search.Query{AccountID: "acc_x", InboxIDs: []string{"ib_a1"}, Text: "parcel"}, ""},
	} {
		r := MustSearch(t, b, c.q)
		if got := HitIDs(r); got != c.want || r.Found != len(r.Hits) {
			t.Errorf("%s: got %q found %d, want %q", c.name, got, r.Found, c.want)
		}
		if r.Hits == nil {
			t.Errorf("%s: Hits is nil; the API wants []", c.name)
		}
	}
}

// words: every word must match, the last one as a prefix and the others
// whole; case does not matter; user text is words, never query syntax.
// Which documents match is checked here; their order only where relevance
// is equal (otherwise it is the backend's own).
func words(t *testing.T, b search.Backend) {
	in := []string{"ib_1"}
	MustUpsert(t, b,
		Doc("p1", "acc", "ib_1", "my parcel never arrived", 1),
		Doc("p2", "acc", "ib_1", "parcel tracking number please", 2),
		Doc("r1", "acc", "ib_1", "Refund for order 5678", 3),
		Doc("r2", "acc", "ib_1", "a refund was issued for your order", 4),
		Doc("o1", "acc", "ib_1", "ordering pizza tonight", 5),
		Doc("e1", "acc", "ib_1", "write to John.Doe@example.com about it", 6),
		Doc("u1", "acc", "ib_1", "un café crème pour l ÉCOLE", 7),
	)
	for _, c := range []struct {
		name, text, want string
		ordered          bool
	}{
		{"prefix of the last word, newest first among equals", "parc", "p2,p1", true},
		{"prefix matches several words", "ord", "o1,r1,r2", false},
		{"earlier words are whole", "ord refu", "", true},
		{"every word required", "parcel refund", "", true},
		{"case-insensitive", "REFUND ord", "r1,r2", false},
		{"case-insensitive beyond ASCII", "CAFÉ école", "u1", true},
		{"query syntax is literal", `"parcel -never *`, "p1", true},
		{"e-mail address", "john.doe@example.com", "e1", true},
	} {
		r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: c.text})
		got := HitIDs(r)
		if !c.ordered {
			got = sortedIDs(r)
		}
		if got != c.want || r.Found != len(r.Hits) {
			t.Errorf("%s (%q): got %q found %d, want %q", c.name, c.text, got, r.Found, c.want)
		}
	}
	// Punctuation and quotes in user text never break the query.
	for _, text := range []string{"refund & !", "it's", `back\slash`, "a:*", "(", "'", `"`, "-", "*"} {
		if _, err := b.Search(context.Background(), search.Query{AccountID: "acc", InboxIDs: in, Text: text}); err != nil {
			t.Errorf("query %q: %v", text, err)
		}
	}
}

// hit: a hit carries the document's fields as indexed, the raw body, and a
// snippet that marks the match and escapes everything else.
func hit(t *testing.T, b search.Backend) {
	body := "Refund for order 5678 <i>now</i> <script>alert(1)</script> & 1 < 2"
	m4 := Doc("m4", "acc_a", "ib_a1", body, 4)
	// To the microsecond, as the API answers a message's created_at.
	at := T0.Add(4*time.Minute + 123456*time.Microsecond)
	m4.CreatedAt = at
	MustUpsert(t, b, m4, Doc("m5", "acc_a", "ib_a1", "unrelated", 5))
	r := MustSearch(t, b, search.Query{AccountID: "acc_a", InboxIDs: []string{"ib_a1"}, Text: "refund"})
	if len(r.Hits) != 1 {
		t.Fatalf("refund: %q", HitIDs(r))
	}
	h := r.Hits[0]
	if h.MessageID != "m4" || h.ConversationID != "conv_m4" || h.InboxID != "ib_a1" || h.Seq != 4 || h.Body != body {
		t.Errorf("hit %+v", h)
	}
	if !h.CreatedAt.Equal(at) || h.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at %v, want %v in UTC", h.CreatedAt, at)
	}
	if !strings.Contains(h.Snippet, "<mark>Refund</mark>") {
		t.Errorf("snippet %q does not mark the match", h.Snippet)
	}
	if strings.Contains(h.Snippet, "<i>") || strings.Contains(h.Snippet, "<script>") {
		t.Errorf("snippet %q passes the body's markup through", h.Snippet)
	}
}

// angleBrackets: text between < and > is words like any other (an HTML
// parser would drop it as a tag), and the snippet shows the body's own
// characters, escaped, brackets and guillemets included.
func angleBrackets(t *testing.T, b search.Backend) {
	body := "zebrafish: <john@example.com> <ticket 5521>, x<y a>b ‹ok›"
	MustUpsert(t, b, Doc("g1", "acc", "ib", body, 1))
	for _, q := range []string{"5521", "ticket", "john@example.com", "x<y", "<ticket"} {
		if r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: []string{"ib"}, Text: q}); HitIDs(r) != "g1" {
			t.Errorf("%q: %q, want g1", q, HitIDs(r))
		}
	}
	r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: []string{"ib"}, Text: "zebrafish"})
	if len(r.Hits) != 1 {
		t.Fatalf("zebrafish: %q", HitIDs(r))
	}
	for _, part := range []string{"<mark>zebrafish", "&lt;john@example.com&gt; &lt;ticket 5521&gt;, x&lt;y a&gt;b ‹ok›"} {
		if !strings.Contains(r.Hits[0].Snippet, part) {
			t.Errorf("snippet %q lacks %q", r.Hits[0].Snippet, part)
		}
	}
}

// limit: Limit caps the hits, not Found.
func limit(t *testing.T, b search.Backend) {
	in := []string{"ib"}
	MustUpsert(t, b,
		Doc("l1", "acc", "ib", "refund please", 1),
		Doc("l2", "acc", "ib", "refund now", 2),
		Doc("l3", "acc", "ib", "refund today", 3),
	)
	for _, c := range []struct {
		limit int
		want  string
	}{{1, "l3"}, {2, "l3,l2"}, {0, "l3,l2,l1"}} {
		r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "refund", Limit: c.limit})
		if got := HitIDs(r); got != c.want || r.Found != 3 {
			t.Errorf("limit %d: got %q found %d, want %q found 3", c.limit, got, r.Found, c.want)
		}
	}
}

// upsert: replaying a batch is harmless (duplicates inside one batch too),
// and upserting an id again replaces its document.
func upsert(t *testing.T, b search.Backend) {
	in := []string{"ib"}
	d := Doc("u1", "acc", "ib", "first version", 1)
	for range 3 {
		MustUpsert(t, b, d, d)
	}
	if r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "first"}); HitIDs(r) != "u1" || r.Found != 1 {
		t.Fatalf("after replays: %q found %d", HitIDs(r), r.Found)
	}
	d.Body = "second version"
	MustUpsert(t, b, d)
	if r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "first"}); r.Found != 0 {
		t.Fatalf("the replaced body is still found: %q", HitIDs(r))
	}
	if r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "second"}); HitIDs(r) != "u1" || r.Found != 1 {
		t.Fatalf("the new body: %q found %d", HitIDs(r), r.Found)
	}
	if r := MustSearch(t, b, search.Query{AccountID: "acc", InboxIDs: in, Text: "version"}); r.Found != 1 {
		t.Fatalf("one id, one document: found %d", r.Found)
	}
}
