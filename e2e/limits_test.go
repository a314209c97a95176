package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/gateway"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/server"
)

// TestRateLimitPerCredential: an agent token flooding the node gets 429 with
// Retry-After, while another agent and the account key, in the same
// seconds, get no error at all.
func TestRateLimitPerCredential(t *testing.T) {
	n := testNode(t) // the defaults: agent 20/s (bursts of 40), key 10,000/s
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	k := c.with(a.key)
	other := k.must(201, "POST", "/v1/agents", obj{"name": "Calm", "email": "calm@example.com", "inbox_ids": []string{a.inbox}})
	calm := c.with(str(t, other, "token"))

	var limited atomic.Int64
	var mu sync.Mutex
	var firstLimited *http.Response
	var firstBody []byte
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", n.URL()+"/v1/inboxes", nil)
				req.Header.Set("Authorization", "Bearer "+a.agentToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					limited.Add(1)
					mu.Lock()
					if firstLimited == nil {
						firstLimited, firstBody = res, body
					}
					mu.Unlock()
				default:
					t.Errorf("flooding agent: status %d: %s", res.StatusCode, body)
				}
			}
		})
	}
	poll.Until(t, 30*time.Second, "the flooding agent to be limited", func() bool { return limited.Load() > 0 })
	// The flood goes on: the others work in the same seconds. 30 requests
	// stay within the calm agent's burst, so any 429 would be the flood's.
	for i := range 30 {
		calm.must(200, "GET", "/v1/inboxes", nil)
		k.must(200, "GET", "/v1/inboxes", nil)
		inbound(k, a.inbox, phoneN(i), "during the flood")
	}
	close(stop)
	wg.Wait()

	checkErr(t, response{Status: firstLimited.StatusCode, Body: firstBody}, 429, "rate_limited", "flooding agent")
	if secs, err := strconv.Atoi(firstLimited.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("Retry-After %q: want whole seconds ≥ 1", firstLimited.Header.Get("Retry-After"))
	}
	metrics := string(c.do("GET", "/metrics", nil).Body)
	if !strings.Contains(metrics, `switchboard_rate_limited_total{kind="agent"}`) || strings.Contains(metrics, `switchboard_rate_limited_total{kind="key"}`) {
		t.Errorf("switchboard_rate_limited_total should count the agent's refusals and none of the key's")
	}
	poll.Until(t, 10*time.Second, "the flooding agent's bucket to refill", func() bool {
		return c.with(a.agentToken).do("GET", "/v1/inboxes", nil).Status == http.StatusOK
	})
}

// TestWebsocketFrameRate: an agent's frames over 20/s are answered with
// rate_limited error frames and the connection stays; another agent's
// connection is unaffected.
func TestWebsocketFrameRate(t *testing.T) {
	n := testNode(t)
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	other := c.with(a.key).must(201, "POST", "/v1/agents", obj{"name": "Calm", "email": "calm@example.com", "inbox_ids": []string{a.inbox}})
	flood := mustWS(t, n.URL(), wsOpts{query: a.agentToken})
	calm := mustWS(t, n.URL(), wsOpts{query: str(t, other, "token")})

	const sent = 120
	for i := range sent {
		flood.ping(fmt.Sprint("f", i))
	}
	for i := range 20 { // within the calm agent's burst
		calm.ping(fmt.Sprint("c", i))
	}
	pongs, limited := 0, 0
	for range sent {
		f := flood.next(15 * time.Second)
		switch {
		case f.typ() == "pong":
			pongs++
		case f.typ() == "error" && f.obj("error")["code"] == "rate_limited" && strings.HasPrefix(f.str("ref"), "f"):
			limited++
		default:
			t.Fatalf("flooding agent got %v", f.m)
		}
	}
	// 20 frames/s: the burst is one second's worth, 20 (and what the bucket
	// refills while the flood is read, far less than another 20).
	if limited == 0 || pongs < 20 || pongs >= 40 {
		t.Fatalf("%d pongs and %d rate_limited of %d pings: want the burst of 20 answered and the rest limited", pongs, limited, sent)
	}
	for i := range 20 {
		if f := calm.expect("pong"); f.str("ref") != fmt.Sprint("c", i) {
			t.Fatalf("calm agent: %v", f.m)
		}
	}
	// The flooding connection stays open and is served again once its bucket refills.
	poll.Until(t, 10*time.Second, "a pong after the flood", func() bool {
		flood.ping("again")
		return flood.next(15*time.Second).typ() == "pong"
	})
}

