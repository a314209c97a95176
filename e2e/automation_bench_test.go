package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// BenchmarkTimerLag measures how late auto-close fires: conversations
// arrive at a steady rate into an inbox with auto_close_after_s = 2 while
// many other timers are armed (due an hour later), and the lag of each is
// the close event's commit time minus its due time (last_activity_at + 2 s),
// read from the journal. Reported: p50 and p99 in ms. Run with
// `go test -run '^$' -bench TimerLag -benchtime 1x ./e2e`
// (TIMER_BENCH_ARMED and TIMER_BENCH_DUE are fixed in the code below).
func BenchmarkTimerLag(b *testing.B) {
	const (
		armed = 100_000 // timers armed but not due during the run
		due   = 2_000   // conversations that auto-close during the run
		rate  = 400     // new conversations per second
	)
	n := testNode(b)
	c := api{t: b, base: n.URL()}
	tn := newTenant(b, c, "Bench")
	k := c.with(tn.key)
	k.must(200, "PATCH", "/v1/inboxes/"+tn.inbox, obj{"auto_close_after_s": 2})
	ctx := context.Background()
	pool := n.Store().Pool()
	// Armed timers of another inbox: rows in the due index, due in an hour.
	if _, err := pool.Exec(ctx, `INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status,
			addressed, channel, last_activity_at, summary, due_at)
		SELECT 'cv_armed_' || g, 'acc_x', 'ib_x', 'k' || g, 1, 'open', true, 'sms', now(), '{}', now() + interval '1 hour'
		FROM generate_series(1, $1) g`, armed); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for j := range due {
			<-tick.C
			wg.Go(func() {
				k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
					obj{"contact": obj{"phone": fmt.Sprintf("+1415%07d", i*due+j)}, "body": "hi"})
			})
		}
		tick.Stop()
		wg.Wait()
		poll.Until(b, time.Minute, "every conversation to auto-close", func() bool {
			var open int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM conversations WHERE inbox_id = $1 AND status <> 'closed'`, tn.inbox).Scan(&open); err != nil {
				b.Fatal(err)
			}
			return open == 0
		})
		var p50, p99, worst float64
		if err := pool.QueryRow(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag)
			FROM (SELECT extract(epoch FROM j.created_at - (c.last_activity_at + interval '2 seconds')) * 1000 AS lag
				FROM conversations c JOIN journal j ON j.conversation_id = c.id AND j.version = c.version
				WHERE c.inbox_id = $1 AND j.event->>'actor_id' = 'automation' AND j.created_at > $2) l`, tn.inbox, start).Scan(&p50, &p99, &worst); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(p50, "p50_lag_ms")
		b.ReportMetric(p99, "p99_lag_ms")
		b.ReportMetric(worst, "max_lag_ms")
		// Reset for the next iteration: the contacts differ per iteration.
	}
}
