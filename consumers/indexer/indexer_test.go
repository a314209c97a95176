package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/search"
	"github.com/switchboard-dev/switchboard/search/pgsearch"
	"github.com/switchboard-dev/switchboard/search/searchtest"
	"github.com/switchboard-dev/switchboard/search/typesense"
	"github.com/switchboard-dev/switchboard/search/typesensefake"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testConfig keeps the tests quick: short polls and backoffs.
var testConfig = Config{
	BatchSize:     7, // small, so that tests cross several batches
	PollInterval:  200 * time.Millisecond,
	LockRetry:     50 * time.Millisecond,
	BackoffMin:    5 * time.Millisecond,
	BackoffMax:    80 * time.Millisecond,
	UpsertTimeout: 2 * time.Second,
	StatsInterval: 20 * time.Millisecond,
}

type env struct {
	t    *testing.T
	pool *pgxpool.Pool
	url  string
}

func newEnv(t *testing.T) *env {
	pool, url := searchtest.NewPool(t)
	return &env{t: t, pool: pool, url: url}
}

// row is one journal row to commit.
type row struct {
	conv, account, inbox string
	version              int64
	ev                   conversation.Event
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func itemID(conv string, version int64) string { return fmt.Sprintf("msg_%s_%d", conv, version) }

func message(conv, account, inbox string, version int64, body string) row {
	return row{conv: conv, account: account, inbox: inbox, version: version, ev: conversation.Event{
		Type: conversation.EventInbound, Version: version, At: t0,
		Item: &conversation.Item{ID: itemID(conv, version), Seq: version, Direction: conversation.Inbound,
			Kind: conversation.KindMessage, Channel: conversation.ChannelSMS, Body: body, CreatedAt: t0.Add(time.Duration(version) * time.Second)},
	}}
}

func note(conv, account, inbox string, version int64, body string) row {
	r := message(conv, account, inbox, version, body)
	r.ev.Type, r.ev.Item.Direction, r.ev.Item.Kind = conversation.EventOutbound, conversation.Outbound, conversation.KindNote
	return r
}

func call(conv, account, inbox string, version int64, body string) row {
	r := message(conv, account, inbox, version, body)
	r.ev.Type, r.ev.Item.Kind, r.ev.Item.CallID = conversation.EventCall, conversation.KindCall, "call_1"
	return r
}

func update(conv, account, inbox string, version int64) row {
	st := conversation.StatusClosed
	return row{conv: conv, account: account, inbox: inbox, version: version, ev: conversation.Event{
		Type: conversation.EventUpdate, Version: version, At: t0, Change: &conversation.Change{Status: &st},
	}}
}

const insertJournal = `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)`

func insertRows(ctx context.Context, tx pgx.Tx, rows []row) error {
	for _, r := range rows {
		ev, err := json.Marshal(r.ev)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertJournal, r.conv, r.version, r.account, r.inbox, string(r.ev.Type), string(ev)); err != nil {
			return err
		}
	}
	return nil
}

// commit appends rows in one transaction that notifies, as the journal
// writer does.
func (e *env) commit(rows ...row) {
	e.t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if err := insertRows(ctx, tx, rows); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "NOTIFY "+journal.Channel)
		return err
	})
	if err != nil {
		e.t.Fatalf("commit: %v", err)
	}
}

// logBuffer collects the indexer's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type running struct {
	ix   *Indexer
	reg  *prometheus.Registry
	logs *logBuffer
	stop func()
}

func (e *env) start(b search.Backend, cfg Config) *running {
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	ix := New(e.pool, listentest.Run(e.t, e.pool), b, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return &running{ix: ix, reg: reg, logs: logs, stop: stop}
}

func found(t *testing.T, b search.Backend, account string, inboxes []string, text string) []string {
	t.Helper()
	r, err := b.Search(context.Background(), search.Query{AccountID: account, InboxIDs: inboxes, Text: text, Limit: 100})
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	var ids []string
	for _, h := range r.Hits {
		ids = append(ids, h.MessageID)
	}
	slices.Sort(ids)
	return ids
}

// recorder wraps a backend and records the documents it accepted.
type recorder struct {
	search.Backend
	mu    sync.Mutex
	ids   []string
	after func()
}

func (r *recorder) Upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	bad, err := r.Backend.Upsert(ctx, docs)
	if err == nil {
		r.mu.Lock()
		for _, d := range docs {
			r.ids = append(r.ids, d.ID)
		}
		after := r.after
		r.mu.Unlock()
		if after != nil {
			after()
		}
	}
	return bad, err
}

