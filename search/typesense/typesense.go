// Package typesense is the search backend on a Typesense server, through
// github.com/typesense/typesense-go/v2.
//
// One collection holds every account's messages; each document carries its
// account and inbox, and every search filters on both (filter_by), so a
// tenant only ever sees its own documents.
//
// Typesense being down must not stop the server from starting (search is
// not on the hot path), so New does no I/O: the collection is created on
// first use (or by EnsureCollection at start), and a failed attempt is
// retried on the next call.
package typesense

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	ts "github.com/typesense/typesense-go/v2/typesense"
	"github.com/typesense/typesense-go/v2/typesense/api"

	"github.com/switchboard-dev/switchboard/search"
)

// Config of the backend.
type Config struct {
	// URL of the Typesense server, e.g. http://127.0.0.1:8108.
	URL    string
	APIKey string
	// Collection name; default "switchboard_messages".
	Collection string
	// Timeout of one HTTP request; default 10 s. Callers' contexts apply too.
	Timeout time.Duration
	// NumTypos allowed per word; default 0, so both backends answer the same
	// query with the same documents (every word, last one as a prefix).
	NumTypos int
	// HTTPClient overrides the HTTP client (tests); Timeout is then ignored.
	HTTPClient *http.Client
}

// DefaultCollection is the collection name when Config.Collection is empty.
const DefaultCollection = "switchboard_messages"

// Backend is the Typesense search backend. It is safe for concurrent use.
type Backend struct {
	cfg    Config
	client *ts.Client

	mu      sync.Mutex
	ensured bool
}

var _ search.Backend = (*Backend)(nil)

