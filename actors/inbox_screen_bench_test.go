package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/persistence"
)

// Sizes of the inbox screen benchmark (issue #2, Performance): an inbox of
// 100,000 conversations that are not closed, plus closed ones so that the
// SQL's status <> 'closed' and the closed count have something to skip and
// count, under a steady write load on other conversations of the same inbox.
const (
	screenActive     = 100_000
	screenClosed     = 20_000
	screenAgents     = 20
	screenLoadConvs  = 300
	screenLoadRate   = 500 // inbound messages per second
	screenLoadWorker = 32
	screenAgent      = "ag_screen_01" // "mine" in the counts, on both paths
)

// sqlScreenPage and sqlScreenCounts are what an SQL-backed inbox would run
// for the same screen: the first page of the default list and the counts
// the inbox actor keeps (inbox.Counts, with "mine" for one agent).
const (
	sqlScreenPage = `SELECT summary FROM conversations WHERE inbox_id = $1 AND status <> 'closed'
		ORDER BY last_activity_at DESC, id LIMIT 50`
	sqlScreenCounts = `SELECT
		count(*) FILTER (WHERE status = 'open'),
		count(*) FILTER (WHERE status = 'new'),
		count(*) FILTER (WHERE status = 'pending'),
		count(*) FILTER (WHERE status = 'closed'),
		count(*) FILTER (WHERE status <> 'closed' AND NOT addressed),
		count(*) FILTER (WHERE status <> 'closed' AND assignee_id IS NULL),
		count(*) FILTER (WHERE status <> 'closed' AND assignee_id = $2),
		count(*) FILTER (WHERE status <> 'closed' AND assignee_id = $2 AND NOT addressed)
		FROM conversations WHERE inbox_id = $1`
)

// handlerTimer is a receiver middleware placed innermost on the inbox kind:
// it times the grain's Receive of each list and counts request (parse, index
// walk, counts, JSON encoding, Respond) and hands the duration to the
// benchmark. Nothing in the actors is changed for it.
type handlerTimer struct{ d chan time.Duration }

func (h *handlerTimer) middleware(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		switch env.Message.(type) {
		case *actorpb.ListConversations, *actorpb.GetCounts:
		default:
			next(c, env)
			return
		}
		start := time.Now()
		next(c, env)
		select {
		case h.d <- time.Since(start):
		default: // never block the actor on the benchmark
		}
	}
}

// next waits for the handler time of the request that just returned: the
// middleware records it after Respond, so it may arrive a moment later.
func (h *handlerTimer) next(b *testing.B) time.Duration {
	select {
	case d := <-h.d:
		return d
	case <-time.After(5 * time.Second):
		b.Fatal("no handler time recorded for an inbox request")
		return 0
	}
}

// startScreenNode is startNode with the handler timer on the inbox kind.
func startScreenNode(b *testing.B, url string, timer *handlerTimer) *tnode {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := persistence.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	writer := persistence.NewWriter(store.Pool(), persistence.WriterConfig{}, nil)
	log := testLogger()
	deps := &Deps{Store: store, Writer: writer, Log: log, Metrics: NewMetrics(nil)}
	inboxKind := NewInboxKind(deps)
	inboxKind.Props = inboxKind.Props.Clone(actor.WithReceiverMiddleware(timer.middleware))
	node, err := cluster.Start(ctx, cluster.Config{Logger: log, RequestTimeout: 30 * time.Second},
		NewConversationKind(deps), inboxKind)
	if err != nil {
		_ = writer.Close(ctx)
		store.Close()
		b.Fatal(err)
	}
	deps.SetNode(node)
	b.Cleanup(func() {
		node.Stop()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if err := writer.Close(cctx); err != nil {
			b.Errorf("close writer: %v", err)
		}
		store.Close()
	})
	return &tnode{deps: deps, node: node, engine: NewEngine(deps), store: store, writer: writer}
}

