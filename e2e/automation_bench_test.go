package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// BenchmarkTimerLag measures how late auto-close fires: conversations
// arrive at a steady rate into an inbox with auto_close_after_s = 2, so as
// many timers fall due per second, while 100,000 other timers are armed
// (due an hour later). The lag of each is the close event's commit time
// minus its due time (last_activity_at + 2 s), read from the journal.
// Reported: lag p50/p99/max, the scanner's polls per due timer, the ingest
// acknowledgement p50/p99 of the conversations' messages, and ingest
// freshness (inbound sent → the inbox's websocket update) of a probe inbox
// at 50 msg/s in the same run. Run with
// `go test -run '^$' -bench TimerLag -benchtime 1x ./e2e`.
func BenchmarkTimerLag(b *testing.B) {
	for _, c := range []struct{ rate, seconds int }{{400, 5}, {1000, 10}} {
		b.Run(fmt.Sprintf("due_per_s=%d", c.rate), func(b *testing.B) {
			for range b.N {
				timerLagRun(b, c.rate, c.rate*c.seconds)
			}
		})
	}
}

func timerLagRun(b *testing.B, rate, due int) {
	const armed = 100_000 // timers armed but not due during the run
	n := testNode(b)
	c := api{t: b, base: n.URL()}
	tn := newTenant(b, c, "Bench")
	k := c.with(tn.key)
	k.must(200, "PATCH", "/v1/inboxes/"+tn.inbox, obj{"auto_close_after_s": 2})
	probeInbox := k.must(201, "POST", "/v1/inboxes", obj{"name": "probe"})["id"].(string)
	ctx := context.Background()
	pool := n.Store().Pool()
	// Armed timers of another inbox: rows in the due index, due in an hour.
	if _, err := pool.Exec(ctx, `INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status,
			addressed, channel, last_activity_at, summary, due_at)
		SELECT 'cv_armed_' || g, 'acc_x', 'ib_x', 'k' || g, 1, 'open', true, 'sms', now(), '{}', now() + interval '1 hour'
		FROM generate_series(1, $1) g`, armed); err != nil {
		b.Fatal(err)
	}

	// The freshness probe: one subscriber of the probe inbox.
	ws := mustWS(b, n.URL(), wsOpts{token: tn.key})
	ws.subscribe(probeInbox, nil)
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	var fresh, acks []time.Duration
	stopReader, readerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			var f wsFrame
			select {
			case <-stopReader:
				return
			case f = <-ws.frames:
			}
			if f.typ() != "update" {
				continue
			}
			mu.Lock()
			if t0, ok := sentAt[lastMessageBody(f)]; ok {
				fresh = append(fresh, f.at.Sub(t0))
			}
			mu.Unlock()
		}
	}()

	polls0 := metricValue(b, n.URL(), "timer_polls_total")
	start := time.Now()
	stopProbe := make(chan struct{})
	var probeWG sync.WaitGroup
	probeWG.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond) // 50 msg/s
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopProbe:
				return
			case <-tick.C:
			}
			body := fmt.Sprint("probe ", i)
			mu.Lock()
			sentAt[body] = time.Now()
			mu.Unlock()
			k.must(201, "POST", "/v1/inboxes/"+probeInbox+"/messages", obj{"contact": obj{"phone": fmt.Sprintf("+1650%07d", i%500)}, "body": body})
		}
	})
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for j := range due {
		<-tick.C
		wg.Go(func() {
			t0 := time.Now()
			k.must(201, "POST", "/v1/inboxes/"+tn.inbox+"/messages",
				obj{"contact": obj{"phone": fmt.Sprintf("+1415%07d", j)}, "body": "hi"})
			mu.Lock()
			acks = append(acks, time.Since(t0))
			mu.Unlock()
		})
	}
	tick.Stop()
	wg.Wait()
	poll.Until(b, 2*time.Minute, "every conversation to auto-close", func() bool {
		var open int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM conversations WHERE inbox_id = $1 AND status <> 'closed'`, tn.inbox).Scan(&open); err != nil {
			b.Fatal(err)
		}
		return open == 0
	})
	close(stopProbe)
	probeWG.Wait()
	polls := metricValue(b, n.URL(), "timer_polls_total") - polls0
	var p50, p99, worst float64
	if err := pool.QueryRow(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag)
		FROM (SELECT extract(epoch FROM j.created_at - (c.last_activity_at + interval '2 seconds')) * 1000 AS lag
			FROM conversations c JOIN journal j ON j.conversation_id = c.id AND j.version = c.version
			WHERE c.inbox_id = $1 AND j.event->>'actor_id' = 'automation' AND j.created_at > $2) l`, tn.inbox, start).Scan(&p50, &p99, &worst); err != nil {
		b.Fatal(err)
	}
	close(stopReader)
	<-readerDone
	b.ReportMetric(p50, "p50_lag_ms")
	b.ReportMetric(p99, "p99_lag_ms")
	b.ReportMetric(worst, "max_lag_ms")
	b.ReportMetric(polls/float64(due), "polls/timer")
	b.ReportMetric(pct(acks, 0.5), "ack_p50_ms")
	b.ReportMetric(pct(acks, 0.99), "ack_p99_ms")
	b.ReportMetric(pct(fresh, 0.5), "fresh_p50_ms")
	b.ReportMetric(pct(fresh, 0.99), "fresh_p99_ms")
}

// pct is the q-quantile of ds in milliseconds.
func pct(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))]) / float64(time.Millisecond)
}

// metricValue reads a counter or gauge without labels from the node's
// /metrics by its name's suffix (whatever namespace it carries).
func metricValue(t testing.TB, base, suffix string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && !strings.HasPrefix(name, "#") && strings.HasSuffix(name, suffix) {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric *%s not found", suffix)
	return 0
}
