package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer implements the part of the API the load tool uses, in memory,
// with the ordering guarantees of the real design (one lock orders every
// change; per-connection queues coalesce per conversation), and faults to
// inject so the tests can see each counter catch what it is meant to.
type fakeServer struct {
	t     testing.TB
	URL   string
	Admin string
	srv   *httptest.Server
	f     fakeFaults

	mu        sync.Mutex
	n         int
	keys      map[string]string // api key → account
	agents    map[string]*fakeAgent
	inboxes   map[string]*fakeInbox
	convs     map[string]*fakeConv
	idem      map[string]*fakeMsg // scope|key → message
	calls     map[string]int64    // call id → seq of its item
	index     []fakeDoc
	backlog   []fakeDoc
	paused    bool
	staleDone bool
	skipDone  bool
}

type fakeFaults struct {
	ignoreIdempotency bool          // re-sends create new messages
	staleOnce         bool          // once, send a conversation's previous version after the current one
	skipSeqOnce       bool          // once, advance an inbox seq by 2
	muteContact       string        // never send updates of this contact's conversations
	neverIndex        bool          // search never finds anything
	slowWriter        time.Duration // connections drain their queue this often (so coalesce)
	failPause         bool          // the indexer pause endpoint answers 503
	// answerAhead answers every inbound message only once its conversation
	// has moved on (or after a bound), with the summary current then: what
	// the real server does when it retried a command internally (a cluster
	// try timed out under overload) and answers the retry from the replay.
	answerAhead bool
	// lostFirstAnswer applies the first attempt of every inbound message and
	// reply but never answers it (the connection is dropped): the client
	// times out, retries, and must take the 200 for what it is.
	lostFirstAnswer bool
	// callAnswerDelay holds every answer to a call event this long (a
	// slow server), so that calls due late in the window send their
	// hang-up after it.
	callAnswerDelay time.Duration
}

type fakeAgent struct {
	id, account string
	inboxes     map[string]bool
}

type fakeInbox struct {
	id, account string
	epoch       string
	seq         int64
	conns       map[*fakeConn]bool
	byPhone     map[string]*fakeConv
}

type fakeConv struct {
	id, inbox, phone string
	version          int64
	lastActivity     time.Time
	prev             []byte          // previous summary, for the stale fault
	moved            []chan struct{} // closed at the next bump (answerAhead)
}

type fakeMsg struct {
	id, conv string
	seq      int64
}

type fakeDoc struct {
	inbox, conv, msg, body string
	seq                    int64
}

type fakeConn struct {
	mu    sync.Mutex
	queue []fakeQueued
	wake  chan struct{}
}

type fakeQueued struct {
	conv string // "" never coalesces
	data []byte
}

