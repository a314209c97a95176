// Package search is the full-text index of messages: the small interface the
// indexer writes to and GET /v1/search reads from, and the types they share.
//
// Search is a consumer, never on the hot path (docs/architecture.md): the index is fed
// from committed journal entries by consumers/indexer, may lag behind, and is
// never read to build an inbox list. Backends: search/pgsearch (embedded, on
// PostgreSQL, the default) and search/typesense.
package search

import (
	"context"
	"fmt"
	"html"
	"strings"
	"time"
)

// Document is one indexed message or note. ID is the message id, unique
// across accounts; upserting the same ID again replaces the document, so
// replaying a batch is harmless.
type Document struct {
	ID             string
	AccountID      string
	InboxID        string
	ConversationID string
	Seq            int64
	Direction      string
	Kind           string
	Body           string
	CreatedAt      time.Time
}

// Query is one search, already authorized: AccountID is the caller's account
// and InboxIDs the inboxes the caller may read. Backends filter on both, so
// an empty InboxIDs matches nothing rather than everything.
type Query struct {
	AccountID string
	InboxIDs  []string
	Text      string
	// Limit is the number of hits wanted: 1..MaxLimit, 0 means DefaultLimit.
	Limit int
}

// Limits of Query.Limit, as the API states them for GET /v1/search.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// MaxWords is how many words of Query.Text backends use: every word must
// match, so more narrow nothing down, and a pasted essay should not cost a
// query plan with hundreds of terms.
const MaxWords = 32

// EffectiveLimit is q.Limit clamped to 1..MaxLimit, DefaultLimit when unset.
func (q Query) EffectiveLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultLimit
	case q.Limit > MaxLimit:
		return MaxLimit
	}
	return q.Limit
}

// Empty reports whether q can match nothing whatever the index holds, so a
// backend can answer without a round trip.
func (q Query) Empty() bool {
	return q.AccountID == "" || len(q.InboxIDs) == 0 || strings.TrimSpace(q.Text) == ""
}

// Hit is one matching message, as the API's hits show it. Snippet is HTML:
// the matching part of the body, escaped, with the matched words in
// <mark>…</mark>; Body is the raw text.
type Hit struct {
	ConversationID string    `json:"conversation_id"`
	InboxID        string    `json:"inbox_id"`
	MessageID      string    `json:"message_id"`
	Seq            int64     `json:"seq"`
	Body           string    `json:"body"`
	Snippet        string    `json:"snippet"`
	CreatedAt      time.Time `json:"created_at"`
}

// Result of a search: the best hits, most relevant first and newest first
// among equals, and how many documents matched in all.
type Result struct {
	Hits  []Hit `json:"hits"`
	Found int   `json:"found"`
}

// DocError is a document the backend refused for a reason that retrying will
// not fix (a poison document). The indexer records and skips it; any failure
// that may pass on a retry is returned as Upsert's error instead.
type DocError struct {
	ID     string
	Reason string
}

func (e DocError) Error() string { return fmt.Sprintf("document %s: %s", e.ID, e.Reason) }

// Backend is a search index.
type Backend interface {
	// Upsert writes docs, replacing documents with the same ID. A non-nil
	// error means the batch as a whole did not get in (backend down, timeout)
	// and should be retried; otherwise every document is indexed except those
	// listed as DocErrors.
	Upsert(ctx context.Context, docs []Document) ([]DocError, error)
	// Search runs q. An error means the backend could not answer.
	Search(ctx context.Context, q Query) (Result, error)
	// Close releases what the backend holds.
	Close()
}

// Backends ask for highlights between these two private-use characters
// rather than between HTML tags, because the engines do not escape the text
// around the tags; MarkSnippet then escapes the text and places the tags.
const (
	MarkStart = "\ue000"
	MarkEnd   = "\ue001"
)

// MarkSnippet turns a highlight delimited by MarkStart/MarkEnd into safe HTML
// with <mark> tags. Stray delimiters (a body may contain the characters
// itself) never produce unbalanced tags.
func MarkSnippet(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	open := false
	for len(s) > 0 {
		i := strings.IndexAny(s, MarkStart+MarkEnd)
		if i < 0 {
			b.WriteString(html.EscapeString(s))
			break
		}
		b.WriteString(html.EscapeString(s[:i]))
		if strings.HasPrefix(s[i:], MarkStart) {
			if !open {
				b.WriteString("<mark>")
				open = true
			}
			s = s[i+len(MarkStart):]
		} else {
			if open {
				b.WriteString("</mark>")
				open = false
			}
			s = s[i+len(MarkEnd):]
		}
	}
	if open {
		b.WriteString("</mark>")
	}
	return b.String()
}
