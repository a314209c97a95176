package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/server"
)

// receiver is a real HTTP webhook receiver that verifies signatures,
// de-duplicates on webhook-id, and checks per-conversation order: every
// event of the account is delivered, so the first receipt of each
// conversation's events must come as versions 1, 2, 3, ...
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	mode   atomic.Value // "ok", "500", "hang", "down"

	mu      sync.Mutex
	seen    map[string]bool
	last    map[string]int64
	dups    int
	badSig  int
	order   []string
	maxLag  time.Duration
	lags    []time.Duration
	lagFrom time.Time // lags are recorded for events created after this
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, seen: map[string]bool{}, last: map[string]int64{}}
	r.mode.Store("ok")
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	switch r.mode.Load().(string) {
	case "500":
		http.Error(w, "boom", 500)
		return
	case "hang":
		select {
		case <-req.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	case "down":
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	var p webhooks.Payload
	err := json.Unmarshal(body, &p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || webhooks.Verify(r.secret, req.Header, body, now, 5*time.Minute) != nil || req.Header.Get("webhook-id") != p.ID {
		r.badSig++
		http.Error(w, "bad signature", 400)
		return
	}
	if r.seen[p.ID] {
		r.dups++
		w.WriteHeader(204)
		return
	}
	r.seen[p.ID] = true
	if p.Version != r.last[p.ConversationID]+1 {
		r.order = append(r.order, fmt.Sprintf("%s: version %d after %d", p.ConversationID, p.Version, r.last[p.ConversationID]))
	}
	r.last[p.ConversationID] = max(r.last[p.ConversationID], p.Version)
	if !r.lagFrom.IsZero() && p.CreatedAt.After(r.lagFrom) {
		lag := now.Sub(p.CreatedAt)
		r.lags = append(r.lags, lag)
		r.maxLag = max(r.maxLag, lag)
	}
	w.WriteHeader(204)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// webhookNode is a node whose deliverer retries fast, so faults resolve
// within a test.
func webhookNode(t *testing.T) *server.Node {
	return testNode(t, func(c *server.Config) {
		c.WebhookAllowPrivate = true
		c.Webhooks = webhooks.Config{RetryMin: 20 * time.Millisecond, RetryMax: 300 * time.Millisecond,
			Timeout: time.Second, CircuitMin: 100 * time.Millisecond, CircuitMax: 500 * time.Millisecond,
			DispatchInterval: 50 * time.Millisecond, LockRetry: 100 * time.Millisecond}
	})
}

func createWebhook(t *testing.T, k api, r *receiver) string {
	t.Helper()
	res := k.must(201, "POST", "/v1/webhooks", obj{"url": r.srv.URL + "/hook", "description": "test"})
	r.secret = str(t, res, "secret")
	return str(t, sub(t, res, "webhook"), "id")
}

// traffic drives every kind of event over n conversations: inbound
// messages, replies, notes, call events, updates and delivery reports.
// rounds per conversation; each round is about 7 events.
func traffic(t *testing.T, k api, inbox string, n, rounds int, between func(round int)) {
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for round := 0; round < rounds; round++ {
				for i := w; i < n; i += 8 {
					c := obj{"phone": fmt.Sprintf("+1415777%04d", i)}
					in := k.must(201, "POST", "/v1/inboxes/"+inbox+"/messages", obj{"contact": c, "body": fmt.Sprintf("hello %d", round)})
					conv := in["conversation_id"].(string)
					rep := k.must(201, "POST", "/v1/conversations/"+conv+"/messages", obj{"body": "reply"})
					k.must(201, "POST", "/v1/conversations/"+conv+"/messages", obj{"body": "note", "kind": "note"})
					k.must(200, "POST", "/v1/conversations/"+conv+"/messages/"+rep["id"].(string)+"/status", obj{"status": "sent"})
					k.must(200, "POST", "/v1/conversations/"+conv+"/messages/"+rep["id"].(string)+"/status", obj{"status": "delivered"})
					callID := fmt.Sprintf("call-%d-%d", i, round)
					k.must(200, "POST", "/v1/inboxes/"+inbox+"/calls", obj{"contact": c, "call_id": callID, "state": "ringing"})
					k.must(200, "PATCH", "/v1/conversations/"+conv, obj{"tags_add": []string{fmt.Sprintf("r%d", round)}})
				}
				if w == 0 && between != nil {
					between(round)
				}
			}
		})
	}
	wg.Wait()
}

