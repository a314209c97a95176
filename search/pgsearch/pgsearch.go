// Package pgsearch is the embedded search backend: PostgreSQL full-text
// search over the search_messages table (persistence/migrations/00002), so a
// single node needs no server besides its database.
//
// The table is hash-partitioned by account, has a generated tsvector column
// ('simple' configuration) and one GIN index over (account_id, tsv) — see
// the migration for why, and why fastupdate is off. A search is always
// scoped to one account, so it touches one partition, and the index
// intersects the account's entry with the words' entries: a word common
// across all tenants costs only as much as the one tenant's matches.
// The inbox list is applied to those rows, ranking is ts_rank then recency,
// the last word of the query matches as a prefix, and the snippet is
// ts_headline.
package pgsearch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/search"
)

// Backend is the PostgreSQL search backend. It is safe for concurrent use.
type Backend struct {
	pool *pgxpool.Pool
}

var _ search.Backend = (*Backend)(nil)

// New returns a backend on pool, whose database must have the migrations
// applied. The pool stays the caller's: Close does not close it.
func New(pool *pgxpool.Pool) *Backend { return &Backend{pool: pool} }

// Close is a no-op; the pool belongs to the caller.
func (b *Backend) Close() {}

// upsertSQL writes a whole batch in one statement. Rows that are already
// identical are left alone: replaying a batch after a crash then costs no
// index churn, and the stored state is the same however often it is applied.
const upsertSQL = `
INSERT INTO search_messages (message_id, account_id, inbox_id, conversation_id, seq, direction, kind, body, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
ON CONFLICT (account_id, message_id) DO UPDATE SET
	inbox_id = excluded.inbox_id,
	conversation_id = excluded.conversation_id, seq = excluded.seq,
	direction = excluded.direction, kind = excluded.kind,
	body = excluded.body, created_at = excluded.created_at
WHERE (search_messages.inbox_id, search_messages.conversation_id,
	search_messages.seq, search_messages.direction, search_messages.kind,
	search_messages.body, search_messages.created_at)
	IS DISTINCT FROM
	(excluded.inbox_id, excluded.conversation_id,
	excluded.seq, excluded.direction, excluded.kind, excluded.body, excluded.created_at)`

// Upsert writes docs in one statement. If PostgreSQL rejects the data of the
// batch (a document it cannot store or index), it retries the documents one
// by one so that only the offending ones come back as DocErrors.
func (b *Backend) Upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	docs = dedupe(docs)
	if len(docs) == 0 {
		return nil, nil
	}
	err := b.upsert(ctx, docs)
	if err == nil {
		return nil, nil
	}
	if !isDataError(err) || len(docs) == 1 {
		if isDataError(err) {
			return []search.DocError{{ID: docs[0].ID, Reason: err.Error()}}, nil
		}
		return nil, fmt.Errorf("pgsearch: upsert %d documents: %w", len(docs), err)
	}
	var bad []search.DocError
	for _, d := range docs {
		if err := b.upsert(ctx, []search.Document{d}); err != nil {
			if !isDataError(err) {
				return nil, fmt.Errorf("pgsearch: upsert document %s: %w", d.ID, err)
			}
			bad = append(bad, search.DocError{ID: d.ID, Reason: err.Error()})
		}
	}
	return bad, nil
}

// upsert runs upsertSQL in a transaction that commits without waiting for
// its WAL flush: the index is derived from the journal, and the indexer's
// cursor moves past these documents only in a later transaction, whose
// commit record follows this one's in the WAL — so a crash can lose the
// documents only together with the cursor, and they are indexed again.
// Waiting for the flush would put one more fsync per batch beside the
// writer's, on the disk every acknowledgement waits for.
func (b *Backend) upsert(ctx context.Context, docs []search.Document) error {
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("SET LOCAL synchronous_commit = off")
	batch.Queue(upsertSQL, upsertArgs(docs)...)
	batch.Queue("COMMIT")
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err = conn.SendBatch(ctx, batch).Close(); err != nil && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = conn.Exec(ctx, "ROLLBACK")
	}
	return err
}

// dedupe keeps the last version of each document: one INSERT … ON CONFLICT
// cannot touch the same row twice.
func dedupe(docs []search.Document) []search.Document {
	type key struct{ account, id string }
	seen := make(map[key]int, len(docs))
	out := make([]search.Document, 0, len(docs))
	for _, d := range docs {
		k := key{d.AccountID, d.ID}
		if i, ok := seen[k]; ok {
			out[i] = d
			continue
		}
		seen[k] = len(out)
		out = append(out, d)
	}
	return out
}

func upsertArgs(docs []search.Document) []any {
	n := len(docs)
	ids, accounts, inboxes, convs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs := make([]int64, n)
	dirs, kinds, bodies := make([]string, n), make([]string, n), make([]string, n)
	created := make([]time.Time, n)
	for i, d := range docs {
		ids[i], accounts[i], inboxes[i], convs[i] = d.ID, d.AccountID, d.InboxID, d.ConversationID
		seqs[i], dirs[i], kinds[i], bodies[i], created[i] = d.Seq, d.Direction, d.Kind, d.Body, d.CreatedAt
	}
	return []any{ids, accounts, inboxes, convs, seqs, dirs, kinds, bodies, created}
}

// isDataError: PostgreSQL refused the values themselves (class 22, data
// exception, e.g. a NUL byte or invalid UTF-8; class 54, e.g. a body too long
// for a tsvector). Retrying the same document can never succeed; anything
// else (connection, timeout, lock) may.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "54")
}

