package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsFrame is a decoded server frame with the time it arrived.
type wsFrame struct {
	m  map[string]any
	at time.Time
}

func (f wsFrame) str(k string) string { s, _ := f.m[k].(string); return s }
func (f wsFrame) num(k string) int64  { n, _ := f.m[k].(float64); return int64(n) }
func (f wsFrame) typ() string         { return f.str("type") }

// lastMessageBody is the body of an update's conversation's last message.
func lastMessageBody(f wsFrame) string {
	lm, _ := f.obj("conversation")["last_message"].(map[string]any)
	body, _ := lm["body"].(string)
	return body
}
func (f wsFrame) obj(k string) map[string]any {
	o, _ := f.m[k].(map[string]any)
	return o
}

// wsClient is a test websocket client. Unless stalled, a goroutine reads
// every frame into a channel.
type wsClient struct {
	t      testing.TB
	c      *websocket.Conn
	frames chan wsFrame
	done   chan struct{}
	err    error
	mu     sync.Mutex
}

type wsOpts struct {
	token   string // header
	query   string // ?access_token=
	origin  string
	stalled bool // do not start the reader
	rcvBuf  int  // client socket receive buffer (small: the server's writes block sooner)
}

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/v1/ws" }

func dialWS(t testing.TB, base string, o wsOpts) (*wsClient, *http.Response, error) {
	t.Helper()
	u := wsURL(base)
	if o.query != "" {
		u += "?access_token=" + o.query
	}
	h := http.Header{}
	if o.token != "" {
		h.Set("Authorization", "Bearer "+o.token)
	}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		if o.rcvBuf > 0 {
			d.Control = func(network, address string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvBuf)
				})
				if err != nil {
					return err
				}
				return serr
			}
		}
		return d.DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, res, err
	}
	c.SetReadLimit(16 << 20)
	wc := &wsClient{t: t, c: c, frames: make(chan wsFrame, 100000), done: make(chan struct{})}
	if !o.stalled {
		go wc.read(0)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return wc, res, nil
}

func mustWS(t testing.TB, base string, o wsOpts) *wsClient {
	t.Helper()
	c, res, err := dialWS(t, base, o)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial websocket: %v (status %d)", err, status)
	}
	return c
}

// read takes frames into c.frames until the connection ends, pausing
// after each (a client slower than the stream when pause > 0).
func (c *wsClient) read(pause time.Duration) {
	defer close(c.done)
	for {
		_, raw, err := c.c.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		f := wsFrame{at: time.Now()}
		if err := json.Unmarshal(raw, &f.m); err != nil {
			f.m = map[string]any{"type": "undecodable", "raw": string(raw)}
		}
		c.frames <- f
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// startReading starts the reader of a stalled client.
func (c *wsClient) startReading() { go c.read(0) }

// readSlowly starts the reader of a stalled client, which then takes one
// frame every d: a client slower than the stream (the pause is the
// client's behaviour under test, not a wait for an event).
func (c *wsClient) readSlowly(d time.Duration) { go c.read(d) }

func (c *wsClient) send(v any) {
	c.t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(raw)
}

func (c *wsClient) sendRaw(raw []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, raw); err != nil {
		c.t.Fatalf("websocket write: %v", err)
	}
}

// next returns the next frame, failing the test after d.
func (c *wsClient) next(d time.Duration) wsFrame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("websocket closed: %v", c.err)
	case <-time.After(d):
		c.t.Fatalf("no frame within %s", d)
	}
	return wsFrame{}
}

// expect returns the next frame and fails unless its type is typ.
func (c *wsClient) expect(typ string) wsFrame {
	c.t.Helper()
	f := c.next(15 * time.Second)
	if f.typ() != typ {
		c.t.Fatalf("got frame %v, want type %s", f.m, typ)
	}
	return f
}

// until returns the first frame satisfying ok, skipping others.
func (c *wsClient) until(d time.Duration, ok func(wsFrame) bool) wsFrame {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := c.next(time.Until(deadline))
		if ok(f) {
			return f
		}
	}
}

// subscribe subscribes and returns the subscribed frame and the snapshot
// (nil when resumed).
func (c *wsClient) subscribe(inbox string, extra map[string]any) (wsFrame, *wsFrame) {
	c.t.Helper()
	msg := map[string]any{"type": "subscribe", "id": "sub-" + inbox, "inbox_id": inbox}
	for k, v := range extra {
		msg[k] = v
	}
	c.send(msg)
	sub := c.expect("subscribed")
	if sub.str("ref") != "sub-"+inbox || sub.str("inbox_id") != inbox {
		c.t.Fatalf("subscribed: %v", sub.m)
	}
	if resumed, _ := sub.m["resumed"].(bool); resumed {
		return sub, nil
	}
	if _, asked := extra["resume"]; asked {
		// A resume the inbox cannot serve says why before its snapshot.
		if f := c.expect("resync"); f.str("inbox_id") != inbox || f.str("reason") == "" {
			c.t.Fatalf("resync: %v", f.m)
		}
	}
	snap := c.expect("snapshot")
	return sub, &snap
}

func (c *wsClient) ping(id string) {
	c.t.Helper()
	c.send(map[string]any{"type": "ping", "id": id})
}

func inbound(a api, inbox, phone, body string) map[string]any {
	return a.must(201, "POST", "/v1/inboxes/"+inbox+"/messages", map[string]any{"contact": map[string]any{"phone": phone}, "body": body})
}

func phoneN(i int) string { return fmt.Sprintf("+1415555%04d", i) }

// percentiles of durations (sorted in place).
func percentiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return
	}
	sortDurations(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
}

func sortDurations(ds []time.Duration) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}