// push queues a frame, replacing a queued update of the same conversation:
// the coalescing the API allows.
func (c *fakeConn) push(conv string, data []byte) {
	c.mu.Lock()
	if conv != "" {
		for i, q := range c.queue {
			if q.conv == conv {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
	}
	c.queue = append(c.queue, fakeQueued{conv, data})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *fakeConn) take() []fakeQueued {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

func newFakeServer(t testing.TB, f fakeFaults) *fakeServer {
	s := &fakeServer{
		t: t, Admin: "admin-secret", f: f,
		keys: map[string]string{}, agents: map[string]*fakeAgent{},
		inboxes: map[string]*fakeInbox{}, convs: map[string]*fakeConv{}, idem: map[string]*fakeMsg{}, calls: map[string]int64{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/admin/accounts", s.createAccount)
	mux.HandleFunc("POST /v1/admin/indexer/pause", s.pause)
	mux.HandleFunc("POST /v1/admin/indexer/resume", s.resume)
	mux.HandleFunc("POST /v1/inboxes", s.createInbox)
	mux.HandleFunc("POST /v1/agents", s.createAgent)
	mux.HandleFunc("POST /v1/inboxes/{id}/messages", s.inbound)
	mux.HandleFunc("POST /v1/inboxes/{id}/calls", s.call)
	mux.HandleFunc("POST /v1/conversations/{id}/messages", s.reply)
	mux.HandleFunc("GET /v1/inboxes/{id}/conversations", s.list)
	mux.HandleFunc("GET /v1/inboxes/{id}/counts", s.counts)
	mux.HandleFunc("GET /v1/search", s.search)
	mux.HandleFunc("GET /v1/ws", s.ws)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeServer) id(prefix string) string {
	s.n++
	return fmt.Sprintf("%s%d", prefix, s.n)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": code}})
}

// caller resolves the bearer credential: account, agent (nil for an API
// key), admin. Call with s.mu held.
func (s *fakeServer) caller(r *http.Request) (account string, agent *fakeAgent, admin bool) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == s.Admin {
		return "", nil, true
	}
	if a, ok := s.keys[tok]; ok {
		return a, nil, false
	}
	if ag, ok := s.agents[tok]; ok {
		return ag.account, ag, false
	}
	return "", nil, false
}

// inboxFor returns the inbox when the caller may use it. Call with s.mu held.
func (s *fakeServer) inboxFor(r *http.Request, id string) *fakeInbox {
	account, agent, _ := s.caller(r)
	in := s.inboxes[id]
	if in == nil || account == "" || in.account != account || (agent != nil && !agent.inboxes[id]) {
		return nil
	}
	return in
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeErr(w, 400, "invalid_argument")
		return false
	}
	return true
}

func (s *fakeServer) createAccount(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, admin := s.caller(r); !admin {
		writeErr(w, 401, "unauthorized")
		return
	}
	var req struct{ Name string }
	if !decode(w, r, &req) {
		return
	}
	id, key := s.id("acc"), s.id("key")
	s.keys[key] = id
	writeJSON(w, 201, map[string]any{"account": map[string]string{"id": id, "name": req.Name}, "api_key": key})
}

func (s *fakeServer) pause(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, admin := s.caller(r); !admin {
		writeErr(w, 401, "unauthorized")
		return
	}
	if s.f.failPause {
		writeErr(w, 503, "unavailable")
		return
	}
	s.paused = true
	writeJSON(w, 200, map[string]bool{"paused": true})
}

func (s *fakeServer) resume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, admin := s.caller(r); !admin {
		writeErr(w, 401, "unauthorized")
		return
	}
	s.paused = false
	s.index = append(s.index, s.backlog...)
	s.backlog = nil
	writeJSON(w, 200, map[string]bool{"paused": false})
}

func (s *fakeServer) createInbox(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	account, agent, _ := s.caller(r)
	if account == "" || agent != nil {
		writeErr(w, 401, "unauthorized")
		return
	}
	var req struct{ Name string }
	if !decode(w, r, &req) {
		return
	}
	in := &fakeInbox{id: s.id("inb"), account: account, epoch: s.id("ep"), conns: map[*fakeConn]bool{}, byPhone: map[string]*fakeConv{}}
	s.inboxes[in.id] = in
	writeJSON(w, 201, map[string]any{"id": in.id, "name": req.Name})
}

func (s *fakeServer) createAgent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	account, agent, _ := s.caller(r)
	if account == "" || agent != nil {
		writeErr(w, 401, "unauthorized")
		return
	}
	var req struct {
		Name, Email string
		InboxIDs    []string `json:"inbox_ids"`
	}
	if !decode(w, r, &req) {
		return
	}
	ag := &fakeAgent{id: s.id("agt"), account: account, inboxes: map[string]bool{}}
	for _, id := range req.InboxIDs {
		ag.inboxes[id] = true
	}
	tok := s.id("tok")
	s.agents[tok] = ag
	writeJSON(w, 201, map[string]any{"agent": map[string]any{"id": ag.id, "inbox_ids": req.InboxIDs}, "token": tok})
}

func (c *fakeConv) summary() map[string]any {
	return map[string]any{
		"id": c.id, "inbox_id": c.inbox, "contact": map[string]string{"phone": c.phone},
		"status": "open", "version": c.version, "last_activity_at": c.lastActivity.UTC().Format(time.RFC3339Nano),
	}
}

// conv finds or starts the conversation with phone. Call with s.mu held.
func (s *fakeServer) conv(in *fakeInbox, phone string) *fakeConv {
	c := in.byPhone[phone]
	if c == nil {
		c = &fakeConv{id: s.id("conv"), inbox: in.id, phone: phone}
		in.byPhone[phone] = c
		s.convs[c.id] = c
	}
	return c
}

// bump applies one event to c and publishes it, in order, to every
// subscriber of its inbox. Call with s.mu held.
func (s *fakeServer) bump(c *fakeConv) {
	in := s.inboxes[c.inbox]
	if c.version > 0 {
		c.prev, _ = json.Marshal(c.summary())
	}
	c.version++
	c.lastActivity = time.Now()
	for _, ch := range c.moved {
		close(ch)
	}
	c.moved = nil
	in.seq++
	if s.f.skipSeqOnce && !s.skipDone {
		s.skipDone = true
		in.seq++
	}
	if s.f.muteContact != "" && c.phone == s.f.muteContact {
		return
	}
	sum, _ := json.Marshal(c.summary())
	frame, _ := json.Marshal(map[string]any{"type": "update", "inbox_id": in.id, "epoch": in.epoch, "seq": in.seq, "conversation": json.RawMessage(sum)})
	for conn := range in.conns {
		conn.push(c.id, frame)
	}
	if s.f.staleOnce && !s.staleDone && c.prev != nil {
		s.staleDone = true
		in.seq++
		old, _ := json.Marshal(map[string]any{"type": "update", "inbox_id": in.id, "epoch": in.epoch, "seq": in.seq, "conversation": json.RawMessage(c.prev)})
		for conn := range in.conns {
			conn.push("", old)
		}
	}
}

func (s *fakeServer) inbound(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inboxFor(r, r.PathValue("id"))
	if in == nil {
		writeErr(w, 404, "not_found")
		return
	}
	var req struct {
		Contact    struct{ Phone string }
		Body       string
		ExternalID string `json:"external_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	key := "ext:" + in.id + "|" + req.ExternalID
	c := s.conv(in, req.Contact.Phone)
	if m := s.idem[key]; m != nil && !s.f.ignoreIdempotency {
		writeJSON(w, 200, map[string]any{"conversation_id": m.conv, "message": map[string]any{"id": m.id, "seq": m.seq}, "conversation": s.convs[m.conv].summary()})
		return
	}
	s.bump(c)
	m := &fakeMsg{id: s.id("msg"), conv: c.id, seq: c.version}
	s.idem[key] = m
	doc := fakeDoc{inbox: in.id, conv: c.id, msg: m.id, body: req.Body, seq: m.seq}
	switch {
	case s.f.neverIndex:
	case s.paused:
		s.backlog = append(s.backlog, doc)
	default:
		s.index = append(s.index, doc)
	}
	if s.f.lostFirstAnswer {
		dropAnswer(w)
		return
	}
	if s.f.answerAhead {
		s.awaitMoved(r, c)
	}
	writeJSON(w, 201, map[string]any{"conversation_id": c.id, "message": map[string]any{"id": m.id, "seq": m.seq, "direction": "inbound"}, "conversation": c.summary()})
}

// awaitMoved waits, without s.mu, until c takes another event or a bound
// passes (the last write of a conversation has no successor).
func (s *fakeServer) awaitMoved(r *http.Request, c *fakeConv) {
	moved := make(chan struct{})
	c.moved = append(c.moved, moved)
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-moved:
	case <-time.After(100 * time.Millisecond):
	case <-r.Context().Done():
	}
}

// dropAnswer closes the connection without an answer: the write happened,
// the client never learns it.
func dropAnswer(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func (s *fakeServer) call(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.f.callAnswerDelay) // the server's slowness under test
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inboxFor(r, r.PathValue("id"))
	if in == nil {
		writeErr(w, 404, "not_found")
		return
	}
	var req struct {
		Contact struct{ Phone string }
		CallID  string `json:"call_id"`
		State   string
	}
	if !decode(w, r, &req) {
		return
	}
	c := s.conv(in, req.Contact.Phone)
	s.bump(c)
	// One call is one item, updated in place: its seq is the version of
	// the call's first event.
	seq, ok := s.calls[req.CallID]
	if !ok {
		seq = c.version
		s.calls[req.CallID] = seq
	}
	if s.f.answerAhead {
		s.awaitMoved(r, c)
	}
	writeJSON(w, 200, map[string]any{"conversation_id": c.id, "call": map[string]any{"call_id": req.CallID, "state": req.State, "seq": seq}, "conversation": c.summary()})
}

func (s *fakeServer) reply(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convs[r.PathValue("id")]
	if c == nil || s.inboxFor(r, c.inbox) == nil {
		writeErr(w, 404, "not_found")
		return
	}
	var req struct {
		Body     string
		ClientID string `json:"client_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	key := "client:" + c.id + "|" + req.ClientID
	if m := s.idem[key]; m != nil && !s.f.ignoreIdempotency {
		writeJSON(w, 200, map[string]any{"id": m.id, "seq": m.seq, "direction": "outbound"})
		return
	}
	s.bump(c)
	m := &fakeMsg{id: s.id("msg"), conv: c.id, seq: c.version}
	s.idem[key] = m
	if s.f.lostFirstAnswer {
		dropAnswer(w)
		return
	}
	// The bare message: the literal reading of the API's "→ 201 message".
	writeJSON(w, 201, map[string]any{"id": m.id, "seq": m.seq, "direction": "outbound"})
}

func (s *fakeServer) sorted(in *fakeInbox) []*fakeConv {
	cs := make([]*fakeConv, 0, len(in.byPhone))
	for _, c := range in.byPhone {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if !cs[i].lastActivity.Equal(cs[j].lastActivity) {
			return cs[i].lastActivity.After(cs[j].lastActivity)
		}
		return cs[i].id < cs[j].id
	})
	return cs
}

func (s *fakeServer) page(in *fakeInbox) []map[string]any {
	var out []map[string]any
	for i, c := range s.sorted(in) {
		if i == pageLimit {
			break
		}
		out = append(out, c.summary())
	}
	return out
}

func (s *fakeServer) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inboxFor(r, r.PathValue("id"))
	if in == nil {
		writeErr(w, 404, "not_found")
		return
	}
	writeJSON(w, 200, map[string]any{"conversations": s.page(in), "total": len(in.byPhone), "epoch": in.epoch, "seq": in.seq})
}