// seedScreenInbox writes the read-model rows of screenActive non-closed and
// screenClosed closed conversations of one inbox with COPY. The summaries are
// conversation.Summary values, so the inbox actor decodes them as its own.
// No journal or head rows: these conversations are only listed, never
// activated (the write load uses other contacts, created the normal way).
func seedScreenInbox(b *testing.B, s *persistence.Store, tn tenantIDs, now time.Time) {
	b.Helper()
	r := rand.New(rand.NewPCG(2, 100_000))
	agents := make([]string, screenAgents)
	for i := range agents {
		agents[i] = fmt.Sprintf("ag_screen_%02d", i+1)
	}
	tagPool := []string{"vip", "billing", "support", "sales", "urgent", "follow-up"}
	const month = int64(30 * 24 * time.Hour)
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == screenActive+screenClosed {
			return nil, nil
		}
		n := i
		i++
		var c conversation.Contact
		ch := conversation.ChannelSMS
		switch k := r.IntN(100); {
		case k < 55:
			c.Phone = fmt.Sprintf("+1415%07d", n)
		case k < 65:
			c.Phone = fmt.Sprintf("+1415%07d", n)
			ch = conversation.ChannelVoice
		case k < 85:
			c.Email = fmt.Sprintf("contact%06d@example.com", n)
			ch = conversation.ChannelEmail
		default:
			c.Handle = fmt.Sprintf("web-%06d", n)
			ch = conversation.ChannelChat
		}
		if r.IntN(2) == 0 {
			c.Name = fmt.Sprintf("Contact %d", n)
		}
		key := conversation.ContactKey(c)
		c.ID = conversation.ContactID(tn.inbox, key)
		sum := conversation.Summary{
			ID: conversation.ID(tn.inbox, key), AccountID: tn.account, InboxID: tn.inbox, Contact: c,
			Channel: ch, Tags: []string{}, Version: 1 + r.Int64N(60),
		}
		// Older activity further back, skewed towards the recent days.
		at := now.Add(-time.Duration(r.Int64N(month)*r.Int64N(1000)/1000) - time.Minute)
		sum.LastActivityAt = at.UTC().Truncate(time.Microsecond)
		if n >= screenActive {
			sum.Status = conversation.StatusClosed
			sum.Addressed = true
		} else {
			switch k := r.IntN(100); {
			case k < 20:
				sum.Status = conversation.StatusNew
			case k < 80:
				sum.Status = conversation.StatusOpen
			default:
				sum.Status = conversation.StatusPending
			}
			sum.Addressed = sum.Status == conversation.StatusPending || r.IntN(100) < 55
		}
		if sum.Status != conversation.StatusNew && r.IntN(100) < 75 {
			a := agents[r.IntN(len(agents))]
			sum.AssigneeID = &a
		}
		if r.IntN(100) < 30 {
			sum.Tags = append(sum.Tags, tagPool[r.IntN(len(tagPool))])
		}
		dir, kind := conversation.Inbound, conversation.KindMessage
		if sum.Addressed {
			dir = conversation.Outbound
		} else {
			// Waiting since its oldest unanswered inbound message.
			w := sum.LastActivityAt.Add(-time.Duration(r.Int64N(int64(2 * time.Hour))))
			sum.WaitingSince = &w
			sum.UnreadCount = 1 + r.Int64N(4)
		}
		sum.LastMessage = &conversation.LastMessage{ID: fmt.Sprintf("msg_seed%07d", n), Seq: sum.Version,
			Direction: dir, Kind: kind, Body: fmt.Sprintf("message %d about order #%d", n, r.IntN(1_000_000)),
			CreatedAt: sum.LastActivityAt}
		raw, err := json.Marshal(sum)
		if err != nil {
			return nil, err
		}
		return []any{sum.ID, sum.AccountID, sum.InboxID, key, sum.Version, string(sum.Status), sum.Addressed,
			sum.AssigneeID, string(sum.Channel), sum.Tags, sum.LastActivityAt, sum.WaitingSince, json.RawMessage(raw)}, nil
	})
	ctx := context.Background()
	n, err := s.Pool().CopyFrom(ctx, pgx.Identifier{"conversations"},
		[]string{"id", "account_id", "inbox_id", "contact_key", "version", "status", "addressed", "assignee_id",
			"channel", "tags", "last_activity_at", "waiting_since", "summary"}, rows)
	if err != nil {
		b.Fatal(err)
	}
	if n != screenActive+screenClosed {
		b.Fatalf("copied %d rows", n)
	}
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE conversations`); err != nil {
		b.Fatal(err)
	}
}

// sqlScreen runs the SQL path: the page (summaries as the raw JSON an API
// would forward) and the counts.
func sqlScreen(ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}, inboxID string) (page [][]byte, counts inbox.Counts, err error) {
	rows, err := pool.Query(ctx, sqlScreenPage, inboxID)
	if err != nil {
		return nil, counts, err
	}
	page, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var raw []byte
		err := r.Scan(&raw)
		return raw, err
	})
	if err != nil {
		return nil, counts, err
	}
	err = pool.QueryRow(ctx, sqlScreenCounts, inboxID, screenAgent).Scan(&counts.Open, &counts.New, &counts.Pending,
		&counts.Closed, &counts.Unaddressed, &counts.Unassigned, &counts.Mine, &counts.MineUnaddressed)
	return page, counts, err
}

// writeLoad sends inbound messages to screenLoadConvs conversations of the
// inbox at screenLoadRate through Engine.Command, until stopped. A tick that
// finds every worker busy is dropped and counted, so the rate stays steady
// rather than bursting after a stall.
type writeLoad struct {
	ok, failed, dropped atomic.Int64
	stop                func()
}

func startWriteLoad(b *testing.B, e *Engine, tn tenantIDs) *writeLoad {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeLoad{}
	jobs := make(chan int, screenLoadWorker)
	var wg sync.WaitGroup
	var lastErr atomic.Value
	for range screenLoadWorker {
		wg.Go(func() {
			for n := range jobs {
				phone := fmt.Sprintf("+1999%07d", n%screenLoadConvs)
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := e.command(cctx, inboundCmd(tn, phone, fmt.Sprintf("load message %d", n), fmt.Sprintf("load-%d", n)))
				ccancel()
				if err != nil {
					if ctx.Err() == nil {
						w.failed.Add(1)
						lastErr.Store(err.Error())
					}
					continue
				}
				w.ok.Add(1)
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		t := time.NewTicker(time.Second / screenLoadRate)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case jobs <- n:
			default:
				w.dropped.Add(1)
			}
		}
	})
	w.stop = func() {
		cancel()
		wg.Wait()
		if err, _ := lastErr.Load().(string); err != "" {
			b.Logf("write load: last error: %s", err)
		}
	}
	return w
}

func usOf(h *hdrhistogram.Histogram, q float64) float64 {
	if q >= 100 {
		return float64(h.Max()) / 1e3
	}
	return float64(h.ValueAtQuantile(q)) / 1e3
}

func newLatencyHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(30*time.Second), 3) // nanoseconds
}

// BenchmarkInboxScreen is the inbox screen of issue #2: the first page of 50
// (default filter, sort recent) plus the counts, from an inbox of 100,000
// conversations that are not closed (and 20,000 closed), under a steady
// write load of inbound messages to 300 other conversations of the same
// inbox. In one process, interleaved sample by sample, it measures:
//
//   - actor: Engine.List + Engine.Counts, the full request/response through
//     the cluster to the inbox actor, as the gateway calls it;
//   - handler: the time inside the inbox actor for those two requests (its
//     Receive, timed by a receiver middleware on the inbox kind);
//   - sql: the SQL an SQL-backed inbox would run on the read model, the page
//     query plus one COUNT(*) FILTER query, on the same pool.
//
// Latencies are reported as percentiles (µs) and ratios; nothing is asserted
// about speed.
//
//	go test -run '^$' -bench InboxScreen -benchtime 2000x ./actors/
func BenchmarkInboxScreen(b *testing.B) {
	url := newDatabase(b)
	timer := &handlerTimer{d: make(chan time.Duration, 16)}
	n := startScreenNode(b, url, timer)
	tn := newTenantIDs(b, n.store, "Inbox screen")
	ctx := context.Background()

	start := time.Now()
	seedScreenInbox(b, n.store, tn, start)
	// Notes of the setup, logged with the results (the parent benchmark's
	// own log is not printed when it has sub-benchmarks).
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	note("seeded %d + %d closed conversations into the read model in %s",
		screenActive, screenClosed, time.Since(start).Round(time.Millisecond))

	// Warm: the first request activates the inbox and loads it from the
	// read model.
	start = time.Now()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	first, err := n.engine.List(wctx, tn.account, tn.inbox, "", inbox.Query{Limit: 50})
	wcancel()
	if err != nil {
		b.Fatal(err)
	}
	timer.next(b)
	note("inbox actor activated and loaded in %s (total %d)", time.Since(start).Round(time.Millisecond), first.Total)
	if first.Total != screenActive {
		b.Fatalf("inbox total %d, want %d", first.Total, screenActive)
	}

	// Both paths must answer the same screen before the load starts.
	rawCounts, _, _, err := n.engine.Counts(ctx, tn.account, tn.inbox, screenAgent)
	if err != nil {
		b.Fatal(err)
	}
	timer.next(b)
	var actorCounts inbox.Counts
	if err := json.Unmarshal(rawCounts, &actorCounts); err != nil {
		b.Fatal(err)
	}
	page, sqlCounts, err := sqlScreen(ctx, n.store.Pool(), tn.inbox)
	if err != nil {
		b.Fatal(err)
	}
	if actorCounts != sqlCounts {
		b.Fatalf("counts differ: actor %+v, sql %+v", actorCounts, sqlCounts)
	}
	var actorPage []conversation.Summary
	if err := json.Unmarshal(first.Conversations, &actorPage); err != nil {
		b.Fatal(err)
	}
	if len(actorPage) != 50 || len(page) != 50 {
		b.Fatalf("pages of %d (actor) and %d (sql)", len(actorPage), len(page))
	}
	for i := range page {
		if got := decodeSummary(b, page[i]).ID; got != actorPage[i].ID {
			b.Fatalf("page differs at %d: actor %s, sql %s", i, actorPage[i].ID, got)
		}
	}
	note("counts (both paths agree before the load): %+v", actorCounts)

	// A catch-up after a member loss (inbox_catchup.go) holds the actor
	// for one snapshot read of the inbox: how long, at this size.
	pids := n.deps.inboxes.all()
	if len(pids) != 1 {
		b.Fatalf("%d inbox activations, want 1", len(pids))
	}
	var catchUps []string
	for range 3 {
		t0 := time.Now()
		res, err := n.node.System.Root.RequestFuture(pids[0], &catchUp{}, time.Minute).Result()
		if err != nil {
			b.Fatal(err)
		}
		if r := res.(*caughtUp); r.err != nil || r.repaired != 0 {
			b.Fatalf("catch-up of an inbox that missed nothing: %+v", r)
		}
		catchUps = append(catchUps, time.Since(t0).Round(time.Millisecond).String())
	}
	note("catch-up after a member loss (whole inbox, nothing missing) held the inbox: %s", strings.Join(catchUps, ", "))

	load := startWriteLoad(b, n.engine, tn)
	defer load.stop()
	time.Sleep(2 * time.Second) // the load's conversations activate and reach a steady rate

	b.Run("page50+counts", func(b *testing.B) {
		actorH, handlerH, sqlH := newLatencyHist(), newLatencyHist(), newLatencyHist()
		listH, countsH := newLatencyHist(), newLatencyHist()
		sqlPageH, sqlCountsH := newLatencyHist(), newLatencyHist()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Minute)
		defer rcancel()
		ok0, seq0 := load.ok.Load(), int64(-1)
		var seq1 int64
		runtime.GC()
		began := time.Now()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			actorPath := func() {
				t0 := time.Now()
				p, err := n.engine.List(rctx, tn.account, tn.inbox, "", inbox.Query{Limit: 50})
				if err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := n.engine.Counts(rctx, tn.account, tn.inbox, screenAgent); err != nil {
					b.Fatal(err)
				}
				took := time.Since(t0)
				inList, inCounts := timer.next(b), timer.next(b)
				_ = actorH.RecordValue(int64(took))
				_ = handlerH.RecordValue(int64(inList + inCounts))
				_ = listH.RecordValue(int64(inList))
				_ = countsH.RecordValue(int64(inCounts))
				if seq0 < 0 {
					seq0 = p.Seq
				}
				seq1 = p.Seq
				if p.Total < screenActive || len(p.Conversations) < 1000 {
					b.Fatalf("actor page: total %d, %d bytes", p.Total, len(p.Conversations))
				}
			}
			sqlPath := func() {
				t0 := time.Now()
				pg, _, err := sqlScreen(rctx, n.store.Pool(), tn.inbox)
				if err != nil {
					b.Fatal(err)
				}
				took := time.Since(t0)
				_ = sqlH.RecordValue(int64(took))
				if len(pg) != 50 {
					b.Fatalf("sql page of %d", len(pg))
				}
			}
			// Alternate which path goes first so neither always runs
			// right after the other.
			if i%2 == 0 {
				actorPath()
				sqlPath()
			} else {
				sqlPath()
				actorPath()
			}
			// Every 10th sample, the two SQL statements apart (not in
			// the totals above).
			if i%10 == 0 {
				t0 := time.Now()
				rows, err := n.store.Pool().Query(rctx, sqlScreenPage, tn.inbox)
				if err == nil {
					_, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
				}
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				var c inbox.Counts
				if err := n.store.Pool().QueryRow(rctx, sqlScreenCounts, tn.inbox, screenAgent).Scan(&c.Open, &c.New,
					&c.Pending, &c.Closed, &c.Unaddressed, &c.Unassigned, &c.Mine, &c.MineUnaddressed); err != nil {
					b.Fatal(err)
				}
				_ = sqlPageH.RecordValue(int64(t1.Sub(t0)))
				_ = sqlCountsH.RecordValue(int64(time.Since(t1)))
			}
		}
		b.StopTimer()
		elapsed := time.Since(began)

		writes := load.ok.Load() - ok0
		for _, m := range []struct {
			name string
			h    *hdrhistogram.Histogram
		}{{"actor", actorH}, {"handler", handlerH}, {"sql", sqlH}} {
			b.ReportMetric(usOf(m.h, 50), m.name+"_p50_us")
			b.ReportMetric(usOf(m.h, 99), m.name+"_p99_us")
			b.ReportMetric(usOf(m.h, 100), m.name+"_max_us")
		}
		b.ReportMetric(usOf(sqlH, 99)/usOf(actorH, 99), "ratio_p99")
		b.ReportMetric(usOf(sqlH, 50)/usOf(actorH, 50), "ratio_p50")
		b.ReportMetric(usOf(sqlH, 99)/usOf(handlerH, 99), "ratio_handler_p99")
		b.ReportMetric(float64(writes)/elapsed.Seconds(), "writes/s")
		if b.N < 100 {
			return // the probe run of the benchmark framework
		}
		// Without -v the framework keeps only the first lines of the log:
		// the results come first, the setup notes and plans after.
		b.Logf("ratio sql/actor: p50 %.1f×, p99 %.1f×; sql/handler p99 %.1f×",
			usOf(sqlH, 50)/usOf(actorH, 50), usOf(sqlH, 99)/usOf(actorH, 99), usOf(sqlH, 99)/usOf(handlerH, 99))
		b.Logf("write load during the run: %d inbound messages in %s = %.0f/s (%d failed, %d ticks dropped in all); inbox seq %d → %d",
			writes, elapsed.Round(time.Millisecond), float64(writes)/elapsed.Seconds(), load.failed.Load(),
			load.dropped.Load(), seq0, seq1)
		for _, m := range []struct {
			name string
			h    *hdrhistogram.Histogram
		}{{"actor round trip (List+Counts)", actorH}, {"in handler (inbox Receive, List+Counts)", handlerH},
			{"  in handler, List alone", listH}, {"  in handler, Counts alone", countsH},
			{"sql (page + counts)", sqlH}, {"  sql page query alone", sqlPageH}, {"  sql counts query alone", sqlCountsH}} {
			b.Logf("%-42s n=%5d  p50 %9.1f µs  p99 %9.1f µs  max %9.1f µs", m.name, m.h.TotalCount(),
				usOf(m.h, 50), usOf(m.h, 99), usOf(m.h, 100))
		}
		for _, l := range notes {
			b.Log(l)
		}
		explainScreen(b, n.store, tn)
	})
}

// explainScreen logs the plans of the two SQL statements, run under the load.
func explainScreen(b *testing.B, s *persistence.Store, tn tenantIDs) {
	ctx := context.Background()
	pool := s.Pool()
	rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sqlScreenPage, tn.inbox)
	if err != nil {
		b.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("EXPLAIN ANALYZE page query (uses an inbox list index: %v):\n%s",
		slices.ContainsFunc(plan, func(l string) bool { return strings.Contains(l, "conversations_inbox_") }),
		strings.Join(plan, "\n"))
	rows, err = pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sqlScreenCounts, tn.inbox, screenAgent)
	if err != nil {
		b.Fatal(err)
	}
	plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("EXPLAIN ANALYZE counts query:\n%s", strings.Join(plan, "\n"))
}