// New returns a backend for cfg. It does not contact the server.
func New(cfg Config) (*Backend, error) {
	if cfg.URL == "" {
		return nil, errors.New("typesense: no server URL")
	}
	if cfg.Collection == "" {
		cfg.Collection = DefaultCollection
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	// The low-level client directly, without typesense-go's default
	// wrapper: its circuit breaker would keep failing requests for a minute
	// after the server is back, and the indexer already retries with backoff.
	apiClient, err := api.NewClientWithResponses(strings.TrimRight(cfg.URL, "/"),
		api.WithAPIKey(cfg.APIKey), api.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("typesense: client: %w", err)
	}
	return &Backend{cfg: cfg, client: ts.NewClient(ts.WithAPIClient(apiClient))}, nil
}

// Close is a no-op: the backend holds nothing but idle HTTP connections.
func (b *Backend) Close() {}

// Schema is the collection the backend creates. created_at is Unix
// milliseconds, because Typesense sorts on numbers only.
func (b *Backend) Schema() *api.CollectionSchema {
	str := func(name string) api.Field { return api.Field{Name: name, Type: "string"} }
	sortBy := "created_at"
	return &api.CollectionSchema{
		Name: b.cfg.Collection,
		Fields: []api.Field{
			str("account_id"), str("inbox_id"), str("conversation_id"),
			{Name: "seq", Type: "int64"},
			str("direction"), str("kind"), str("body"),
			{Name: "created_at", Type: "int64"},
		},
		DefaultSortingField: &sortBy,
	}
}

// EnsureCollection creates the collection unless it exists. Several nodes
// may race here: losing with 409 Conflict is success.
func (b *Backend) EnsureCollection(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ensured {
		return nil
	}
	_, err := b.client.Collection(b.cfg.Collection).Retrieve(ctx)
	if err == nil {
		b.ensured = true
		return nil
	}
	if status(err) != http.StatusNotFound {
		return fmt.Errorf("typesense: get collection %s: %w", b.cfg.Collection, err)
	}
	if _, err := b.client.Collections().Create(ctx, b.Schema()); err != nil && status(err) != http.StatusConflict {
		return fmt.Errorf("typesense: create collection %s: %w", b.cfg.Collection, err)
	}
	b.ensured = true
	return nil
}

// forget makes the next call check the collection again (it was deleted
// under us: a 404 from a document endpoint).
func (b *Backend) forget() {
	b.mu.Lock()
	b.ensured = false
	b.mu.Unlock()
}

func status(err error) int {
	var he *ts.HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// document is the JSON a message is stored as; id is the message id.
type document struct {
	ID             string `json:"id"`
	AccountID      string `json:"account_id"`
	InboxID        string `json:"inbox_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Direction      string `json:"direction"`
	Kind           string `json:"kind"`
	Body           string `json:"body"`
	CreatedAt      int64  `json:"created_at"`
	// CreatedAtMicros is the time to the microsecond, as PostgreSQL and the
	// API give it; stored, not indexed (no schema field), and read back
	// when present.
	CreatedAtMicros int64 `json:"created_at_us"`
}

// importLine is one line of the import response. Code appears from
// Typesense 0.25 on; older servers only say success and error.
type importLine struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Code    int    `json:"code"`
}

// Upsert imports docs as JSONL with action=upsert. Typesense answers 200
// with one result line per document; a line that failed for a reason of the
// document (4xx) is a DocError, one that failed for the server's sake (5xx,
// 429) fails the whole batch so that it is retried.
func (b *Backend) Upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	if err := b.EnsureCollection(ctx); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, d := range docs {
		if err := enc.Encode(document{
			ID: d.ID, AccountID: d.AccountID, InboxID: d.InboxID, ConversationID: d.ConversationID,
			Seq: d.Seq, Direction: d.Direction, Kind: d.Kind, Body: d.Body, CreatedAt: d.CreatedAt.UnixMilli(), CreatedAtMicros: d.CreatedAt.UnixMicro(),
		}); err != nil {
			return nil, fmt.Errorf("typesense: encode document %s: %w", d.ID, err)
		}
	}
	action := "upsert"
	rc, err := b.client.Collection(b.cfg.Collection).Documents().ImportJsonl(ctx, &body, &api.ImportDocumentsParams{Action: &action})
	if err != nil {
		if status(err) == http.StatusNotFound {
			b.forget()
		}
		return nil, fmt.Errorf("typesense: import %d documents: %w", len(docs), err)
	}
	defer rc.Close()
	lines, err := readLines(rc)
	if err != nil {
		return nil, fmt.Errorf("typesense: import %d documents: read results: %w", len(docs), err)
	}
	if len(lines) != len(docs) {
		// A cut-short answer says nothing about the missing documents.
		return nil, fmt.Errorf("typesense: import %d documents: %d result lines", len(docs), len(lines))
	}
	var bad []search.DocError
	for i, l := range lines {
		if l.Success {
			continue
		}
		if l.Code >= 500 || l.Code == http.StatusTooManyRequests || l.Code == http.StatusRequestTimeout {
			return nil, fmt.Errorf("typesense: import: document %s: %d %s", docs[i].ID, l.Code, l.Error)
		}
		bad = append(bad, search.DocError{ID: docs[i].ID, Reason: fmt.Sprintf("typesense %d: %s", l.Code, l.Error)})
	}
	return bad, nil
}

func readLines(r io.Reader) ([]importLine, error) {
	var out []importLine
	sc := bufio.NewScanner(r)
	// A failed line echoes the document back, and a body may be 16 KiB of
	// multi-byte text.
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l importLine
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, fmt.Errorf("bad result line %q: %w", truncate(string(line), 200), err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Search runs q with every word required and the last one a prefix, sorted
// by text match then recency, filtered on the account and inbox list.
func (b *Backend) Search(ctx context.Context, q search.Query) (search.Result, error) {
	res := search.Result{Hits: []search.Hit{}}
	text := sanitize(q.Text)
	filter, ok := filterBy(q)
	if q.Empty() || text == "" || !ok {
		return res, nil
	}
	if err := b.EnsureCollection(ctx); err != nil {
		return res, err
	}
	params := searchParams(text, filter, q.EffectiveLimit(), b.cfg.NumTypos)
	sr, err := b.client.Collection(b.cfg.Collection).Documents().Search(ctx, params)
	if err != nil {
		if status(err) == http.StatusNotFound {
			b.forget()
		}
		return res, fmt.Errorf("typesense: search: %w", err)
	}
	if sr.Found != nil {
		res.Found = *sr.Found
	}
	if sr.Hits == nil {
		return res, nil
	}
	for _, h := range *sr.Hits {
		if h.Document == nil {
			continue
		}
		hit := hitOf(*h.Document)
		hit.Snippet = search.MarkSnippet(snippetOf(h, hit.Body))
		res.Hits = append(res.Hits, hit)
	}
	return res, nil
}

func searchParams(text, filter string, limit, typos int) *api.SearchCollectionParams {
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	return &api.SearchCollectionParams{
		Q:                       str(text),
		QueryBy:                 str("body"),
		FilterBy:                str(filter),
		SortBy:                  str("_text_match:desc,created_at:desc"),
		PerPage:                 num(limit),
		Page:                    num(1),
		Prefix:                  str("true"),
		NumTypos:                str(fmt.Sprint(typos)),
		DropTokensThreshold:     num(0),
		TypoTokensThreshold:     num(0),
		HighlightFields:         str("body"),
		HighlightStartTag:       str(search.MarkStart),
		HighlightEndTag:         str(search.MarkEnd),
		HighlightAffixNumTokens: num(8),
	}
}

// sanitize keeps the user's words and drops Typesense query syntax: quotes
// (phrase search), a leading '-' (exclusion) and a lone '*' (match all), so
// that text is always plain words, as with the PostgreSQL backend.
func sanitize(text string) string {
	var words []string
	for _, w := range strings.Fields(strings.ReplaceAll(text, `"`, " ")) {
		w = strings.TrimLeft(w, "-")
		if w == "" || w == "*" {
			continue
		}
		words = append(words, w)
		if len(words) == search.MaxWords {
			break
		}
	}
	return strings.Join(words, " ")
}

// filterBy builds the tenant filter. Values are backtick-quoted so that any
// character in an id is literal; an id containing a backtick cannot be
// quoted, cannot be one of ours, and is left out (false if nothing is left).
func filterBy(q search.Query) (string, bool) {
	if q.AccountID == "" || strings.Contains(q.AccountID, "`") {
		return "", false
	}
	inboxes := make([]string, 0, len(q.InboxIDs))
	for _, id := range q.InboxIDs {
		if id != "" && !strings.Contains(id, "`") {
			inboxes = append(inboxes, "`"+id+"`")
		}
	}
	if len(inboxes) == 0 {
		return "", false
	}
	return "account_id:=`" + q.AccountID + "` && inbox_id:=[" + strings.Join(inboxes, ",") + "]", true
}

func hitOf(doc map[string]any) search.Hit {
	s := func(k string) string { v, _ := doc[k].(string); return v }
	n := func(k string) int64 {
		switch v := doc[k].(type) {
		case float64:
			return int64(v)
		case json.Number:
			i, _ := v.Int64()
			return i
		}
		return 0
	}
	at := time.UnixMilli(n("created_at"))
	if us := n("created_at_us"); us != 0 {
		at = time.UnixMicro(us) // documents indexed before it was kept have none
	}
	return search.Hit{
		ConversationID: s("conversation_id"), InboxID: s("inbox_id"), MessageID: s("id"),
		Seq: n("seq"), Body: s("body"), CreatedAt: at.UTC(),
	}
}

// snippetOf prefers the newer highlight object, then the older highlights
// list (servers differ in which they send), then the body itself.
func snippetOf(h api.SearchResultHit, body string) string {
	if h.Highlight != nil {
		if f, ok := (*h.Highlight)["body"].(map[string]any); ok {
			if s, ok := f["snippet"].(string); ok && s != "" {
				return s
			}
		}
	}
	if h.Highlights != nil {
		for _, hl := range *h.Highlights {
			if hl.Field != nil && *hl.Field == "body" && hl.Snippet != nil && *hl.Snippet != "" {
				return *hl.Snippet
			}
		}
	}
	return body
}