func (s *fakeServer) counts(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inboxFor(r, r.PathValue("id"))
	if in == nil {
		writeErr(w, 404, "not_found")
		return
	}
	writeJSON(w, 200, map[string]any{"open": len(in.byPhone), "epoch": in.epoch, "seq": in.seq})
}

func (s *fakeServer) search(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inboxFor(r, r.URL.Query().Get("inbox_id"))
	if in == nil {
		writeErr(w, 404, "not_found")
		return
	}
	q := r.URL.Query().Get("q")
	hits := []map[string]any{}
	for _, d := range s.index {
		if d.inbox == in.id && strings.Contains(d.body, q) {
			hits = append(hits, map[string]any{"conversation_id": d.conv, "inbox_id": d.inbox, "message_id": d.msg, "seq": d.seq, "body": d.body})
		}
	}
	writeJSON(w, 200, map[string]any{"hits": hits, "found": len(hits)})
}

func (s *fakeServer) ws(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	account, agent, _ := s.caller(r)
	s.mu.Unlock()
	if account == "" || agent == nil {
		writeErr(w, 401, "unauthorized")
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	fc := &fakeConn{wake: make(chan struct{}, 1)}
	var subscribed []*fakeInbox
	defer func() {
		s.mu.Lock()
		for _, in := range subscribed {
			delete(in.conns, fc)
		}
		s.mu.Unlock()
	}()

	go func() {
		defer cancel()
		for {
			select {
			case <-fc.wake:
			case <-ctx.Done():
				return
			}
			for _, q := range fc.take() {
				if err := conn.Write(ctx, websocket.MessageText, q.data); err != nil {
					return
				}
			}
			if s.f.slowWriter > 0 {
				// Simulates a slow client so that the queue coalesces.
				select {
				case <-time.After(s.f.slowWriter):
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Type, ID string
			InboxID  string `json:"inbox_id"`
		}
		if json.Unmarshal(data, &f) != nil || f.Type != "subscribe" {
			b, _ := json.Marshal(map[string]any{"type": "error", "ref": f.ID, "error": map[string]string{"code": "invalid_argument", "message": "bad frame"}})
			fc.push("", b)
			continue
		}
		s.mu.Lock()
		in := s.inboxes[f.InboxID]
		if in == nil || !agent.inboxes[in.id] {
			s.mu.Unlock()
			b, _ := json.Marshal(map[string]any{"type": "error", "ref": f.ID, "error": map[string]string{"code": "not_found", "message": "no such inbox"}})
			fc.push("", b)
			continue
		}
		in.conns[fc] = true
		subscribed = append(subscribed, in)
		sub, _ := json.Marshal(map[string]any{"type": "subscribed", "ref": f.ID, "inbox_id": in.id, "epoch": in.epoch, "seq": in.seq, "resumed": false})
		snap, _ := json.Marshal(map[string]any{"type": "snapshot", "inbox_id": in.id, "epoch": in.epoch, "seq": in.seq, "conversations": s.page(in), "total": len(in.byPhone)})
		fc.push("", sub)
		fc.push("", snap)
		s.mu.Unlock()
	}
}