// TestWebsocketsPerCredential: a credential's websockets are capped before
// the upgrade; others are not affected, and a closed one frees its place.
func TestWebsocketsPerCredential(t *testing.T) {
	n := testNode(t, func(c *server.Config) { c.Limits.WSPerCredential = 2 })
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	first := mustWS(t, n.URL(), wsOpts{query: a.agentToken})
	mustWS(t, n.URL(), wsOpts{token: a.agentToken})
	_, res, err := dialWS(t, n.URL(), wsOpts{query: a.agentToken})
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third websocket of one token: %v %v, want 429", err, res)
	}
	if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("third websocket's Retry-After %q: want whole seconds ≥ 1", res.Header.Get("Retry-After"))
	}
	// The account key and a further token of the same agent have places of their own.
	mustWS(t, n.URL(), wsOpts{token: a.key}).ping("k")
	second := str(t, c.with(a.key).must(201, "POST", "/v1/agents/"+a.agentID+"/tokens", nil), "token")
	mustWS(t, n.URL(), wsOpts{query: second}).ping("t")
	if metrics := string(c.do("GET", "/metrics", nil).Body); !strings.Contains(metrics, "\nswitchboard_ws_connections 4\n") {
		t.Errorf("/metrics should count the 4 open websockets as switchboard_ws_connections 4")
	}

	_ = first.c.CloseNow()
	poll.Until(t, 10*time.Second, "a place freed by a closed websocket", func() bool {
		ws, _, err := dialWS(t, n.URL(), wsOpts{query: a.agentToken})
		if err == nil {
			_ = ws.c.CloseNow()
		}
		return err == nil
	})
}

// TestSlowClientsAreCut: headers trickled (slowloris), a body trickled and an
// idle keep-alive connection are each cut by the server while the client
// would still hold them.
func TestSlowClientsAreCut(t *testing.T) {
	timeouts := gateway.Timeouts{Header: 300 * time.Millisecond, Body: 500 * time.Millisecond, Idle: 400 * time.Millisecond}
	n := testNode(t, func(c *server.Config) { c.HTTPTimeouts = timeouts })
	c := api{t: t, base: n.URL()}
	a := newTenant(t, c, "Acme")
	addr := strings.TrimPrefix(n.URL(), "http://")
	const trickleFor = 30 * time.Second // far longer than any timeout

	// trickle writes prefix, then one byte of rest every 50 ms; it returns
	// how long the server took to end the connection (read EOF or error),
	// and what it answered, if anything.
	trickle := func(t *testing.T, prefix, rest string) (time.Duration, string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, prefix); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; time.Since(start) < trickleFor; i = (i + 1) % len(rest) {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte{rest[i]}); err != nil {
					return
				}
			}
		}()
		answer, _ := io.ReadAll(conn) // until the server closes
		close(done)
		return time.Since(start), answer2status(answer)
	}

	t.Run("slowloris headers", func(t *testing.T) {
		took, _ := trickle(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
		if took < timeouts.Header || took >= trickleFor {
			t.Fatalf("connection cut after %v: want after the %v header timeout, well before the client stopped", took, timeouts.Header)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		before := len(list(t, c.with(a.key).must(200, "GET", "/v1/inboxes", nil), "inboxes"))
		body := `{"name": "never finished"}`
		took, status := trickle(t, fmt.Sprintf("POST /v1/inboxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", a.key, 1<<16), body)
		if took < timeouts.Body || took >= trickleFor {
			t.Fatalf("connection cut after %v: want after the %v body timeout, well before the client stopped", took, timeouts.Body)
		}
		if status == "201" {
			t.Fatal("a body that never arrived created an inbox")
		}
		if after := len(list(t, c.with(a.key).must(200, "GET", "/v1/inboxes", nil), "inboxes")); after != before {
			t.Fatalf("%d inboxes after the slow body, want %d", after, before)
		}
	})
	// Connection: Upgrade on an ordinary request lifts no deadline (with or
	// without credentials, on any path, the websocket's included).
	for name, prefix := range map[string]string{
		"slow body claiming an upgrade": fmt.Sprintf("POST /v1/inboxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nConnection: Upgrade\r\nContent-Length: %d\r\n\r\n", a.key, 1<<16),
		"slow body to an unknown path claiming an upgrade": "POST /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 65536\r\n\r\n",
		"websocket handshake with a slow body": "GET /v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + a.key + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 65536\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			took, status := trickle(t, prefix, `{"name": "never finished"}`)
			if took >= trickleFor {
				t.Fatalf("connection held for %v: the body deadline was lifted", took)
			}
			if status == "101" || status == "201" {
				t.Fatalf("answered %s", status)
			}
		})
	}
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("first request: %v %v", res, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		// The connection is kept alive, then closed once idle.
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the server sent bytes nobody asked for")
		}
		if took := time.Since(start); took < timeouts.Idle || took >= trickleFor {
			t.Fatalf("idle connection closed after %v, want after the %v idle timeout", took, timeouts.Idle)
		}
	})
}

// answer2status is the status code of a raw HTTP answer ("" if none).
func answer2status(raw []byte) string {
	if f := strings.Fields(string(raw)); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
		return f[1]
	}
	return ""
}
