package loadtest

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// The first page of an inbox as an SQL-backed inbox would serve it from
// the conversations read model (persistence/migrations/00001_core.sql):
// the page the API's default list returns, and the counts beside it.
const (
	sqlFirstPage = `SELECT summary FROM conversations
WHERE inbox_id = $1 AND status <> 'closed'
ORDER BY last_activity_at DESC, id
LIMIT 50`
	sqlCounts = `SELECT
  count(*) FILTER (WHERE status = 'open'),
  count(*) FILTER (WHERE status = 'new'),
  count(*) FILTER (WHERE status = 'pending'),
  count(*) FILTER (WHERE status = 'closed'),
  count(*) FILTER (WHERE status <> 'closed' AND NOT addressed),
  count(*) FILTER (WHERE status <> 'closed' AND assignee_id IS NULL)
FROM conversations WHERE inbox_id = $1`
)

// sqlComparer holds one connection: the comparison is sequential, and one
// connection is what one request of an SQL-backed server would use.
type sqlComparer struct {
	conn *pgx.Conn
}

func openSQLComparer(ctx context.Context, databaseURL string) (*sqlComparer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("--compare-sql: connect to the database: %w", err)
	}
	// Fail before the run rather than after it if the read model is absent.
	if _, err := conn.Exec(ctx, `SELECT 1 FROM conversations LIMIT 0`); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("--compare-sql: the conversations read model is not there: %w", err)
	}
	return &sqlComparer{conn: conn}, nil
}

func (c *sqlComparer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.conn.Close(ctx)
}

// firstPage runs both queries and reads every row, as a server would
// before answering. It returns the number of conversations on the page.
func (c *sqlComparer) firstPage(ctx context.Context, inboxID string) (int, error) {
	rows, err := c.conn.Query(ctx, sqlFirstPage, inboxID)
	if err != nil {
		return 0, fmt.Errorf("page query: %w", err)
	}
	n := 0
	for rows.Next() {
		var summary []byte
		if err := rows.Scan(&summary); err != nil {
			rows.Close()
			return 0, fmt.Errorf("page query: scan: %w", err)
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("page query: %w", err)
	}
	var open, new_, pending, closed, unaddressed, unassigned int64
	if err := c.conn.QueryRow(ctx, sqlCounts, inboxID).Scan(&open, &new_, &pending, &closed, &unaddressed, &unassigned); err != nil {
		return 0, fmt.Errorf("counts query: %w", err)
	}
	return n, nil
}

// apiFirstPage loads the same page and counts through the API, reading
// the bodies in full but not decoding them (the SQL side does not decode
// the summaries either).
func (r *runner) apiFirstPage(ctx context.Context, in *inboxState) error {
	cred := in.replyCred()
	q := url.Values{"limit": {fmt.Sprint(pageLimit)}}.Encode()
	for _, path := range []string{
		"/v1/inboxes/" + url.PathEscape(in.id) + "/conversations?" + q,
		"/v1/inboxes/" + url.PathEscape(in.id) + "/counts",
	} {
		if _, err := r.api.do(ctx, "GET", path, cred, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// compareLoop times the first page both ways, round robin over the
// inboxes, throughout the measured window. The order of the two sides
// alternates so neither always runs on a warmer cache.
func (r *runner) compareLoop(ctx context.Context, c *sqlComparer) {
	if err := (realClock{}).SleepUntil(ctx, r.measureStart); err != nil {
		return
	}
	apiSide := func(in *inboxState) {
		t := time.Now()
		if err := r.apiFirstPage(ctx, in); err != nil {
			if ctx.Err() == nil {
				r.fail("compare_api", err)
			}
			return
		}
		r.apiPage.Record(time.Since(t))
	}
	sqlSide := func(in *inboxState) {
		t := time.Now()
		qctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		defer cancel()
		if _, err := c.firstPage(qctx, in.id); err != nil {
			if ctx.Err() == nil {
				r.fail("compare_sql", err)
			}
			return
		}
		r.sqlPage.Record(time.Since(t))
	}
	for i := 0; time.Now().Before(r.end) && ctx.Err() == nil; i++ {
		in := r.inboxes[i%len(r.inboxes)]
		if i%2 == 0 {
			apiSide(in)
			sqlSide(in)
		} else {
			sqlSide(in)
			apiSide(in)
		}
		if err := (realClock{}).SleepUntil(ctx, time.Now().Add(r.cfg.CompareInterval)); err != nil {
			return
		}
	}
}
