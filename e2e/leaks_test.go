package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// With the database refusing connections, /readyz names the failed check
// and nothing more, and requests that need the database answer 503
// unavailable with a generic message: PostgreSQL's own words (hosts, users,
// database names, other requests' failures) stay in the log.
func TestDatabaseErrorsDoNotReachClients(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Leak")
	k := c.with(tn.key)
	k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages", obj{"contact": obj{"phone": "+14155550123"}, "body": "hi"})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pgtest.Server(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var db string
	if err := n.Store().Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	setConnections := func(allow bool) {
		t.Helper()
		q := "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " ALLOW_CONNECTIONS " + map[bool]string{true: "true", false: "false"}[allow]
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		if !allow {
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
				t.Fatal(err)
			}
		}
	}
	setConnections(false)
	defer setConnections(true) // before the node's cleanup stops it

	leaked := func(body []byte) bool {
		s := strings.ToLower(string(body))
		for _, w := range []string{"fatal", "sqlstate", "postgres", "connect", db, "pgx", "persistence:", "127.0.0.1"} {
			if strings.Contains(s, strings.ToLower(w)) {
				return true
			}
		}
		return false
	}
	var ready response
	poll.Until(t, 10*time.Second, "/readyz to report the database", func() bool {
		ready = c.do("GET", "/readyz", nil)
		return ready.Status == 503
	})
	r := ready.json(t)
	if r["status"] != "unavailable" || r["failed"] != "database" || leaked(ready.Body) {
		t.Errorf("/readyz with the database down: %s, want status unavailable, failed database, no detail", ready.Body)
	}

	// A new conversation needs the database (activation, commit): 503
	// unavailable, in general words.
	for i, req := range []struct{ method, path string }{
		{"POST", "/v1/inboxes/" + tn.inbox + "/messages"},
		{"GET", "/v1/inboxes"},
	} {
		var body any
		if req.method == "POST" {
			body = obj{"contact": obj{"phone": phoneN(100 + i)}, "body": "are you there?"}
		}
		res := k.do(req.method, req.path, body)
		checkErr(t, res, 503, "unavailable", req.method+" "+req.path)
		if leaked(res.Body) {
			t.Errorf("%s %s leaked internal detail: %s", req.method, req.path, res.Body)
		}
	}

	setConnections(true)
	poll.Until(t, 30*time.Second, "/readyz to recover", func() bool { return c.do("GET", "/readyz", nil).Status == 200 })
	if r := c.must(200, "GET", "/readyz", nil); r["status"] != "ok" {
		t.Errorf("/readyz after recovery: %v", r)
	}
}
