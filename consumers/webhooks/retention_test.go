package webhooks

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
)

// One purge round deletes exactly the rows past their retention — delivered
// ones a day after delivery, failed ones 30 days after they failed — in
// statements of at most PurgeBatch rows, and never a pending row however old.
func TestPurgeDeletesOnlyExpiredRows(t *testing.T) {
	ctx := context.Background()
	pool, sealer, hook, _ := newHookDB(t, "Retention", "https://example.com/hook")
	// Production retention and horizon; a small batch so that one round
	// needs several statements.
	d := New(pool, listentest.Run(t, pool), sealer, Config{PurgeBatch: 5}, nil, prometheus.NewRegistry())

	type row struct {
		conv              string
		status            string
		queued, delivered string // intervals before now(); "" for NULL
	}
	// Failed rows go Horizon + FailedRetention (24 h + 30 days) after
	// they were queued.
	rows := []row{
		{"recent", "delivered", "23 hours", "23 hours"},
		{"pending", "pending", "1000 days", ""},
		{"failed-kept", "failed", "30 days 23 hours", ""},
		{"failed-expired", "failed", "30 days 25 hours", ""},
	}
	for range 12 {
		rows = append(rows, row{"expired", "delivered", "3 days", "25 hours"})
	}
	for i, r := range rows {
		_, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type, payload,
	status, committed_at, created_at, delivered_at)
VALUES ($1, $2, 'acc_1', $3, $4, 'message.created', '{}', $5, now() - $6::interval, now() - $6::interval,
	now() - NULLIF($7, '')::interval)`, hook.ID, fmt.Sprintf("evt_%d", i), r.conv, i+1, r.status, r.queued, r.delivered)
		if err != nil {
			t.Fatal(err)
		}
	}

	if err := d.purge(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := pool.Query(ctx, `SELECT conversation_id FROM webhook_deliveries ORDER BY conversation_id`)
	if err != nil {
		t.Fatal(err)
	}
	convs, err := pgx.CollectRows(left, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"failed-kept", "pending", "recent"}; !slices.Equal(convs, want) {
		t.Errorf("left %v, want %v", convs, want)
	}
	if got := testutil.ToFloat64(d.m.purged.WithLabelValues("delivered")); got != 12 {
		t.Errorf("purged %v delivered rows, want 12", got)
	}
	if got := testutil.ToFloat64(d.m.purged.WithLabelValues("failed")); got != 1 {
		t.Errorf("purged %v failed rows, want 1", got)
	}
	// 12 delivered rows at 5 a statement: 5, 5, 2; then one failed.
	if got := histogramCount(t, d.m.purgeBatch); got != 4 {
		t.Errorf("%d purge statements, want 4 (batches of at most 5)", got)
	}
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// The running deliverer purges a conversation's delivered history while
// keeping a failed delivery retryable; the retry still goes out, and the
// conversation's next events — fanned out onto a queue whose earlier rows
// are gone, some held back by a refusing receiver while the purge runs —
// arrive once each and in version order.
func TestPurgedHistoryKeepsOrderAndRetry(t *testing.T) {
	ctx := context.Background()
	rcv := newHookReceiver(t)
	e := newBacklogEnvWith(t, rcv, func(c *Config) {
		c.Retention, c.FailedRetention, c.PurgeInterval = time.Hour, time.Hour, 20*time.Millisecond
	})
	const convs = 4
	count := func(where string) int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE `+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	age := func() {
		t.Helper()
		if _, err := e.pool.Exec(ctx, `UPDATE webhook_deliveries SET delivered_at = now() - interval '2 hours'
WHERE status = 'delivered'`); err != nil {
			t.Fatal(err)
		}
	}

	e.commit(convs, 1, 5)
	poll.Until(t, time.Minute, "the first events delivered", func() bool {
		got, _ := rcv.counts()
		return got == convs*5 && e.pending() == 0
	})
	// conv_000's version 3 gave up (as after the horizon), within its
	// retention; everything delivered is past its retention.
	failed := EventID("conv_000", 3)
	if _, err := e.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', delivered_at = NULL, last_error = 'gave up'
WHERE webhook_id = $1 AND event_id = $2`, e.webhook, failed); err != nil {
		t.Fatal(err)
	}
	age()
	poll.Until(t, 30*time.Second, "delivered history purged", func() bool { return count("true") == 1 })
	if n := count("status = 'failed'"); n != 1 {
		t.Fatalf("%d failed rows left, want the one within its retention", n)
	}

	// The failed one is listed and its retry goes out.
	eps := NewEndpoints(e.pool, e.sealer, Config{})
	page, err := eps.Deliveries(ctx, "acc_1", e.webhook, "failed", 10, "")
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].EventID != failed || page.NextCursor != "" {
		t.Fatalf("failed deliveries: %+v, %v", page, err)
	}
	if err := eps.Retry(ctx, "acc_1", e.webhook, failed); err != nil {
		t.Fatalf("retry: %v", err)
	}
	poll.Until(t, 30*time.Second, "the retried delivery sent again", func() bool {
		rcv.mu.Lock()
		dups := rcv.dups
		rcv.mu.Unlock()
		return dups == 1 && count("status = 'delivered'") == 1
	})

	// Next events while the receiver refuses: they queue behind heads
	// whose predecessors' rows are purged meanwhile.
	rcv.failing.Store(true)
	e.commit(convs, 6, 10)
	poll.Until(t, 30*time.Second, "the next events fanned out and refused", func() bool {
		_, refused := rcv.counts()
		return count("status = 'pending'") == convs*5 && refused >= convs
	})
	age()
	poll.Until(t, 30*time.Second, "the retried delivery purged", func() bool { return count("status = 'delivered'") == 0 })
	if n := count("status = 'pending'"); n != convs*5 {
		t.Fatalf("%d pending rows after the purge, want %d", n, convs*5)
	}
	rcv.failing.Store(false)
	poll.Until(t, time.Minute, "the held-back events delivered", func() bool {
		got, _ := rcv.counts()
		return got == convs*10 && e.pending() == 0
	})

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.order) > 0 {
		t.Errorf("out of order: %v", rcv.order)
	}
	for c := range convs {
		if conv := fmt.Sprintf("conv_%03d", c); rcv.last[conv] != 10 {
			t.Errorf("%s: last version %d, want 10", conv, rcv.last[conv])
		}
	}
	if rcv.badSig > 0 {
		t.Errorf("%d deliveries failed signature verification", rcv.badSig)
	}
	if got := testutil.ToFloat64(e.d.m.purged.WithLabelValues("failed")); got != 0 {
		t.Errorf("purged %v failed rows, want none", got)
	}
}
