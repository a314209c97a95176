package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/domain/inbox"
)

// closedListHead selects an inbox's closed conversations matching a list's
// filter (inbox.Filter's, statuses aside). ids compare bytewise (COLLATE
// "C"), as the inbox orders them.
const closedListHead = `SELECT summary::text` + closedListFrom

const closedListFrom = ` FROM conversations
WHERE account_id = $1 AND inbox_id = $2 AND status = 'closed'
	AND ($3::bool IS NULL OR addressed = $3)
	AND ($4::text = '' OR coalesce(assignee_id, '') = CASE WHEN $4 = 'none' THEN '' ELSE $4 END)
	AND ($5::text = '' OR channel = $5)
	AND ($6::text = '' OR $6 = ANY(tags))`

// closedListSQL returns the statement reading a page of closed
// conversations in sort's order after a position (nil: from the start),
// and the position's parameters it uses ($8 and $9: its time and id; $8
// alone: its id).
// Each form walks an index of closed rows in order (migrations 00014 and
// 00022), so a page costs the same however deep it is. Recent and oldest
// order by closed_activity_at (a closed row's last_activity_at).
// A closed conversation keeps waiting_since but never has an SLA due time
// (domain/conversation clears it on closing), so sla_due puts every closed
// one after those that have one, by id.
func closedListSQL(sort inbox.Sort, after *inbox.Position) (string, []any, error) {
	const limit = "\nLIMIT $7"
	if after == nil {
		switch sort {
		case inbox.SortRecent:
			return closedListHead + "\nORDER BY closed_activity_at DESC, id COLLATE \"C\"" + limit, nil, nil
		case inbox.SortOldest:
			return closedListHead + "\nORDER BY closed_activity_at, id COLLATE \"C\"" + limit, nil, nil
		case inbox.SortLongestWait:
			return closedListHead + "\nORDER BY waiting_since NULLS LAST, id COLLATE \"C\"" + limit, nil, nil
		case inbox.SortSLADue:
			return closedListHead + "\nORDER BY id COLLATE \"C\"" + limit, nil, nil
		}
		return "", nil, fmt.Errorf("sort %q: %w", sort, ErrInvalid)
	}
	at := time.Unix(0, after.Key).UTC()
	none := after.Key == inbox.NoKey
	switch {
	case sort == inbox.SortRecent:
		return closedListHead + `
	AND closed_activity_at <= $8 AND (closed_activity_at < $8 OR id COLLATE "C" > $9)
ORDER BY closed_activity_at DESC, id COLLATE "C"` + limit, []any{at, after.ID}, nil
	case sort == inbox.SortOldest:
		return closedListHead + `
	AND closed_activity_at >= $8 AND (closed_activity_at > $8 OR id COLLATE "C" > $9)
ORDER BY closed_activity_at, id COLLATE "C"` + limit, []any{at, after.ID}, nil
	case sort == inbox.SortLongestWait && none:
		// After one without the time: the rest of those, by id.
		return closedListHead + `
	AND waiting_since IS NULL AND id COLLATE "C" > $8
ORDER BY id COLLATE "C"` + limit, []any{after.ID}, nil
	case sort == inbox.SortSLADue && none:
		return closedListHead + `
	AND id COLLATE "C" > $8
ORDER BY id COLLATE "C"` + limit, []any{after.ID}, nil
	case sort == inbox.SortLongestWait:
		// Those waiting since later, then every one without the time: two
		// index ranges, so neither is scanned from the start.
		return `SELECT s FROM (
	(SELECT summary::text, waiting_since, id` + closedListFrom + `
		AND waiting_since >= $8 AND (waiting_since > $8 OR id COLLATE "C" > $9)
	ORDER BY waiting_since, id COLLATE "C"` + limit + `)
	UNION ALL
	(SELECT summary::text, waiting_since, id` + closedListFrom + `
		AND waiting_since IS NULL
	ORDER BY id COLLATE "C"` + limit + `)
) page(s, w, i)
ORDER BY w NULLS LAST, i COLLATE "C"` + limit, []any{at, after.ID}, nil
	case sort == inbox.SortSLADue:
		// After one with a due time: every closed one is still to come.
		return closedListSQL(sort, nil)
	}
	return "", nil, fmt.Errorf("sort %q: %w", sort, ErrInvalid)
}

// closedCountSQL counts an inbox's closed conversations matching f (its
// statuses aside), for a list's total. Only the filter's set parts are in
// the statement, so that the plan can use conversations_inbox_closed_count
// (migration 00024) for assignee and addressed. The inbox actor that asked
// has checked the inbox's account, as for countClosedSQL.
func closedCountSQL(inboxID string, f inbox.Filter) (string, []any) {
	sql, args := `SELECT count(*) FROM conversations WHERE inbox_id = $1 AND status = 'closed'`, []any{inboxID}
	and := func(cond string, arg any) {
		args = append(args, arg)
		sql += fmt.Sprintf(" AND "+cond, len(args))
	}
	switch f.Assignee {
	case "":
	case inbox.AssigneeNone:
		sql += " AND assignee_id IS NULL"
	default:
		and("assignee_id = $%d", f.Assignee)
	}
	if f.Addressed != nil {
		and("addressed = $%d", *f.Addressed)
	}
	if f.Channel != "" {
		and("channel = $%d", string(f.Channel))
	}
	if f.Tag != "" {
		and("$%d = ANY(tags)", f.Tag)
	}
	return sql, args
}

// ClosedConversations reads what a list that includes closed conversations
// needs from the read model (q, from inbox.Query.ClosedQuery): the inbox's
// closed conversations in the list's order, each summary's JSON, and, when
// q.Count asks, how many closed conversations match q's filter (0
// otherwise). Both statements go in one round trip. The read model is
// written in the journal's transaction, so it holds everything committed.
func (s *Store) ClosedConversations(ctx context.Context, accountID, inboxID string, q inbox.ClosedQuery) (rows []json.RawMessage, count int, err error) {
	sql, at, err := closedListSQL(q.Sort, q.After)
	if err != nil {
		return nil, 0, fmt.Errorf("persistence: closed conversations of %s: %w", inboxID, err)
	}
	filter := []any{accountID, inboxID, q.Filter.Addressed, q.Filter.Assignee, string(q.Filter.Channel), q.Filter.Tag}
	var b pgx.Batch
	b.Queue(sql, slices.Concat(filter, []any{q.Limit}, at)...).Query(func(r pgx.Rows) error {
		rows, err = pgx.CollectRows(r, pgx.RowTo[json.RawMessage])
		return err
	})
	if q.Count {
		sql, args := closedCountSQL(inboxID, q.Filter)
		b.Queue(sql, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&count) })
	}
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, 0, fmt.Errorf("persistence: closed conversations of %s: %w", inboxID, err)
	}
	return rows, count, nil
}
