package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// BenchmarkWebhookLag measures webhook delivery lag (journal commit →
// the receiver's 2xx) at a steady inbound rate to one local receiver, and
// ingest (REST ack, and REST send → the inbox subscriber's update) with the
// deliverer on and then off, in the same run. The deliverer runs with its
// production defaults. Run with
// `go test -run '^$' -bench WebhookLag -benchtime 1x ./e2e`.
func BenchmarkWebhookLag(b *testing.B) {
	const (
		rate          = 1000 // inbound messages (journal events) per second
		seconds       = 10   // per phase
		conversations = 300
	)
	n := testNode(b, func(c *server.Config) { c.WebhookAllowPrivate = true })
	c := api{t: b, base: n.URL()}
	tn := newTenant(b, c, "Bench")
	k := c.with(tn.key)
	rcv := newLagReceiver(b)
	k.must(201, "POST", "/v1/webhooks", obj{"url": rcv.srv.URL + "/hook"})
	load := newLoad(b, n.URL(), tn.key, tn.inbox)
	ws := mustWS(b, n.URL(), wsOpts{token: tn.key})
	ws.subscribe(tn.inbox, nil)
	go load.readUpdates(ws)

	for i := 0; i < b.N; i++ {
		// Warm up: every conversation exists and is active.
		load.run(conversations, conversations, time.Second)
		warm := journalCount(b, n)
		poll.Until(b, time.Minute, "the warm-up delivered", func() bool { return rcv.count() >= warm })
		on := load.run(rate, conversations, seconds*time.Second)
		want := journalCount(b, n)
		poll.Until(b, 2*time.Minute, "every event delivered", func() bool { return rcv.count() >= want })
		lags := rcv.lags(b, n, on.start, on.end, "")

		n.StopDeliverer()
		off := load.run(rate, conversations, seconds*time.Second)
		n.StartDeliverer()

		reportLags(b, fmt.Sprintf("delivery lag (commit → 2xx), %d events at %.0f/s", len(lags), on.achieved()), lags, rcv)
		for _, ph := range []struct {
			name string
			r    loadResult
		}{{"on", on}, {"off", off}} {
			a50, a99, _ := lagPercentiles(ph.r.acks)
			f50, f99, fmx := lagPercentiles(ph.r.fresh)
			b.Logf("deliverer %-3s: %d msgs at %.0f/s: ack p50 %v p99 %v; freshness p50 %v p99 %v max %v (%d updates)",
				ph.name, ph.r.sent, ph.r.achieved(), a50, a99, f50, f99, fmx, len(ph.r.fresh))
			b.ReportMetric(ms(a99), "ack_p99_ms_"+ph.name)
			b.ReportMetric(ms(f99), "fresh_p99_ms_"+ph.name)
		}
	}
}

func journalCount(tb testing.TB, n *server.Node) int {
	var c int
	if err := n.Store().Pool().QueryRow(context.Background(), `SELECT count(*) FROM journal`).Scan(&c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reportLags reports delivery lags' percentiles as the benchmark's metrics
// and logs them after what.
func reportLags(b *testing.B, what string, lags []time.Duration, rcv *lagReceiver) {
	p50, p99, mx := lagPercentiles(lags)
	b.ReportMetric(ms(p50), "lag_p50_ms")
	b.ReportMetric(ms(p99), "lag_p99_ms")
	b.ReportMetric(ms(mx), "lag_max_ms")
	b.Logf("%s: p50 %v p99 %v max %v; %d duplicates", what, p50, p99, mx, rcv.duplicates())
}

func lagPercentiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
}

// lagReceiver is a webhook receiver that only notes when each event first
// arrived: the benchmark measures the deliverer, not the receiver's checks.
type lagReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	at   map[string]time.Time
	dups int
}

func newLagReceiver(tb testing.TB) *lagReceiver {
	r := &lagReceiver{at: map[string]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		now := time.Now()
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		if _, ok := r.at[id]; ok {
			r.dups++
		} else {
			r.at[id] = now
		}
		r.mu.Unlock()
		w.WriteHeader(204)
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *lagReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at)
}