// searchSQL. The tsquery is computed once (an InitPlan), so the GIN index can
// use it as an index condition together with the account. Every match must
// be ranked to find the best ones, so found comes with it at no extra cost;
// ts_headline, the expensive part, runs only on the page of hits.
const searchSQL = `
WITH q AS MATERIALIZED (
	SELECT plainto_tsquery('simple', $3) && to_tsquery('simple', $4) AS q
), m AS (
	SELECT message_id, conversation_id, inbox_id, seq, body, created_at,
		ts_rank(tsv, (SELECT q FROM q)) AS rank, count(*) OVER () AS found
	FROM search_messages
	WHERE account_id = $1 AND inbox_id = ANY($2) AND tsv @@ (SELECT q FROM q)
	ORDER BY rank DESC, created_at DESC, message_id
	LIMIT $5
)
SELECT message_id, conversation_id, inbox_id, seq, body, created_at, found,
	ts_headline('simple', translate(body, '<>', '‹›'), (SELECT q FROM q), $6)
FROM m
ORDER BY rank DESC, created_at DESC, message_id`

// headlineOptions: one excerpt of up to ~30 words around the best match (a
// short message comes back whole), delimited by search.MarkStart/MarkEnd.
const headlineOptions = "StartSel=" + search.MarkStart + ", StopSel=" + search.MarkEnd +
	", MaxWords=30, MinWords=12, ShortWord=0"

// Search runs q. Every word must match; the last one matches as a prefix, so
// results appear while the user is still typing it.
func (b *Backend) Search(ctx context.Context, q search.Query) (search.Result, error) {
	res := search.Result{Hits: []search.Hit{}}
	if q.Empty() {
		return res, nil
	}
	rows, err := b.pool.Query(ctx, searchSQL, searchArgs(q)...)
	if err != nil {
		return res, fmt.Errorf("pgsearch: search: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h search.Hit
		var found int64
		var snippet string
		if err := rows.Scan(&h.MessageID, &h.ConversationID, &h.InboxID, &h.Seq, &h.Body, &h.CreatedAt, &found, &snippet); err != nil {
			return search.Result{Hits: []search.Hit{}}, fmt.Errorf("pgsearch: search: scan: %w", err)
		}
		h.CreatedAt = h.CreatedAt.UTC()
		h.Snippet = search.MarkSnippet(restoreBrackets(snippet, h.Body))
		res.Found = int(found)
		res.Hits = append(res.Hits, h)
	}
	if err := rows.Err(); err != nil {
		return search.Result{Hits: []search.Hit{}}, fmt.Errorf("pgsearch: search: %w", err)
	}
	return res, nil
}

func searchArgs(q search.Query) []any {
	head, last := splitQuery(q.Text)
	return []any{q.AccountID, q.InboxIDs, head, last, q.EffectiveLimit(), headlineOptions}
}

// bracketsAsBlanks is the SQL's translate(body, '<>', '‹›'): the parser
// reads < and > as the edges of an HTML tag and drops what is between them,
// the single guillemets as blanks.
var bracketsAsBlanks = strings.NewReplacer("<", "‹", ">", "›")

// bracketsAsSpaces splits a query's words at < and >, as the indexed
// bodies are split.
var bracketsAsSpaces = strings.NewReplacer("<", " ", ">", " ")

// restoreBrackets gives a headline of the translated body its own
// characters back: the headline is one stretch of that text (plus the
// marks), rune for rune, so each of its runes is the body's rune at the same
// place. A body that had guillemets of its own keeps them too.
func restoreBrackets(headline, body string) string {
	if !strings.ContainsAny(body, "<>") {
		return headline
	}
	plain := strings.NewReplacer(search.MarkStart, "", search.MarkEnd, "").Replace(headline)
	translated := bracketsAsBlanks.Replace(body)
	at := strings.Index(translated, plain)
	if at < 0 {
		return headline // not expected: the guillemets then stay
	}
	own := []rune(body)[utf8.RuneCountInString(translated[:at]):]
	var b strings.Builder
	b.Grow(len(headline))
	k := 0
	for _, r := range headline {
		switch {
		case string(r) == search.MarkStart || string(r) == search.MarkEnd:
			b.WriteRune(r)
		case k < len(own):
			b.WriteRune(own[k])
			k++
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// splitQuery returns the words before the last one, for plainto_tsquery, and
// the last word as a quoted prefix term for to_tsquery. Both go through
// PostgreSQL's own parser, so the query is tokenized exactly like the
// indexed bodies (e-mail addresses, hyphenated words, numbers); quoting makes
// every character of the user's text literal.
func splitQuery(text string) (head, last string) {
	// As in the indexed bodies, < and > separate words.
	words := strings.Fields(bracketsAsSpaces.Replace(text))
	if len(words) == 0 {
		return "", ""
	}
	if len(words) > search.MaxWords {
		words = words[:search.MaxWords]
	}
	head = strings.Join(words[:len(words)-1], " ")
	w := words[len(words)-1]
	w = strings.ReplaceAll(w, `\`, `\\`)
	w = strings.ReplaceAll(w, `'`, `''`)
	return head, "'" + w + "':*"
}

// explain returns the plan of q's search statement (for the index test).
func (b *Backend) explain(ctx context.Context, q search.Query) (string, error) {
	rows, err := b.pool.Query(ctx, "EXPLAIN "+searchSQL, searchArgs(q)...)
	if err != nil {
		return "", fmt.Errorf("pgsearch: explain: %w", err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", fmt.Errorf("pgsearch: explain: %w", err)
		}
		plan.WriteString(line)
		plan.WriteByte('\n')
	}
	return plan.String(), rows.Err()
}
