package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"github.com/switchboard-dev/switchboard/server"
)

// TestWSFramesInFlightFinishOnStop: a node stopping gracefully finishes the
// frame a websocket is handling, as it finishes HTTP requests in flight:
// every note the stream wrote was acknowledged before the 1001 close, and
// frames that came too late are answered unavailable, not dropped.
func TestWSFramesInFlightFinishOnStop(t *testing.T) {
	url := pgtest.NewDatabase(t)
	n, stop := nodeOn(t, url)
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Acme")
	conv := inbound(c.with(tn.key), tn.inbox, phoneN(1), "hello")["conversation_id"].(string)

	ws := mustWS(t, n.URL(), wsOpts{token: tn.key})
	const frames = 2000
	go func() {
		// As fast as the socket takes them: the server handles one at a
		// time, so one is in flight whenever the node stops.
		for i := range frames {
			raw := fmt.Sprintf(`{"type":"send","id":%d,"conversation_id":%q,"body":"m%d","kind":"note","client_id":"c%d"}`, i, conv, i, i)
			if err := ws.c.Write(t.Context(), websocket.MessageText, []byte(raw)); err != nil {
				return
			}
		}
	}()

	acked, refused := map[string]bool{}, 0
	stopped := make(chan struct{})
	for done := false; !done; {
		select {
		case f := <-ws.frames:
			switch {
			case f.typ() == "ack":
				acked[f.obj("message")["body"].(string)] = true
				if len(acked) == 20 {
					go func() { stop(); close(stopped) }()
				}
			case f.typ() == "error" && f.obj("error")["code"] == "unavailable":
				refused++
			default:
				t.Fatalf("unexpected frame %v", f.m)
			}
		case <-ws.done:
			done = true
		case <-time.After(60 * time.Second):
			t.Fatalf("connection still open, %d acks", len(acked))
		}
	}
	<-stopped
	ws.mu.Lock()
	err := ws.err
	ws.mu.Unlock()
	if status := websocket.CloseStatus(err); status != websocket.StatusGoingAway {
		t.Fatalf("closed with %v (%v), want 1001", status, err)
	}
	if len(acked) >= frames {
		t.Fatalf("all %d frames handled before the stop took effect", frames)
	}

	n2, _ := nodeOn(t, url)
	k2 := api{t: t, base: n2.URL(), token: tn.key}
	written := map[string]bool{}
	for path := "/v1/conversations/" + conv + "/messages?limit=200"; ; {
		page := k2.must(200, "GET", path, nil)
		for _, m := range page["messages"].([]any) {
			if body := m.(map[string]any)["body"].(string); strings.HasPrefix(body, "m") {
				written[body] = true
			}
		}
		next, ok := page["next_before"].(float64)
		if !ok {
			break
		}
		path = fmt.Sprintf("/v1/conversations/%s/messages?limit=200&before=%d", conv, int64(next))
	}
	for body := range written {
		if !acked[body] {
			t.Errorf("note %s was written but never acknowledged", body)
		}
	}
	for body := range acked {
		if !written[body] {
			t.Errorf("note %s was acknowledged but is not in the timeline", body)
		}
	}
	t.Logf("%d notes acknowledged and written, %d frames refused while stopping", len(acked), refused)
}

// TestWSCloseDoesNotWaitForSlowRequests: a stopping node closes its
// websockets beside the HTTP requests it finishes, not after the slowest
// of them: here a request whose body never comes holds the HTTP side.
func TestWSCloseDoesNotWaitForSlowRequests(t *testing.T) {
	n, stop := nodeOn(t, pgtest.NewDatabase(t))
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Acme")
	ws := mustWS(t, n.URL(), wsOpts{token: tn.key})
	ws.ping("up")
	ws.expect("pong")

	slow, err := net.Dial("tcp", strings.TrimPrefix(n.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/inboxes/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", tn.inbox, tn.key)
	// The request is in its handler, reading the body, once the node
	// counts it in flight.
	poll.Until(t, 10*time.Second, "the slow request in flight", func() bool {
		return strings.Contains(string(c.do("GET", "/metrics", nil).Body),
			`switchboard_http_requests_in_flight{route="POST /v1/inboxes/{inbox_id}/messages"} 1`)
	})

	go stop()
	select {
	case <-ws.done:
	case <-time.After(20 * time.Second): // the body deadline is 30 s
		t.Fatal("the websocket waited for the slow request")
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if status := websocket.CloseStatus(ws.err); status != websocket.StatusGoingAway {
		t.Fatalf("closed with %v (%v), want 1001", status, ws.err)
	}
}

// TestStopDrainsKeepAliveConnections: a stopping node first answers every
// request with Connection: close and /readyz with 503 "draining", while it
// still serves: a client whose keep-alive connection is open gets its next
// request answered, and learns to open a new connection for the one after.
func TestStopDrainsKeepAliveConnections(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const drain = 5 * time.Second
	n, stop := nodeOn(t, url, func(c *server.Config) { c.ShutdownDrain = drain })
	c := api{t: t, base: n.URL()}
	tn := newTenant(t, c, "Acme")
	k := c.with(tn.key)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func(path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", n.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tn.key)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res
	}
	if res := get("/v1/inboxes"); res.StatusCode != 200 || res.Close {
		t.Fatalf("before the stop: %d, close %v", res.StatusCode, res.Close)
	}
	stopped, began := make(chan struct{}), time.Now()
	go func() { stop(); close(stopped) }()
	poll.Until(t, 30*time.Second, "/readyz to answer 503 draining", func() bool {
		r := c.do("GET", "/readyz", nil)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), `"draining"`)
	})
	res := get("/v1/inboxes")
	if res.StatusCode != 200 || !res.Close {
		t.Fatalf("while draining: %d, Connection: close %v; want 200 and the connection closed after it", res.StatusCode, res.Close)
	}
	inbound(k, tn.inbox, phoneN(1), "still served while draining")
	<-stopped
	if took := time.Since(began); took < drain {
		t.Fatalf("the stop took %v, less than its drain", took)
	}
}