func (r *lagReceiver) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

// lags are receive time minus the journal's commit time (created_at) of
// the events committed in [from, to], of one inbox's conversations unless
// inbox is "".
func (r *lagReceiver) lags(tb testing.TB, n *server.Node, from, to time.Time, inbox string) []time.Duration {
	rows, err := n.Store().Pool().Query(context.Background(),
		`SELECT conversation_id, version, created_at FROM journal WHERE created_at BETWEEN $1 AND $2 AND ($3 = '' OR inbox_id = $3)`, from, to, inbox)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for rows.Next() {
		var conv string
		var v int64
		var at time.Time
		if err := rows.Scan(&conv, &v, &at); err != nil {
			tb.Fatal(err)
		}
		got, ok := r.at[fmt.Sprintf("evt_%s_%d", conv, v)]
		if !ok {
			tb.Fatalf("event %s@%d never arrived", conv, v)
		}
		out = append(out, got.Sub(at))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// load sends inbound messages at a steady rate through a plain HTTP client
// (the e2e client's OpenAPI validation would cost more CPU than the node),
// and matches the subscriber's updates to the sends.
type load struct {
	tb              testing.TB
	base, key, path string
	client          *http.Client

	mu     sync.Mutex
	sentAt map[string]time.Time
	fresh  []time.Duration
	seq    int
}

type loadResult struct {
	start, end time.Time
	sent       int
	acks       []time.Duration
	fresh      []time.Duration
}

func (r loadResult) achieved() float64 { return float64(r.sent) / r.end.Sub(r.start).Seconds() }

func newLoad(tb testing.TB, base, key, inbox string) *load {
	return &load{tb: tb, base: base, key: key, path: "/v1/inboxes/" + inbox + "/messages", sentAt: map[string]time.Time{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

func (l *load) readUpdates(ws *wsClient) {
	for f := range ws.frames {
		if f.typ() != "update" {
			continue
		}
		body := lastMessageBody(f)
		l.mu.Lock()
		if t0, ok := l.sentAt[body]; ok {
			l.fresh = append(l.fresh, f.at.Sub(t0))
			delete(l.sentAt, body)
		}
		l.mu.Unlock()
	}
}

// run sends rate messages a second for d, round robin over conversations,
// and waits for the subscriber's updates.
func (l *load) run(rate, conversations int, d time.Duration) loadResult {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	l.mu.Lock()
	l.fresh = nil
	base := l.seq
	l.seq += total
	l.mu.Unlock()
	acks := make([]time.Duration, total)
	var wg sync.WaitGroup
	start := time.Now()
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				body := fmt.Sprintf("m%d", base+i)
				raw, _ := json.Marshal(obj{"contact": obj{"phone": fmt.Sprintf("+1415666%04d", i%conversations)}, "body": body})
				t0 := time.Now()
				l.mu.Lock()
				l.sentAt[body] = t0
				l.mu.Unlock()
				req, _ := http.NewRequest("POST", l.base+l.path, bytes.NewReader(raw))
				req.Header.Set("Authorization", "Bearer "+l.key)
				req.Header.Set("Content-Type", "application/json")
				res, err := l.client.Do(req)
				if err != nil {
					l.tb.Errorf("send: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				acks[i] = time.Since(t0)
				if res.StatusCode != 201 {
					l.tb.Errorf("send: status %d", res.StatusCode)
				}
			}
		})
	}
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the load, not synchronization
		}
		next <- i
	}
	close(next)
	wg.Wait()
	end := time.Now()
	// Updates coalesce per conversation in a busy connection's queue, but
	// each conversation's last message always arrives.
	poll.Until(l.tb, time.Minute, "the subscriber's last updates", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i := max(0, total-conversations); i < total; i++ {
			if _, waiting := l.sentAt[fmt.Sprintf("m%d", base+i)]; waiting {
				return false
			}
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.sentAt)
	return loadResult{start: start, end: end, sent: total, acks: acks, fresh: slices.Clone(l.fresh)}
}
