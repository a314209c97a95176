package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/tidwall/gjson"
)

// flexString accepts a JSON string or number: the API says epoch is a
// string, and a number there should not make every frame undecodable.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	*f = flexString(bytes.TrimSpace(b))
	return nil
}

// wsFrame is every server frame the tool reads, flattened.
type wsFrame struct {
	Type          string            `json:"type"`
	Ref           string            `json:"ref"`
	InboxID       string            `json:"inbox_id"`
	Epoch         flexString        `json:"epoch"`
	Seq           int64             `json:"seq"`
	Resumed       bool              `json:"resumed"`
	Conversation  json.RawMessage   `json:"conversation"`
	Conversations []json.RawMessage `json:"conversations"`
	Total         *int              `json:"total"`
	Reason        string            `json:"reason"`
	Error         *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func summaryOf(raw json.RawMessage) (id string, version int64, hash uint64, err error) {
	var s summaryRef
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", 0, 0, fmt.Errorf("decode conversation summary: %w", err)
	}
	if s.ID == "" {
		return "", 0, 0, errors.New("conversation summary without id")
	}
	return s.ID, s.Version, contentHash(raw), nil
}

// contentHash identifies a summary's exact bytes: the same version with
// other bytes is a forked history, the same bytes a redelivery.
func contentHash(raw []byte) uint64 {
	h := fnv.New64a()
	h.Write(raw)
	return h.Sum64()
}

// subscriber is one agent's websocket, subscribed to one inbox. It reports
// what it receives to the tracker and reconnects (resuming when it can) if
// the connection drops during the run.
type subscriber struct {
	id    int // tracker subscriber id
	inbox string
	wsURL string
	r     *runner

	ready     chan struct{} // closed at the first snapshot
	done      chan struct{} // closed when run returns
	readyOnce sync.Once
	mu        sync.Mutex
	lastErr   error
}

// maxReconnects bounds how often one subscriber reconnects in a run.
const maxReconnects = 5

func wsURLFor(base, token string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse --url: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	u.Path += "/v1/ws"
	u.RawQuery = url.Values{"access_token": {token}}.Encode()
	return u.String(), nil
}

func (s *subscriber) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

func (s *subscriber) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// run keeps the subscription alive until ctx is done.
func (s *subscriber) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var resume *resumePoint
		if epoch, seq, ok := s.r.tr.resumePoint(s.id); ok {
			resume = &resumePoint{Epoch: epoch, Seq: seq}
		}
		err := s.session(ctx, resume)
		if ctx.Err() != nil {
			return
		}
		s.setErr(err)
		s.r.fail("ws", err)
		if attempt >= maxReconnects {
			return
		}
		s.r.reconnects.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

type resumePoint struct {
	Epoch string `json:"epoch"`
	Seq   int64  `json:"seq"`
}

// session is one connection: subscribe, then read until it breaks.
func (s *subscriber) session(ctx context.Context, resume *resumePoint) error {
	dialCtx, cancel := context.WithTimeout(ctx, s.r.cfg.RequestTimeout)
	conn, _, err := websocket.Dial(dialCtx, s.wsURL, &websocket.DialOptions{HTTPClient: s.r.api.http})
	cancel()
	if err != nil {
		return fmt.Errorf("subscriber %d: dial: %w", s.id, err)
	}
	defer conn.CloseNow()
	// A snapshot is a page of up to 200 summaries, well past the default.
	conn.SetReadLimit(maxBody)

	sub := map[string]any{"type": "subscribe", "id": "sub", "inbox_id": s.inbox}
	if resume != nil {
		sub["resume"] = resume
	}
	msg, _ := json.Marshal(sub)
	wctx, cancel := context.WithTimeout(ctx, s.r.cfg.RequestTimeout)
	err = conn.Write(wctx, websocket.MessageText, msg)
	cancel()
	if err != nil {
		return fmt.Errorf("subscriber %d: send subscribe: %w", s.id, err)
	}
	// ctx's end closes the connection, which ends the read below: reading
	// under ctx itself would register and remove a watch on it per frame.
	defer context.AfterFunc(ctx, func() { conn.CloseNow() })()
	// One buffer for every frame of the session: conn.Read allocates and
	// grows a fresh one per frame, a tenth of the tool's CPU at 2,000
	// msg/s with its garbage. handle keeps nothing of the bytes it is given.
	var frame bytes.Buffer
	for {
		_, rd, err := conn.Reader(context.Background())
		if err == nil {
			frame.Reset()
			_, err = frame.ReadFrom(rd)
		}
		at := time.Now() // before decoding, which is the tool's cost, not the server's
		if err != nil {
			return fmt.Errorf("subscriber %d: read: %w", s.id, err)
		}
		if err := s.handle(frame.Bytes(), at); err != nil {
			return fmt.Errorf("subscriber %d: %w", s.id, err)
		}
	}
}

// handle applies one frame. An error ends the connection (and the
// subscriber reconnects); malformed frames are counted but tolerated.
func (s *subscriber) handle(data []byte, at time.Time) error {
	if up := gjson.GetManyBytes(data, "type", "inbox_id", "epoch", "seq", "conversation"); up[0].Str == "update" {
		s.update(up, at)
		return nil
	}
	var f wsFrame
	if err := json.Unmarshal(data, &f); err != nil {
		s.r.fail("ws_frame", fmt.Errorf("decode frame: %w", err))
		return nil
	}
	if f.InboxID != "" && f.InboxID != s.inbox {
		return nil
	}
	switch f.Type {
	case "subscribed":
		s.r.tr.subscribed(s.id, string(f.Epoch), f.Seq, f.Resumed)
	case "snapshot":
		convs := make([]snapConv, 0, len(f.Conversations))
		for _, raw := range f.Conversations {
			id, v, h, err := summaryOf(raw)
			if err != nil {
				s.r.fail("ws_frame", fmt.Errorf("snapshot: %w", err))
				continue
			}
			convs = append(convs, snapConv{id: id, version: v, hash: h})
		}
		total := len(convs)
		if f.Total != nil {
			total = *f.Total
		}
		s.r.tr.snapshot(s.id, string(f.Epoch), f.Seq, convs, total, at)
		s.readyOnce.Do(func() { close(s.ready) })
	case "resync":
		s.r.tr.resync(s.id)
	case "error":
		err := errors.New("error frame without details")
		if f.Error != nil {
			err = fmt.Errorf("error frame: %s: %s", f.Error.Code, f.Error.Message)
		}
		if f.Ref == "sub" {
			return fmt.Errorf("subscribe refused: %w", err)
		}
		s.r.fail("ws_error_frame", err)
	}
	return nil
}

// update reads an update frame's fields, picked by handle. Updates are
// nearly all a subscriber reads (one per message per subscriber), so they
// are not decoded: encoding/json validated, decoded and copied each one
// twice (frame, then summary), a third of the tool's CPU — on the cores
// the node under test shares.
func (s *subscriber) update(f []gjson.Result, at time.Time) {
	inbox, epoch, seq, conv := f[1], f[2], f[3], f[4]
	if inbox.Exists() && inbox.String() != s.inbox {
		return
	}
	c := gjson.GetMany(conv.Raw, "id", "version")
	if !conv.IsObject() || c[0].Type != gjson.String || c[0].Str == "" || c[1].Type != gjson.Number || seq.Type != gjson.Number {
		s.r.fail("ws_frame", fmt.Errorf("update frame without seq or conversation id and version: %.200s", conv.Raw))
		return
	}
	s.r.tr.update(s.id, epoch.String(), seq.Int(), c[0].Str, c[1].Int(), contentHash([]byte(conv.Raw)), at)
}
