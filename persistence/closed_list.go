package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/domain/inbox"
)

// closedListSQL reads closed conversations of an inbox in a list's order,
// one statement per sort, with and without a position to start after. The
// filter mirrors inbox.Filter; ids compare bytewise (COLLATE "C"), as the
// inbox orders them. Recent and oldest walk the closed conversations'
// partial index (closed_activity_at is their last_activity_at); the wait
// and SLA orders, whose times a closed conversation does not have, sort
// the inbox's closed rows.
var closedListSQL = func() map[closedListKey]string {
	const head = `SELECT summary::text FROM conversations
WHERE account_id = $1 AND inbox_id = $2 AND status = 'closed'
	AND ($3::bool IS NULL OR addressed = $3)
	AND ($4::text = '' OR coalesce(assignee_id, '') = CASE WHEN $4 = 'none' THEN '' ELSE $4 END)
	AND ($5::text = '' OR channel = $5)
	AND ($6::text = '' OR $6 = ANY(tags))`
	out := map[closedListKey]string{}
	for _, sort := range []inbox.Sort{inbox.SortRecent, inbox.SortOldest, inbox.SortLongestWait, inbox.SortSLADue} {
		var k, order, after string
		switch sort {
		case inbox.SortRecent:
			k = "closed_activity_at"
			order = k + ` DESC, id COLLATE "C"`
			after = k + ` <= $8 AND (` + k + ` < $8 OR id COLLATE "C" > $9)`
		case inbox.SortOldest:
			k = "closed_activity_at"
			order = k + `, id COLLATE "C"`
			after = k + ` >= $8 AND (` + k + ` > $8 OR id COLLATE "C" > $9)`
		default:
			k = "waiting_since"
			if sort == inbox.SortSLADue {
				k = "(summary->>'sla_due_at')::timestamptz"
			}
			order = k + ` NULLS LAST, id COLLATE "C"`
			// $8 NULL: after a conversation without the time, among the
			// others without it.
			after = `CASE WHEN $8::timestamptz IS NULL THEN ` + k + ` IS NULL AND id COLLATE "C" > $9
		ELSE ` + k + ` > $8 OR ` + k + ` IS NULL OR (` + k + ` = $8 AND id COLLATE "C" > $9) END`
		}
		out[closedListKey{sort, false}] = head + "\nORDER BY " + order + "\nLIMIT $7"
		out[closedListKey{sort, true}] = head + "\n\tAND (" + after + ")\nORDER BY " + order + "\nLIMIT $7"
	}
	return out
}()

type closedListKey struct {
	sort  inbox.Sort
	after bool
}

// ClosedConversations reads what a list that includes closed conversations
// needs from the read model (q, from inbox.Query.ClosedQuery): the inbox's
// closed conversations in the list's order, as a JSON array of summaries,
// and how many there are. The read model is written in the journal's
// transaction, so it is as fresh as anything committed.
func (s *Store) ClosedConversations(ctx context.Context, accountID, inboxID string, q inbox.ClosedQuery) (json.RawMessage, int, error) {
	sql, ok := closedListSQL[closedListKey{q.Sort, q.After != nil}]
	if !ok {
		return nil, 0, fmt.Errorf("persistence: closed conversations of %s: sort %q: %w", inboxID, q.Sort, ErrInvalid)
	}
	args := []any{accountID, inboxID, q.Filter.Addressed, q.Filter.Assignee, string(q.Filter.Channel), q.Filter.Tag, q.Limit}
	if q.After != nil {
		var at *time.Time
		if q.After.Key != inbox.NoKey {
			t := time.Unix(0, q.After.Key).UTC()
			at = &t
		}
		args = append(args, at, q.After.ID)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("persistence: closed conversations of %s: %w", inboxID, err)
	}
	defer rows.Close()
	out := []byte{'['}
	n := 0
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return nil, 0, fmt.Errorf("persistence: closed conversations of %s: %w", inboxID, err)
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, raw...)
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("persistence: closed conversations of %s: %w", inboxID, err)
	}
	return append(out, ']'), n, nil
}
