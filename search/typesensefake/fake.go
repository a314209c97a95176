// Package typesensefake is a stand-in for a Typesense server, for tests on
// machines where Typesense cannot run. It serves, over httptest, the part of
// the HTTP API that search/typesense uses, with Typesense's status codes,
// error bodies and result shapes:
//
//   - GET /health
//   - POST /collections, GET /collections, GET and DELETE /collections/{name}
//   - POST /collections/{name}/documents/import (JSONL in, one JSONL result
//     line per document out, HTTP 200 even when documents fail; actions
//     create, upsert, update, emplace)
//   - GET /collections/{name}/documents/search (q, query_by, filter_by,
//     sort_by, prefix, page, per_page, highlight_* parameters)
//
// Every endpoint but /health wants the X-TYPESENSE-API-KEY header (or the
// x-typesense-api-key query parameter). Text matching follows Typesense's
// default tokenizer (split on whitespace, drop non-alphanumeric characters,
// lower-case), requires every query word and treats the last one as a
// prefix; it does no typo correction and never drops words, i.e. it behaves
// like a server asked for num_typos=0 and drop_tokens_threshold=0. Text
// match scores only order results like Typesense's do (more exact words
// first); their values differ.
//
// Fault switches — latency, 503 answers, dropped connections, refused
// documents — let tests exercise outages.
package typesensefake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Server is a fake Typesense server. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	apiKey string

	mu          sync.Mutex
	collections map[string]*collection
	latency     time.Duration
	unavailable bool
	drop        bool
	reject      func(doc map[string]any) (code int, msg string, bad bool)

	imports  atomic.Int64
	searches atomic.Int64
	failures atomic.Int64
}

type collection struct {
	schema  map[string]any // as created, for GET
	fields  map[string]string
	order   []string // field names in schema order
	sortDef string
	created int64
	docs    map[string]map[string]any
}