// journalEvents lists the account's committed events as webhook event ids.
func journalEvents(t *testing.T, n *server.Node) []string {
	t.Helper()
	rows, err := n.Store().Pool().Query(context.Background(), `SELECT conversation_id, version FROM journal`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		var v int64
		if err := rows.Scan(&c, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, webhooks.EventID(c, v))
	}
	return out
}

func checkAllDelivered(t *testing.T, n *server.Node, r *receiver, name string) {
	t.Helper()
	want := journalEvents(t, n)
	poll.Until(t, 60*time.Second, name+" receives every event", func() bool { return r.count() >= len(want) })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range want {
		if !r.seen[id] {
			t.Errorf("%s: event %s never arrived", name, id)
		}
	}
	if len(r.seen) != len(want) {
		t.Errorf("%s: %d distinct events, journal has %d", name, len(r.seen), len(want))
	}
	if r.badSig > 0 {
		t.Errorf("%s: %d deliveries failed signature verification", name, r.badSig)
	}
	if len(r.order) > 0 {
		t.Errorf("%s: out of order: %v", name, r.order[:min(5, len(r.order))])
	}
	t.Logf("%s: %d events, %d duplicates", name, len(r.seen), r.dups)
}

// A few thousand events over 100 conversations reach the receiver exactly
// once after de-duplication, signed, in version order per conversation —
// with the deliverer stopped and restarted in the middle.
func TestWebhooksEveryEventOnceInOrder(t *testing.T) {
	n := webhookNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Hooks")
	k := c.with(tn.key)
	r := newReceiver(t)
	createWebhook(t, k, r)
	r.lagFrom = time.Now()
	traffic(t, k, tn.inbox, 100, 4, func(round int) {
		if round == 1 {
			n.StopDeliverer()
			n.StartDeliverer()
		}
	})
	if got := len(journalEvents(t, n)); got < 2000 {
		t.Fatalf("only %d events", got)
	}
	checkAllDelivered(t, n, r, "receiver")
	r.mu.Lock()
	lags := slices.Clone(r.lags)
	r.mu.Unlock()
	slices.Sort(lags)
	t.Logf("lag: p50 %v p99 %v max %v over %d events", lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1], len(lags))
}

// One receiver answers 500, then times out, then is down, then recovers;
// a second receiver of the same account stays healthy and is never held up
// by the first. Afterwards both have everything, in order.
func TestWebhooksFaultyReceiverDoesNotDelayHealthyOne(t *testing.T) {
	n := webhookNode(t)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Hooks")
	k := c.with(tn.key)
	bad, good := newReceiver(t), newReceiver(t)
	badID := createWebhook(t, k, bad)
	createWebhook(t, k, good)
	good.lagFrom = time.Now()
	// 500s, then timeouts, then down — and it stays down until the
	// healthy receiver has every event: proof that it never waited for the
	// faulty one, without timing anything.
	modes := []string{"500", "hang", "down"}
	bad.mode.Store(modes[0])
	traffic(t, k, tn.inbox, 100, 3, func(round int) { bad.mode.Store(modes[min(round+1, 2)]) })
	checkAllDelivered(t, n, good, "healthy receiver")
	if got := bad.count(); got >= len(journalEvents(t, n)) {
		t.Fatalf("the faulty receiver has everything (%d) before recovering: the faults did not bite", got)
	}
	stats := c.with(testAdminToken).must(200, "GET", "/v1/admin/stats", nil)
	for _, f := range []string{"webhook_pending", "webhook_active", "webhook_lag_p99_ms", "webhook_delivered_total"} {
		if _, ok := stats[f]; !ok {
			t.Errorf("/v1/admin/stats lacks %s: %v", f, stats)
		}
	}
	pending := k.must(200, "GET", "/v1/webhooks/"+badID+"/deliveries?status=pending", nil)
	if len(list(t, pending, "deliveries")) == 0 {
		t.Fatal("the faulty receiver's deliveries must be listed as pending")
	}
	// Paged two at a time, the listing holds each delivery once.
	seen := map[string]bool{}
	for path := "/v1/webhooks/" + badID + "/deliveries?limit=2"; ; {
		page := k.must(200, "GET", path, nil)
		for _, d := range list(t, page, "deliveries") {
			id := d.(map[string]any)["event_id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice while paging", id)
			}
			seen[id] = true
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/webhooks/" + badID + "/deliveries?limit=2&cursor=" + url.QueryEscape(next)
	}
	if len(seen) < 2 {
		t.Fatalf("paging listed %d deliveries; want the faulty receiver's backlog", len(seen))
	}
	expectErr(t, k, 400, "invalid_argument", "GET", "/v1/webhooks/"+badID+"/deliveries?cursor=nope", nil)
	bad.mode.Store("ok")
	checkAllDelivered(t, n, bad, "recovered receiver")
	good.mu.Lock()
	lags := slices.Clone(good.lags)
	good.mu.Unlock()
	slices.Sort(lags)
	t.Logf("healthy receiver lag during the faults: p50 %v p99 %v max %v over %d events",
		lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1], len(lags))
	// Outcomes are recorded just after the receiver answered.
	poll.Until(t, 10*time.Second, "no pending deliveries after recovery", func() bool {
		res := k.must(200, "GET", "/v1/webhooks/"+badID+"/deliveries?status=pending", nil)
		return len(list(t, res, "deliveries")) == 0
	})
}