func (r *recorder) accepted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// caughtUp reports whether a measurement that began after the call shows
// no backlog and no lag (earlier ones may predate the test's commits).
func caughtUp(ix *Indexer) func() bool {
	n := ix.measurements.Load()
	return func() bool {
		s := ix.Stats()
		return ix.measurements.Load() >= n+2 && s.Backlog == 0 && s.LagMs == 0
	}
}

func (e *env) cursor() journal.Cursor {
	e.t.Helper()
	c, err := journal.LoadCursor(context.Background(), e.pool, DefaultCursorName)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestIndexesEveryCommittedMessageScoped(t *testing.T) {
	e := newEnv(t)
	be := pgsearch.New(e.pool)
	// Old messages, committed before the indexer ever ran.
	e.commit(
		message("c1", "acc_a", "ib_a1", 1, "old alpha message"),
		message("c2", "acc_a", "ib_a2", 1, "old bravo message"),
		message("c3", "acc_b", "ib_b1", 1, "old alpha from b"),
	)
	r := e.start(be, testConfig)
	// New ones, of every kind, while it runs.
	e.commit(
		message("c1", "acc_a", "ib_a1", 2, "new charlie message"),
		update("c1", "acc_a", "ib_a1", 3),
		call("c1", "acc_a", "ib_a1", 4, "ringing delta"),
		note("c1", "acc_a", "ib_a1", 5, "internal echo note"),
	)
	for i := range 20 {
		e.commit(message(fmt.Sprintf("bulk%d", i), "acc_a", "ib_a2", 1, fmt.Sprintf("bulk foxtrot %d", i)))
	}
	poll.Until(t, 10*time.Second, "indexing", func() bool { return r.ix.Stats().Indexed >= 25 })
	poll.Until(t, 10*time.Second, "indexing (caught up)", caughtUp(r.ix))

	a := []string{"ib_a1", "ib_a2"}
	cases := []struct {
		account string
		inboxes []string
		text    string
		want    []string
	}{
		{"acc_a", a, "alpha", []string{itemID("c1", 1)}},
		{"acc_b", []string{"ib_b1"}, "alpha", []string{itemID("c3", 1)}},
		{"acc_b", a, "alpha", nil},                 // another account's inbox ids: nothing
		{"acc_a", []string{"ib_b1"}, "alpha", nil}, // another account's inbox in own scope: nothing
		{"acc_a", []string{"ib_a1"}, "bravo", nil}, // inbox list respected
		{"acc_a", a, "bravo", []string{itemID("c2", 1)}},
		{"acc_a", a, "charlie", []string{itemID("c1", 2)}},
		{"acc_a", a, "delta", nil}, // calls are not indexed
		{"acc_a", a, "echo", []string{itemID("c1", 5)}},
	}
	for _, c := range cases {
		got := found(t, be, c.account, c.inboxes, c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %v %q: got %v want %v", c.account, c.inboxes, c.text, got, c.want)
		}
	}
	if got := found(t, be, "acc_a", a, "foxtrot"); len(got) != 20 {
		t.Errorf("bulk: %d", len(got))
	}
	if v := testutil.ToFloat64(r.ix.m.indexed); v != 25 {
		t.Errorf("indexed_documents_total %v", v)
	}
	if v := testutil.ToFloat64(r.ix.m.backlog); v != 0 {
		t.Errorf("index_backlog %v", v)
	}
	if n, err := testutil.GatherAndCount(r.reg, "switchboard_index_lag_seconds", "switchboard_index_backlog", "switchboard_indexed_documents_total", "switchboard_index_errors_total"); err != nil || n != 6 {
		t.Errorf("registered metrics: %d %v", n, err)
	}
}

// TestOutOfOrderCommitIsNeverSkipped is the outbox trap: a transaction that
// got its id first commits last. A cursor over "the highest id seen" would
// pass it for ever; this one waits for it.
func TestOutOfOrderCommitIsNeverSkipped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	be := pgsearch.New(e.pool)
	r := e.start(be, testConfig)
	in := []string{"ib"}

	// The early transaction writes first (taking the smaller txid)...
	early, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback(ctx)
	if err := insertRows(ctx, early, []row{message("early", "acc", "ib", 1, "early golf")}); err != nil {
		t.Fatal(err)
	}
	var earlyTx uint64
	if err := early.QueryRow(ctx, "SELECT pg_current_xact_id()::text::int8").Scan(&earlyTx); err != nil {
		t.Fatal(err)
	}
	// ...the late one writes after it and commits first.
	e.commit(message("late", "acc", "ib", 1, "late golf"))
	var lateTx uint64
	if err := e.pool.QueryRow(ctx, "SELECT txid::text::int8 FROM journal WHERE conversation_id = 'late'").Scan(&lateTx); err != nil {
		t.Fatal(err)
	}
	if earlyTx >= lateTx {
		t.Fatalf("test setup: early txid %d should be below late txid %d", earlyTx, lateTx)
	}

	// The indexer is woken by the late commit and keeps looking; give it
	// several rounds. The late row is committed but above the horizon.
	start := r.ix.rounds.Load()
	poll.Until(t, 5*time.Second, "indexer rounds", func() bool { return r.ix.rounds.Load() >= start+4 })
	if got := found(t, be, "acc", in, "golf"); len(got) != 0 {
		t.Fatalf("indexed past an open earlier transaction: %v", got)
	}
	if c := e.cursor(); c.TxID >= earlyTx {
		t.Fatalf("cursor %s moved past the open transaction %d", c, earlyTx)
	}
	poll.Until(t, 5*time.Second, "backlog of the late entry", func() bool { return r.ix.Stats().Backlog == 1 })

	// The early transaction commits at last: both are indexed.
	if _, err := early.Exec(ctx, "NOTIFY "+journal.Channel); err != nil {
		t.Fatal(err)
	}
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "both indexed", func() bool { return len(found(t, be, "acc", in, "golf")) == 2 })
	poll.Until(t, 5*time.Second, "caught up", caughtUp(r.ix))
	if c := e.cursor(); c.TxID != lateTx || c.ConversationID != "late" {
		t.Fatalf("cursor %s, want at the late entry", c)
	}
}