// New starts a fake server that accepts apiKey.
func New(apiKey string) *Server {
	s := &Server{apiKey: apiKey, collections: map[string]*collection{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetLatency delays every answer by d (0 turns it off). The delay ends early
// when the client gives up.
func (s *Server) SetLatency(d time.Duration) { s.mu.Lock(); s.latency = d; s.mu.Unlock() }

// SetUnavailable makes every endpoint answer 503 as a Typesense node does
// while it is not ready or is lagging.
func (s *Server) SetUnavailable(on bool) { s.mu.Lock(); s.unavailable = on; s.mu.Unlock() }

// SetDropConnections makes the server close each connection on receiving a
// request, without an answer.
func (s *Server) SetDropConnections(on bool) {
	s.mu.Lock()
	s.drop = on
	s.mu.Unlock()
	if on {
		s.srv.CloseClientConnections()
	}
}

// RejectDocuments installs a check run on each imported document: when it
// says bad, that document's result line fails with code and msg and the
// document is not stored, as Typesense does for a document it refuses.
// nil removes the check.
func (s *Server) RejectDocuments(f func(doc map[string]any) (code int, msg string, bad bool)) {
	s.mu.Lock()
	s.reject = f
	s.mu.Unlock()
}

// Imports, Searches and Failures count import requests handled, searches
// handled, and requests refused by a fault switch.
func (s *Server) Imports() int64  { return s.imports.Load() }
func (s *Server) Searches() int64 { return s.searches.Load() }
func (s *Server) Failures() int64 { return s.failures.Load() }

// Document returns a stored document (a copy), if present.
func (s *Server) Document(coll, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collections[coll]
	if !ok {
		return nil, false
	}
	d, ok := c.docs[id]
	if !ok {
		return nil, false
	}
	out := make(map[string]any, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out, true
}

// Count is the number of documents in a collection.
func (s *Server) Count(coll string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.collections[coll]; ok {
		return len(c.docs)
	}
	return 0
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func message(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency, unavailable, drop := s.latency, s.unavailable, s.drop
	s.mu.Unlock()
	if drop {
		s.failures.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if unavailable {
		s.failures.Add(1)
		message(w, http.StatusServiceUnavailable, "Not Ready or Lagging")
		return
	}
	path := strings.Trim(r.URL.Path, "/")
	if path == "health" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	}
	key := r.Header.Get("X-TYPESENSE-API-KEY")
	if key == "" {
		key = r.URL.Query().Get("x-typesense-api-key")
	}
	if key != s.apiKey {
		message(w, http.StatusUnauthorized, "Forbidden - a valid `x-typesense-api-key` header must be sent.")
		return
	}
	parts := strings.Split(path, "/")
	switch {
	case len(parts) == 1 && parts[0] == "collections" && r.Method == http.MethodPost:
		s.createCollection(w, r)
	case len(parts) == 1 && parts[0] == "collections" && r.Method == http.MethodGet:
		s.listCollections(w)
	case len(parts) == 2 && parts[0] == "collections" && r.Method == http.MethodGet:
		s.getCollection(w, parts[1])
	case len(parts) == 2 && parts[0] == "collections" && r.Method == http.MethodDelete:
		s.deleteCollection(w, parts[1])
	case len(parts) == 4 && parts[0] == "collections" && parts[2] == "documents" && parts[3] == "import" && r.Method == http.MethodPost:
		s.imports.Add(1)
		s.importDocuments(w, r, parts[1])
	case len(parts) == 4 && parts[0] == "collections" && parts[2] == "documents" && parts[3] == "search" && r.Method == http.MethodGet:
		s.searches.Add(1)
		s.search(w, r, parts[1])
	default:
		message(w, http.StatusNotFound, "Not Found")
	}
}

var fieldTypes = map[string]bool{"string": true, "int32": true, "int64": true, "float": true, "bool": true}

func (s *Server) createCollection(w http.ResponseWriter, r *http.Request) {
	var schema struct {
		Name                string `json:"name"`
		DefaultSortingField string `json:"default_sorting_field"`
		Fields              []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"fields"`
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil || json.Unmarshal(raw, &schema) != nil {
		message(w, http.StatusBadRequest, "Bad JSON.")
		return
	}
	if schema.Name == "" {
		message(w, http.StatusBadRequest, "Parameter `name` is required.")
		return
	}
	if len(schema.Fields) == 0 {
		message(w, http.StatusBadRequest, "Parameter `fields` is required.")
		return
	}
	c := &collection{fields: map[string]string{}, docs: map[string]map[string]any{}, sortDef: schema.DefaultSortingField}
	for _, f := range schema.Fields {
		if !fieldTypes[f.Type] {
			message(w, http.StatusBadRequest, fmt.Sprintf("Field `%s` has an invalid data type `%s`, see docs for supported data types.", f.Name, f.Type))
			return
		}
		c.fields[f.Name] = f.Type
		c.order = append(c.order, f.Name)
	}
	if c.sortDef != "" {
		if t := c.fields[c.sortDef]; t != "int32" && t != "int64" && t != "float" {
			message(w, http.StatusBadRequest, fmt.Sprintf("Default sorting field is defined as `%s` but is not found in the schema.", c.sortDef))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.collections[schema.Name]; ok {
		message(w, http.StatusConflict, fmt.Sprintf("A collection with name `%s` already exists.", schema.Name))
		return
	}
	c.created = time.Now().Unix()
	c.schema = c.describe(schema.Name)
	s.collections[schema.Name] = c
	writeJSON(w, http.StatusCreated, c.response(schema.Name))
}

func (c *collection) describe(name string) map[string]any {
	fields := make([]map[string]any, 0, len(c.order))
	for _, f := range c.order {
		fields = append(fields, map[string]any{
			"name": f, "type": c.fields[f], "facet": false, "optional": false, "index": true,
			"sort": c.fields[f] != "string", "infix": false, "locale": "",
		})
	}
	return map[string]any{
		"name": name, "fields": fields, "default_sorting_field": c.sortDef,
		"created_at": c.created, "enable_nested_fields": false,
		"symbols_to_index": []string{}, "token_separators": []string{},
	}
}

func (c *collection) response(name string) map[string]any {
	out := c.describe(name)
	out["num_documents"] = len(c.docs)
	return out
}

func (s *Server) listCollections(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for name, c := range s.collections {
		out = append(out, c.response(name))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCollection(w http.ResponseWriter, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collections[name]
	if !ok {
		message(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, c.response(name))
}

func (s *Server) deleteCollection(w http.ResponseWriter, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collections[name]
	if !ok {
		message(w, http.StatusNotFound, "Not Found")
		return
	}
	resp := c.response(name)
	delete(s.collections, name)
	writeJSON(w, http.StatusOK, resp)
}

type importResult struct {
	Success  bool   `json:"success"`
	Error    string `json:"error,omitempty"`
	Document string `json:"document,omitempty"`
	Code     int    `json:"code,omitempty"`
	ID       string `json:"id,omitempty"`
}

func (s *Server) importDocuments(w http.ResponseWriter, r *http.Request, name string) {
	action := r.URL.Query().Get("action")
	switch action {
	case "":
		action = "create"
	case "create", "upsert", "update", "emplace":
	default:
		message(w, http.StatusBadRequest, "Parameter `action` must be one of: create, upsert, update, emplace.")
		return
	}
	returnID := r.URL.Query().Get("return_id") == "true"
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collections[name]
	if !ok {
		message(w, http.StatusNotFound, "Collection not found")
		return
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		res := c.importOne(line, action, s.reject)
		if !res.Success {
			res.Document = line
		} else if !returnID {
			res.ID = ""
		}
		_ = enc.Encode(res)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

func (c *collection) importOne(line, action string, reject func(map[string]any) (int, string, bool)) importResult {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return importResult{Error: "Bad JSON.", Code: 400}
	}
	id, hasID := doc["id"].(string)
	if _, present := doc["id"]; present && !hasID {
		return importResult{Error: "Document's `id` field should be a string.", Code: 400}
	}
	if !hasID {
		if action == "update" {
			return importResult{Error: "For update, the `id` key must be provided.", Code: 400}
		}
		id = strconv.Itoa(len(c.docs))
		doc["id"] = id
	}
	existing, exists := c.docs[id]
	switch {
	case action == "create" && exists:
		return importResult{Error: fmt.Sprintf("A document with id %s already exists.", id), Code: 409}
	case action == "update" && !exists:
		return importResult{Error: fmt.Sprintf("Could not find a document with id: %s", id), Code: 404}
	}
	if (action == "update" || action == "emplace") && exists {
		merged := make(map[string]any, len(existing))
		for k, v := range existing {
			merged[k] = v
		}
		for k, v := range doc {
			merged[k] = v
		}
		doc = merged
	}
	for _, f := range c.order {
		v, ok := doc[f]
		if !ok {
			return importResult{Error: fmt.Sprintf("Field `%s` has been declared in the schema, but is not found in the document.", f), Code: 400}
		}
		if msg := checkType(f, c.fields[f], v); msg != "" {
			return importResult{Error: msg, Code: 400}
		}
	}
	if reject != nil {
		if code, msg, bad := reject(doc); bad {
			return importResult{Error: msg, Code: code}
		}
	}
	c.docs[id] = doc
	return importResult{Success: true, ID: id}
}

func checkType(field, typ string, v any) string {
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Sprintf("Field `%s` must be a string.", field)
		}
	case "int32", "int64":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return fmt.Sprintf("Field `%s` must be an %s.", field, typ)
		}
	case "float":
		n, ok := v.(json.Number)
		if _, err := n.Float64(); !ok || err != nil {
			return fmt.Sprintf("Field `%s` must be a float.", field)
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("Field `%s` must be a bool.", field)
		}
	}
	return ""
}

// tokens follows Typesense's default tokenizer: split on whitespace, remove
// special characters, lower-case. originals keeps each token's text.
func tokens(s string) (norm, originals []string) {
	for _, w := range strings.Fields(s) {
		n := strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				return unicode.ToLower(r)
			}
			return -1
		}, w)
		if n != "" {
			norm = append(norm, n)
			originals = append(originals, w)
		}
	}
	return norm, originals
}

type filterClause struct {
	field  string
	values []string
}

// parseFilter accepts the subset of filter_by this fake supports: clauses
// `field:=value`, `field:=[v1,v2]` (also with `:` for string fields),
// values optionally in backticks, joined by &&.
func parseFilter(expr string, c *collection) ([]filterClause, int, string) {
	var out []filterClause
	if strings.TrimSpace(expr) == "" {
		return nil, 0, ""
	}
	for _, part := range splitOutsideBackticks(expr, "&&") {
		part = strings.TrimSpace(part)
		i := strings.Index(part, ":")
		if i <= 0 {
			return nil, http.StatusBadRequest, "Could not parse the filter query."
		}
		field := strings.TrimSpace(part[:i])
		rest := strings.TrimSpace(part[i+1:])
		rest = strings.TrimPrefix(rest, "=")
		rest = strings.TrimSpace(rest)
		if _, ok := c.fields[field]; !ok && field != "id" {
			return nil, http.StatusNotFound, fmt.Sprintf("Could not find a filter field named `%s` in the schema.", field)
		}
		var vals []string
		if strings.HasPrefix(rest, "[") {
			if !strings.HasSuffix(rest, "]") {
				return nil, http.StatusBadRequest, "Could not parse the filter query."
			}
			for _, v := range splitOutsideBackticks(rest[1:len(rest)-1], ",") {
				vals = append(vals, unquote(strings.TrimSpace(v)))
			}
		} else {
			vals = []string{unquote(rest)}
		}
		if len(vals) == 0 || slices.Contains(vals, "") {
			return nil, http.StatusBadRequest, "Could not parse the filter query."
		}
		out = append(out, filterClause{field: field, values: vals})
	}
	return out, 0, ""
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '`' && v[len(v)-1] == '`' {
		return v[1 : len(v)-1]
	}
	return v
}

func splitOutsideBackticks(s, sep string) []string {
	var out []string
	in := false
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			in = !in
			continue
		}
		if !in && strings.HasPrefix(s[i:], sep) {
			out = append(out, s[start:i])
			start = i + len(sep)
			i += len(sep) - 1
		}
	}
	return append(out, s[start:])
}

func (f filterClause) match(doc map[string]any) bool {
	var v string
	switch x := doc[f.field].(type) {
	case string:
		v = x
	case json.Number:
		v = x.String()
	default:
		v = fmt.Sprint(x)
	}
	return slices.Contains(f.values, v)
}

type sortKey struct {
	field string
	desc  bool
}

type scored struct {
	doc       map[string]any
	score     int64
	matched   []string
	highlight string
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, name string) {
	p := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collections[name]
	if !ok {
		message(w, http.StatusNotFound, "Not found.")
		return
	}
	if !p.Has("q") {
		message(w, http.StatusBadRequest, "Parameter `q` is required.")
		return
	}
	queryBy := strings.TrimSpace(p.Get("query_by"))
	if queryBy == "" && p.Get("q") != "*" {
		message(w, http.StatusBadRequest, "Parameter `query_by` is required.")
		return
	}
	var fields []string
	for _, f := range strings.Split(queryBy, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if c.fields[f] != "string" {
			message(w, http.StatusBadRequest, fmt.Sprintf("Could not find a field named `%s` in the schema.", f))
			return
		}
		fields = append(fields, f)
	}
	filters, code, msg := parseFilter(p.Get("filter_by"), c)
	if code != 0 {
		message(w, code, msg)
		return
	}
	perPage, page := 10, 1
	if v := p.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			message(w, http.StatusBadRequest, "Parameter `per_page` must be an unsigned integer.")
			return
		}
		if n > 250 {
			message(w, http.StatusUnprocessableEntity, "Only upto 250 hits can be fetched per page.")
			return
		}
		perPage = n
	}
	if v := p.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			message(w, http.StatusBadRequest, "Parameter `page` must be an unsigned integer.")
			return
		}
		page = n
	}
	sorts, code, msg := parseSort(p.Get("sort_by"), c)
	if code != 0 {
		message(w, code, msg)
		return
	}
	prefix := p.Get("prefix") != "false"
	startTag, endTag := "<mark>", "</mark>"
	if p.Has("highlight_start_tag") {
		startTag = p.Get("highlight_start_tag")
	}
	if p.Has("highlight_end_tag") {
		endTag = p.Get("highlight_end_tag")
	}
	affix := 4
	if v := p.Get("highlight_affix_num_tokens"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			affix = n
		}
	}

	q := strings.TrimSpace(p.Get("q"))
	qTokens, _ := tokens(q)
	var hits []scored
	for _, doc := range c.docs {
		if !matchAll(filters, doc) {
			continue
		}
		if q == "*" {
			hits = append(hits, scored{doc: doc})
			continue
		}
		if len(qTokens) == 0 {
			continue
		}
		for _, f := range fields {
			text, _ := doc[f].(string)
			if sc, matched, hl, ok := matchText(text, qTokens, prefix, startTag, endTag, affix); ok {
				hits = append(hits, scored{doc: doc, score: sc, matched: matched, highlight: hl})
				break
			}
		}
	}
	slices.SortStableFunc(hits, func(a, b scored) int { return compareHits(a, b, sorts) })
	found := len(hits)
	from := min((page-1)*perPage, found)
	to := min(from+perPage, found)
	outHits := make([]map[string]any, 0, to-from)
	for _, h := range hits[from:to] {
		hit := map[string]any{"document": h.doc, "text_match": h.score, "highlights": []any{}, "highlight": map[string]any{}}
		if q != "*" && len(fields) > 0 {
			matched := h.matched
			if matched == nil {
				matched = []string{}
			}
			hit["highlights"] = []any{map[string]any{"field": fields[0], "snippet": h.highlight, "matched_tokens": matched}}
			hit["highlight"] = map[string]any{fields[0]: map[string]any{"snippet": h.highlight, "matched_tokens": matched}}
		}
		outHits = append(outHits, hit)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"facet_counts": []any{}, "found": found, "out_of": len(c.docs), "page": page,
		"request_params": map[string]any{"collection_name": name, "per_page": perPage, "q": p.Get("q")},
		"search_cutoff":  false, "search_time_ms": 0, "hits": outHits,
	})
}

func matchAll(filters []filterClause, doc map[string]any) bool {
	for _, f := range filters {
		if !f.match(doc) {
			return false
		}
	}
	return true
}

// matchText requires every query token in text (the last as a prefix when
// prefix is on). The score counts exact matches above prefix matches, the
// highlight is a window of affix tokens around the matched ones.
func matchText(text string, q []string, prefix bool, startTag, endTag string, affix int) (int64, []string, string, bool) {
	norm, orig := tokens(text)
	hit := make([]bool, len(norm))
	var score int64
	for i, qt := range q {
		last := i == len(q)-1
		found, exact := false, false
		for j, t := range norm {
			if t == qt {
				hit[j], found, exact = true, true, true
			} else if last && prefix && strings.HasPrefix(t, qt) {
				hit[j], found = true, true
			}
		}
		if !found {
			return 0, nil, "", false
		}
		if exact {
			score += 2
		} else {
			score++
		}
	}
	first, lastHit := -1, -1
	var matched []string
	for j, h := range hit {
		if h {
			if first < 0 {
				first = j
			}
			lastHit = j
			matched = append(matched, orig[j])
		}
	}
	lo, hi := max(0, first-affix), min(len(orig), lastHit+affix+1)
	parts := make([]string, 0, hi-lo)
	for j := lo; j < hi; j++ {
		if hit[j] {
			parts = append(parts, startTag+orig[j]+endTag)
		} else {
			parts = append(parts, orig[j])
		}
	}
	return score << 32, matched, strings.Join(parts, " "), true
}

func parseSort(expr string, c *collection) ([]sortKey, int, string) {
	if strings.TrimSpace(expr) == "" {
		keys := []sortKey{{"_text_match", true}}
		if c.sortDef != "" {
			keys = append(keys, sortKey{c.sortDef, true})
		}
		return keys, 0, ""
	}
	var keys []sortKey
	for _, part := range strings.Split(expr, ",") {
		f, dir, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || (dir != "asc" && dir != "desc") {
			return nil, http.StatusBadRequest, "Order for sort_by should be either ASC or DESC."
		}
		if f != "_text_match" {
			t, ok := c.fields[f]
			if !ok {
				return nil, http.StatusNotFound, fmt.Sprintf("Could not find a field named `%s` in the schema for sorting.", f)
			}
			if t == "string" {
				return nil, http.StatusBadRequest, fmt.Sprintf("Could not find a field named `%s` in the schema for sorting.", f)
			}
		}
		keys = append(keys, sortKey{f, dir == "desc"})
	}
	if len(keys) > 3 {
		return nil, http.StatusBadRequest, "Only upto 3 sort_by fields can be specified."
	}
	return keys, 0, ""
}

func compareHits(a, b scored, keys []sortKey) int {
	for _, k := range keys {
		var x, y float64
		if k.field == "_text_match" {
			x, y = float64(a.score), float64(b.score)
		} else {
			x, y = number(a.doc[k.field]), number(b.doc[k.field])
		}
		if x == y {
			continue
		}
		if (x < y) != k.desc {
			return -1
		}
		return 1
	}
	// Typesense breaks remaining ties by insertion order, newest first; the
	// id is this fake's stand-in for a stable order.
	ai, _ := a.doc["id"].(string)
	bi, _ := b.doc["id"].(string)
	return strings.Compare(bi, ai)
}

func number(v any) float64 {
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		return f
	}
	return 0
}
