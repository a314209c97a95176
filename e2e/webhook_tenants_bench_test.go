package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// BenchmarkWebhookLagBesideSlowTenant measures one account's webhook
// delivery lag (journal commit → its receiver's 2xx) while another
// account's three webhooks go to a receiver that answers every delivery
// after 900 ms: slow, but within the deliverer's slow threshold, so that
// those attempts keep their workers, and together more deliveries than the
// deliverer's workers can send at that pace. Both accounts send 150
// inbound messages a second for 10 s. The deliverer runs with its
// production defaults. Run with
// `go test -run '^$' -bench WebhookLagBesideSlowTenant -benchtime 1x ./e2e`.
func BenchmarkWebhookLagBesideSlowTenant(b *testing.B) {
	const (
		rate          = 150 // inbound messages per second, each account
		seconds       = 10
		conversations = 100
		slowAnswer    = 900 * time.Millisecond
	)
	n := testNode(b, func(c *server.Config) { c.WebhookAllowPrivate = true })
	c := api{t: b, base: n.URL()}
	slowTenant, measured := newTenant(b, c, "Slow"), newTenant(b, c, "Measured")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(slowAnswer): // the receiver's behaviour under test
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(slow.Close)
	for range 3 {
		c.with(slowTenant.key).must(201, "POST", "/v1/webhooks", obj{"url": slow.URL + "/hook", "events": []string{"message.created"}})
	}
	rcv := newLagReceiver(b)
	c.with(measured.key).must(201, "POST", "/v1/webhooks", obj{"url": rcv.srv.URL + "/hook"})
	loads := map[string]*load{}
	for _, tn := range []tenant{slowTenant, measured} {
		l := newLoad(b, n.URL(), tn.key, tn.inbox)
		ws := mustWS(b, n.URL(), wsOpts{token: tn.key})
		ws.subscribe(tn.inbox, nil)
		go l.readUpdates(ws)
		loads[tn.key] = l
	}

	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		var run loadResult
		wg.Go(func() { loads[slowTenant.key].run(rate, conversations, seconds*time.Second) })
		wg.Go(func() { run = loads[measured.key].run(rate, conversations, seconds*time.Second) })
		wg.Wait()
		var want int
		if err := n.Store().Pool().QueryRow(b.Context(), `SELECT count(*) FROM journal WHERE inbox_id = $1`, measured.inbox).Scan(&want); err != nil {
			b.Fatal(err)
		}
		poll.Until(b, 5*time.Minute, "every event of the measured account delivered", func() bool { return rcv.count() >= want })
		lags := rcv.lags(b, n, run.start, run.end, measured.inbox)
		reportLags(b, fmt.Sprintf("measured account's delivery lag, %d events at %.0f/s beside the slow account's", len(lags), run.achieved()), lags, rcv)
	}
}