func TestRestartResumesFromCursor(t *testing.T) {
	e := newEnv(t)
	be := pgsearch.New(e.pool)
	in := []string{"ib"}
	batch := func(from, to int) {
		for i := from; i < to; i++ {
			e.commit(message(fmt.Sprintf("r%d", i), "acc", "ib", 1, fmt.Sprintf("hotel %d", i)))
		}
	}
	batch(0, 30)
	rec1 := &recorder{Backend: be}
	r1 := e.start(rec1, testConfig)
	poll.Until(t, 10*time.Second, "first run", func() bool { return len(rec1.accepted()) >= 30 })
	poll.Until(t, 10*time.Second, "first run caught up", caughtUp(r1.ix))
	r1.stop()
	if n := len(rec1.accepted()); n != 30 {
		t.Fatalf("first run sent %d documents", n)
	}

	// A clean restart picks up exactly where the first run stopped.
	batch(30, 50)
	rec2 := &recorder{Backend: be}
	r2 := e.start(rec2, testConfig)
	poll.Until(t, 10*time.Second, "second run", func() bool { return len(rec2.accepted()) >= 20 })
	poll.Until(t, 10*time.Second, "second run (caught up)", caughtUp(r2.ix))
	r2.stop()
	for _, id := range rec2.accepted() {
		var i int
		if _, err := fmt.Sscanf(id, "msg_r%d_1", &i); err != nil || i < 30 {
			t.Fatalf("second run re-sent %s", id)
		}
	}

	// A crash after the backend accepted a batch but before the cursor was
	// saved: the next run sends that batch again, and since upserts are
	// idempotent the index ends up in the same state.
	batch(50, 60)
	before := e.cursor()
	ctx3, crash := context.WithCancel(context.Background())
	rec3 := &recorder{Backend: be, after: crash}
	ix3 := New(e.pool, listentest.Run(t, e.pool), rec3, testConfig, nil, nil)
	if err := ix3.Run(ctx3); err != nil {
		t.Fatal(err)
	}
	crashed := rec3.accepted()
	if len(crashed) == 0 || e.cursor() != before {
		t.Fatalf("crash run: sent %d, cursor %s (was %s)", len(crashed), e.cursor(), before)
	}
	rec4 := &recorder{Backend: be}
	r4 := e.start(rec4, testConfig)
	poll.Until(t, 10*time.Second, "after crash", func() bool { return len(rec4.accepted()) >= 10 })
	poll.Until(t, 10*time.Second, "after crash (caught up)", caughtUp(r4.ix))
	if !slices.Equal(rec4.accepted()[:len(crashed)], crashed) {
		t.Fatalf("after the crash, the unsaved batch should be sent again first: %v vs %v", rec4.accepted(), crashed)
	}

	got := found(t, be, "acc", in, "hotel")
	if len(got) != 60 {
		t.Fatalf("index holds %d messages, want 60", len(got))
	}
	var rows, distinct int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT message_id) FROM search_messages`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 60 || distinct != 60 {
		t.Fatalf("search_messages: %d rows, %d distinct", rows, distinct)
	}
	for i := range 60 {
		var body string
		if err := e.pool.QueryRow(context.Background(), `SELECT body FROM search_messages WHERE message_id = $1`,
			itemID(fmt.Sprintf("r%d", i), 1)).Scan(&body); err != nil || body != fmt.Sprintf("hotel %d", i) {
			t.Fatalf("message %d: %q %v", i, body, err)
		}
	}
}

// TestLostSessionResumes kills the active indexer's database connection
// (as a network cut or a server restart would): it reconnects, takes the
// lock again and goes on.
func TestLostSessionResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	be := pgsearch.New(e.pool)
	r := e.start(be, testConfig)
	e.commit(message("s1", "acc", "ib", 1, "india one"))
	poll.Until(t, 5*time.Second, "first", func() bool { return r.ix.Stats().Indexed >= 1 })
	var killed bool
	if err := e.pool.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate: %v %v", killed, err)
	}
	e.commit(message("s2", "acc", "ib", 1, "india two"))
	poll.Until(t, 10*time.Second, "after reconnect", func() bool { return len(found(t, be, "acc", []string{"ib"}, "india")) == 2 })
	if v := testutil.ToFloat64(r.ix.m.errors.WithLabelValues("database")); v < 1 {
		t.Fatalf("database errors %v", v)
	}
}

func newTypesense(t *testing.T) (*typesensefake.Server, *typesense.Backend) {
	fake := typesensefake.New("key")
	t.Cleanup(fake.Close)
	b, err := typesense.New(typesense.Config{URL: fake.URL(), APIKey: "key", Collection: "messages", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return fake, b
}

func TestBackendOutageBacksOffAndCatchesUp(t *testing.T) {
	e := newEnv(t)
	fake, be := newTypesense(t)
	r := e.start(be, testConfig)
	in := []string{"ib"}
	n := 0
	send := func(k int) {
		for range k {
			e.commit(message(fmt.Sprintf("o%d", n), "acc", "ib", 1, fmt.Sprintf("juliet %d", n)))
			n++
		}
	}
	send(10)
	poll.Until(t, 10*time.Second, "healthy indexing", func() bool { return fake.Count("messages") == 10 })

	// Outage 1: the server answers 503. Commits go on (the journal never
	// waits for the index); the indexer retries and its backlog grows.
	fake.SetUnavailable(true)
	send(15)
	poll.Until(t, 10*time.Second, "retries under 503", func() bool {
		s := r.ix.Stats()
		return fake.Failures() >= 3 && s.LastError != "" && s.Backlog > 0 && s.LagMs > 0
	})
	if c := fake.Count("messages"); c != 10 {
		t.Fatalf("stored %d during the outage", c)
	}

	// Outage 2: connections dropped without an answer.
	fake.SetUnavailable(false)
	fake.SetDropConnections(true)
	failures := fake.Failures()
	send(15)
	poll.Until(t, 10*time.Second, "retries with dropped connections", func() bool { return fake.Failures() >= failures+3 })

	// The server comes back: everything gets in, nothing is lost.
	fake.SetDropConnections(false)
	poll.Until(t, 10*time.Second, "catch-up", func() bool { return fake.Count("messages") == 40 })
	poll.Until(t, 10*time.Second, "catch-up (caught up)", caughtUp(r.ix))
	if got := found(t, be, "acc", in, "juliet"); len(got) != 40 {
		t.Fatalf("searchable after the outage: %d of 40", len(got))
	}
	poll.Until(t, 5*time.Second, "error cleared", func() bool { return r.ix.Stats().LastError == "" })
	if v := testutil.ToFloat64(r.ix.m.errors.WithLabelValues("backend")); v < 6 {
		t.Fatalf("index_errors_total{kind=backend} %v", v)
	}
	if !strings.Contains(r.logs.String(), "search backend failed; batch kept and retried") {
		t.Fatalf("no retry log:\n%s", r.logs.String())
	}
}

func TestPoisonDocumentsAreRecordedAndSkipped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fake, be := newTypesense(t)
	fake.RejectDocuments(func(d map[string]any) (int, string, bool) {
		body, _ := d["body"].(string)
		return 400, "Document is malformed.", strings.Contains(body, "poison")
	})
	r := e.start(be, testConfig)
	e.commit(
		message("p1", "acc", "ib", 1, "kilo fine"),
		message("p2", "acc", "ib", 1, "kilo poison"),
		row{conv: "p3", account: "acc", inbox: "ib", version: 1, ev: conversation.Event{Type: conversation.EventInbound, Version: 1}},
		message("p4", "acc", "ib", 1, "kilo also fine"),
	)
	// An event whose item is not an object at all.
	if _, err := e.pool.Exec(ctx, insertJournal, "p5", int64(1), "acc", "ib", "inbound_message", `{"type":"inbound_message","item":"oops"}`); err != nil {
		t.Fatal(err)
	}
	e.commit(message("p6", "acc", "ib", 1, "kilo after"))
	poll.Until(t, 10*time.Second, "indexing past poison", func() bool { return r.ix.Stats().Skipped == 3 })
	poll.Until(t, 10*time.Second, "indexing past poison (caught up)", caughtUp(r.ix))

	if got := found(t, be, "acc", []string{"ib"}, "kilo"); !slices.Equal(got, []string{itemID("p1", 1), itemID("p4", 1), itemID("p6", 1)}) {
		t.Fatalf("indexed %v", got)
	}
	rows, err := e.pool.Query(ctx, `SELECT conversation_id, message_id, reason FROM search_failures ORDER BY conversation_id`)
	if err != nil {
		t.Fatal(err)
	}
	var failures []string
	for rows.Next() {
		var conv, id, reason string
		if err := rows.Scan(&conv, &id, &reason); err != nil {
			t.Fatal(err)
		}
		failures = append(failures, conv+"|"+id+"|"+reason)
	}
	if len(failures) != 3 || !strings.HasPrefix(failures[0], "p2|msg_p2_1|typesense 400: Document is malformed.") ||
		!strings.HasPrefix(failures[1], "p3||message event without an item id") || !strings.HasPrefix(failures[2], "p5||undecodable event") {
		t.Fatalf("search_failures:\n%s", strings.Join(failures, "\n"))
	}
	if v := testutil.ToFloat64(r.ix.m.errors.WithLabelValues("poison")); v != 3 {
		t.Fatalf("index_errors_total{kind=poison} %v", v)
	}
	if logs := r.logs.String(); strings.Count(logs, "skipped a document that cannot be indexed") != 3 || !strings.Contains(logs, "message_id=msg_p2_1") {
		t.Fatalf("logs:\n%s", logs)
	}
}

func TestOneActiveIndexerPerCluster(t *testing.T) {
	e := newEnv(t)
	be := pgsearch.New(e.pool)
	recA, recB := &recorder{Backend: be}, &recorder{Backend: be}
	a, b := e.start(recA, testConfig), e.start(recB, testConfig)
	poll.Until(t, 5*time.Second, "an active indexer", func() bool { return a.ix.Stats().Active || b.ix.Stats().Active })
	active, standby, recActive, recStandby := a, b, recA, recB
	if b.ix.Stats().Active {
		active, standby, recActive, recStandby = b, a, recB, recA
	}
	for i := range 20 {
		e.commit(message(fmt.Sprintf("x%d", i), "acc", "ib", 1, "lima"))
	}
	poll.Until(t, 10*time.Second, "indexing", func() bool { return len(recActive.accepted()) >= 20 })
	poll.Until(t, 10*time.Second, "indexing (caught up)", caughtUp(active.ix))
	if standby.ix.Stats().Active || len(recStandby.accepted()) != 0 {
		t.Fatalf("the standby indexed: active=%v, %d documents", standby.ix.Stats().Active, len(recStandby.accepted()))
	}
	// Every node measures the cluster's lag, not just the active one.
	poll.Until(t, 5*time.Second, "standby stats", caughtUp(standby.ix))

	// The active node stops; the standby takes over.
	active.stop()
	poll.Until(t, 5*time.Second, "takeover", func() bool { return standby.ix.Stats().Active })
	for i := 20; i < 30; i++ {
		e.commit(message(fmt.Sprintf("x%d", i), "acc", "ib", 1, "lima"))
	}
	// The recorder notes documents after the backend has committed them,
	// so wait for both.
	poll.Until(t, 10*time.Second, "after takeover", func() bool {
		return len(found(t, be, "acc", []string{"ib"}, "lima")) == 30 && len(recStandby.accepted()) >= 10
	})
	// Delivery is at least once: at a takeover the new leader may re-send
	// what the old one sent but had not yet recorded in the cursor (upserts
	// make that harmless), but it resumes from the cursor, not from scratch.
	if n := len(recStandby.accepted()); n < 10 || n >= 20 {
		t.Fatalf("the new active indexer sent %d documents, want the 10 new ones (plus at most a re-sent tail)", n)
	}
}

func TestPauseAndResume(t *testing.T) {
	e := newEnv(t)
	be := pgsearch.New(e.pool)
	r := e.start(be, testConfig)
	in := []string{"ib"}
	e.commit(message("q1", "acc", "ib", 1, "mike"))
	poll.Until(t, 5*time.Second, "first", func() bool { return r.ix.Stats().Indexed >= 1 })

	r.ix.Pause()
	if !r.ix.Stats().Paused {
		t.Fatal("not paused")
	}
	for i := 2; i <= 6; i++ {
		e.commit(message(fmt.Sprintf("q%d", i), "acc", "ib", 1, "mike"))
	}
	// Lag and backlog keep being measured while paused.
	poll.Until(t, 5*time.Second, "backlog while paused", func() bool { s := r.ix.Stats(); return s.Backlog == 5 && s.LagMs > 0 })
	if got := found(t, be, "acc", in, "mike"); len(got) != 1 {
		t.Fatalf("indexed while paused: %v", got)
	}
	if v := testutil.ToFloat64(r.ix.m.backlog); v != 5 {
		t.Fatalf("index_backlog %v", v)
	}
	if v := testutil.ToFloat64(r.ix.m.lag); v <= 0 {
		t.Fatalf("index_lag_seconds %v", v)
	}

	r.ix.Resume()
	poll.Until(t, 5*time.Second, "after resume", func() bool { return len(found(t, be, "acc", in, "mike")) == 6 })
	poll.Until(t, 5*time.Second, "after resume (caught up)", caughtUp(r.ix))
	// Indexed counts deliveries, which are at least once (a session that
	// restarts re-sends the batch it had not recorded); the index holds each
	// message once, checked above.
	if s := r.ix.Stats(); s.Paused || s.Indexed < 6 {
		t.Fatalf("stats %+v", s)
	}
	if v := testutil.ToFloat64(r.ix.m.lag); v != 0 {
		t.Fatalf("index_lag_seconds %v after catching up", v)
	}
}

func TestBackoffGrowsWithJitterUpToCap(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: 5 * time.Second}
	for i := range 40 {
		want := min(10*time.Millisecond<<i, 5*time.Second)
		if i > 30 {
			want = 5 * time.Second
		}
		d := b.next()
		if d < want/2 || d > want {
			t.Fatalf("attempt %d: %v not in [%v, %v]", i, d, want/2, want)
		}
	}
	b.reset()
	if d := b.next(); d > 10*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
	// Jitter: many draws of the same step are not all equal.
	seen := map[time.Duration]bool{}
	for range 20 {
		c := backoff{min: time.Second, max: time.Minute}
		seen[c.next()] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter")
	}
}

// countingBackend counts the backend calls the indexer makes.
type countingBackend struct {
	search.Backend
	calls atomic.Int64
}

func (c *countingBackend) Upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	c.calls.Add(1)
	return c.Backend.Upsert(ctx, docs)
}

// TestGatherIndexesCommitsTogether: commits trickling in one every 20 ms
// are indexed a few rounds at a time, not one round per commit — at most
// one round per Gather, plus the first and the last.
func TestGatherIndexesCommitsTogether(t *testing.T) {
	e := newEnv(t)
	be := &countingBackend{Backend: pgsearch.New(e.pool)}
	cfg := testConfig
	cfg.BatchSize = 500
	cfg.Gather = 250 * time.Millisecond
	r := e.start(be, cfg)
	defer r.stop()
	const commits = 50
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range commits {
		<-tick.C
		e.commit(message(fmt.Sprintf("g%d", i), "acc", "ib", 1, "gather me"))
	}
	poll.Until(t, 10*time.Second, "every commit indexed", func() bool {
		return len(found(t, be, "acc", []string{"ib"}, "gather")) == commits
	})
	elapsed := time.Since(start)
	calls := be.calls.Load()
	t.Logf("%d commits over %v indexed in %d backend calls", commits, elapsed.Round(time.Millisecond), calls)
	if most := int64(elapsed/cfg.Gather) + 2; calls > most {
		t.Fatalf("%d backend calls for %d commits over %v, want at most %d (one per Gather)", calls, commits, elapsed, most)
	}
}