// Delete stops deliveries; list shows no secret; bad URLs are refused.
func TestWebhookEndpoints(t *testing.T) {
	n := testNode(t) // private destinations refused here
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Hooks")
	k := c.with(tn.key)
	for _, u := range []string{"http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
		"http://[::1]/x", "ftp://example.com/x", "/relative", ""} {
		expectErr(t, k, 400, "invalid_argument", "POST", "/v1/webhooks", obj{"url": u})
	}
	expectErr(t, k, 400, "invalid_argument", "POST", "/v1/webhooks", obj{"url": "https://93.184.215.14/x", "events": []string{"nope"}})
	expectErr(t, c.with(tn.agentToken), 403, "forbidden", "POST", "/v1/webhooks", obj{"url": "https://93.184.215.14/x"})
	res := k.must(201, "POST", "/v1/webhooks", obj{"url": "https://93.184.215.14/x", "events": []string{"message.created"}})
	id := str(t, sub(t, res, "webhook"), "id")
	if s := str(t, res, "secret"); len(s) < 20 || s[:6] != "whsec_" {
		t.Fatalf("secret %q", s)
	}
	l := k.must(200, "GET", "/v1/webhooks", nil)
	hooks := list(t, l, "webhooks")
	if len(hooks) != 1 || hooks[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list: %v", l)
	}
	other := newTenant(t, c, "Other")
	expectErr(t, c.with(other.key), 404, "not_found", "DELETE", "/v1/webhooks/"+id, nil)
	expectErr(t, k, 404, "not_found", "POST", "/v1/webhooks/"+id+"/deliveries/evt_x_1/retry", nil)
	k.must(204, "DELETE", "/v1/webhooks/"+id, nil)
	expectErr(t, k, 404, "not_found", "GET", "/v1/webhooks/"+id+"/deliveries", nil)
}

// TestWebhooksWithoutASecretKey: on the contract's settings alone (no
// SWITCHBOARD_SECRET_KEY) webhooks are created and signed, with a key the
// database keeps: a second node opens what the first sealed, and once the
// variable is set the webhooks made before still deliver.
func TestWebhooksWithoutASecretKey(t *testing.T) {
	db := pgtest.NewDatabase(t)
	settings := func(key string) func(*server.Config) {
		return func(c *server.Config) {
			c.SecretKey = key
			c.WebhookAllowPrivate = true
			c.Webhooks = webhooks.Config{RetryMin: 20 * time.Millisecond, RetryMax: 300 * time.Millisecond, DispatchInterval: 50 * time.Millisecond}
		}
	}
	n1, stop1 := nodeOn(t, db, settings(""))
	c := api{t: t, base: n1.URL()}
	tn := newTenant(t, c, "NoKey")
	r := newReceiver(t)
	createWebhook(t, c.with(tn.key), r)
	inbound(c.with(tn.key), tn.inbox, phoneN(1), "one")
	poll.Until(t, 20*time.Second, "the first delivery", func() bool { return r.count() == 1 })
	stop1()

	// Another node without the variable; then one with it.
	for i, key := range []string{"", webhooks.NewKey()} {
		n, stop := nodeOn(t, db, settings(key))
		inbound(api{t: t, base: n.URL(), token: tn.key}, tn.inbox, phoneN(1), fmt.Sprint("next ", i))
		poll.Until(t, 20*time.Second, "a delivery from the next node", func() bool { return r.count() == 2+i })
		stop()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badSig != 0 || len(r.order) != 0 {
		t.Fatalf("%d bad signatures, order %v", r.badSig, r.order)
	}
}
