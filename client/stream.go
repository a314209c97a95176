package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ConnState is where a Stream's connection is.
type ConnState string

// Connection states, in the order a connection normally goes through them.
const (
	StateConnecting   ConnState = "connecting"   // first connection attempt
	StateLive         ConnState = "live"         // connected, every subscription answered
	StateReconnecting ConnState = "reconnecting" // the connection was lost; waiting to retry
	StateResumed      ConnState = "resumed"      // reconnected, every inbox continued where it was
	StateResynced     ConnState = "resynced"     // reconnected or fell behind, and some inbox got a fresh snapshot
	StateClosed       ConnState = "closed"       // Close was called, or the credential was refused
)

// EventType names what an Event carries.
type EventType string

// Stream events.
const (
	EventState        EventType = "state"        // State changed
	EventSnapshot     EventType = "snapshot"     // InboxID's list is Conversations now (Counts, Total)
	EventConversation EventType = "conversation" // a newer Conversation of InboxID (with Counts)
	EventCounts       EventType = "counts"       // InboxID's Counts changed (the update's summary was not newer)
	EventResync       EventType = "resync"       // InboxID lost continuity (Reason); a snapshot follows
	EventWatching     EventType = "watching"     // a watch of ConversationID (re)started at Version: reload its timeline
	EventItem         EventType = "item"         // a new or changed timeline Item of ConversationID
	EventTyping       EventType = "typing"       // AgentID is typing in ConversationID
	EventPresence     EventType = "presence"     // Agents watching ConversationID now
	EventError        EventType = "error"        // an error frame answering nothing of the caller's, or a refused subscription or watch (Err)
)

// Event is one thing a Stream reports; which fields are set depends on Type.
type Event struct {
	Type           EventType
	State          ConnState
	InboxID        string
	ConversationID string
	Conversation   *Conversation
	Conversations  []Conversation
	Counts         *Counts
	Total          int64
	Reason         string
	Version        int64
	Item           *Item
	AgentID        string
	Agents         []string
	Err            *Error
}

// Client-side failures of stream requests.
var (
	// ErrDisconnected: the connection was lost before the answer, and the
	// request is not one that is sent again after the reconnect.
	ErrDisconnected = errors.New("switchboard: websocket disconnected before the answer")
	// ErrTimeout: no answer within StreamOptions.Timeout.
	ErrTimeout = errors.New("switchboard: no answer in time")
	// ErrClosed: the stream is closed.
	ErrClosed = errors.New("switchboard: stream closed")
)

// StreamOptions configure a Stream; zero values take the defaults.
type StreamOptions struct {
	// OnEvent, when set, is called with every event, in order, on one
	// goroutine; otherwise read them from Events. Either way a consumer
	// that does not keep up stalls the connection, and the server then
	// resyncs it: it is never fed a stale list.
	OnEvent func(Event)
	// Buffer is the capacity of the event channel (default 256).
	Buffer int
	// Timeout bounds the wait for a request's answer and for one dial
	// (default 10 s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// per failed attempt, with jitter (defaults 250 ms, 10 s).
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how often the connection is checked with a ping; a
	// connection that does not answer in Timeout is dropped and replaced
	// (default 20 s; negative: never).
	PingInterval time.Duration
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 20 * time.Second
	}
	return o
}

// Stream is the live websocket of one credential. It reconnects on its own
// with exponential backoff and jitter, resumes each inbox subscription from
// its (epoch, seq) so that no update is missed, takes a snapshot when the
// server cannot resume, re-establishes watches, and re-sends replies whose
// ack was lost (under the same client_id, which the server de-duplicates).
// A per-conversation version guard keeps it from ever delivering a summary
// older than, or as old as, one it delivered or returned before.
type Stream struct {
	c    *Client
	url  string
	opts StreamOptions

	events chan Event
	ctx    context.Context // the stream's lifetime
	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop has ended

	mu        sync.Mutex
	conn      *websocket.Conn // nil while disconnected
	state     ConnState
	everLive  bool
	inboxes   map[string]*inboxState
	watches   map[string]string // conversation id → id of its watch request
	latest    map[string]Conversation
	pending   map[string]*pending
	nextID    uint64
	restoring map[string]bool // after a (re)connect: inboxes not yet answered
	resynced  bool            // some inbox of this restore got a snapshot
	err       error           // why the stream ended, when not by Close
}

type inboxState struct {
	filter map[string]any
	epoch  string
	seq    int64
	req    string // the outstanding subscribe request, "" once answered
	resync bool   // a resync was announced; its snapshot is due
}

// pending is a request waiting for the frame whose ref is its id.
type pending struct {
	frame  map[string]any
	replay bool   // sent again on the next connection when unanswered
	inbox  string // a subscribe: its inbox
	watch  string // a watch: its conversation
	answer chan answer
}

type answer struct {
	f   *frame
	err error
}

// frame is every server frame, flattened.
type frame struct {
	Type           string         `json:"type"`
	Ref            string         `json:"ref"`
	InboxID        string         `json:"inbox_id"`
	ConversationID string         `json:"conversation_id"`
	Epoch          string         `json:"epoch"`
	Seq            int64          `json:"seq"`
	Resumed        bool           `json:"resumed"`
	Conversation   *Conversation  `json:"conversation"`
	Conversations  []Conversation `json:"conversations"`
	Total          int64          `json:"total"`
	Counts         *Counts        `json:"counts"`
	Reason         string         `json:"reason"`
	Version        int64          `json:"version"`
	Item           *Item          `json:"item"`
	Message        *Item          `json:"message"`
	AgentID        string         `json:"agent_id"`
	Agents         []string       `json:"agents"`
	Error          *struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Connect opens the websocket (GET /v1/ws) with the client's credential and
// keeps it open until Close. ctx bounds the first connection only: a
// refused credential or an unreachable server is reported here rather than
// retried forever.
func (c *Client) Connect(ctx context.Context, opts StreamOptions) (*Stream, error) {
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path += "/v1/ws"
	s := &Stream{c: c, url: u.String(), opts: opts.withDefaults(), state: StateConnecting,
		inboxes: map[string]*inboxState{}, watches: map[string]string{}, latest: map[string]Conversation{},
		pending: map[string]*pending{}, done: make(chan struct{})}
	s.events = make(chan Event, s.opts.Buffer)
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run(conn)
	if s.opts.OnEvent != nil {
		go func() {
			for ev := range s.events {
				s.opts.OnEvent(ev)
			}
		}()
	}
	return s, nil
}

// Events delivers the stream's events (unless StreamOptions.OnEvent takes
// them); it is closed when the stream ends.
func (s *Stream) Events() <-chan Event { return s.events }

// State is the connection's state now.
func (s *Stream) State() ConnState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Done is closed when the stream has ended: Close, or a credential the
// server refused on a reconnect (see Err).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err is why the stream ended by itself (nil after Close or while it runs).
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the stream: the connection closes, waiting requests fail with
// ErrClosed, and Events is closed.
func (s *Stream) Close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *Stream) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	// The handshake is bounded by ctx; an http.Client timeout would also
	// cut the connection's life short.
	hc := *s.c.http
	hc.Timeout = 0
	h := http.Header{}
	if s.c.token != "" {
		h.Set("Authorization", "Bearer "+s.c.token)
	}
	if s.c.userAgent != "" {
		h.Set("User-Agent", s.c.userAgent)
	}
	conn, res, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPClient: &hc, HTTPHeader: h})
	if err != nil {
		if res != nil && res.StatusCode >= 300 {
			return nil, &Error{Status: res.StatusCode, Code: codeForStatus(res.StatusCode), Message: err.Error(),
				RetryAfter: retryAfter(res.Header.Get("Retry-After")), Method: http.MethodGet, Path: "/v1/ws"}
		}
		return nil, fmt.Errorf("switchboard: websocket: %w", err)
	}
	// A snapshot is a page of up to 200 summaries, well past the default.
	conn.SetReadLimit(maxBody)
	return conn, nil
}

// run keeps a connection open until the stream is closed.
func (s *Stream) run(conn *websocket.Conn) {
	defer s.finish()
	for attempt := 0; ; {
		if conn != nil {
			s.session(conn)
			if s.ctx.Err() != nil {
				return
			}
			attempt = 0
		}
		s.setState(StateReconnecting)
		wait := s.backoff(attempt)
		attempt++
		var err error
		if conn, err = s.redial(wait); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var e *Error
			if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
				// A revoked credential does not come back by retrying.
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			conn = nil
		}
	}
}

// backoff is the delay before a reconnect attempt: doubling per failed
// attempt, capped, with jitter so that a node restart is not met by every
// client reconnecting in the same instant.
func (s *Stream) backoff(attempt int) time.Duration {
	ceiling := s.opts.MaxBackoff
	if attempt < 30 {
		ceiling = min(s.opts.MaxBackoff, s.opts.MinBackoff<<attempt)
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}

func (s *Stream) redial(wait time.Duration) (*websocket.Conn, error) {
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-s.ctx.Done():
		t.Stop()
		return nil, s.ctx.Err()
	}
	conn, err := s.dial(s.ctx)
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > wait {
		// Too many websockets of this credential: the server says when.
		t := time.NewTimer(e.RetryAfter - wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
	}
	return conn, err
}

// session serves one connection: restore what the server must hear again,
// then read until the connection breaks.
func (s *Stream) session(conn *websocket.Conn) {
	defer conn.CloseNow()
	frames, events := s.restore(conn)
	s.emit(events...)
	for _, f := range frames {
		if err := s.write(conn, f); err != nil {
			s.lost(conn)
			return
		}
	}
	pingDone := make(chan struct{})
	defer close(pingDone)
	if s.opts.PingInterval > 0 {
		go s.heartbeat(conn, pingDone)
	}
	for {
		_, data, err := conn.Read(s.ctx)
		if err != nil {
			s.lost(conn)
			return
		}
		var f frame
		if json.Unmarshal(data, &f) != nil {
			continue // the server sends JSON objects only; anything else is noise
		}
		s.emit(s.handle(&f)...)
	}
}

// heartbeat drops a connection that does not answer a ping: a node that
// lost its network leaves TCP open for minutes.
func (s *Stream) heartbeat(conn *websocket.Conn, done <-chan struct{}) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
		err := conn.Ping(ctx)
		cancel()
		if err != nil {
			conn.CloseNow()
			return
		}
	}
}

// restore installs a new connection and returns the frames to send on it:
// each subscription resuming from where its inbox was, each watch, and
// every unanswered request that survives a reconnect (under its id, so its
// caller's wait is the one answered).
func (s *Stream) restore(conn *websocket.Conn) ([]map[string]any, []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restoring = map[string]bool{}
	s.resynced = false
	for inbox, st := range s.inboxes {
		s.restoring[inbox] = true
		if p, ok := s.pending[st.req]; ok {
			p.frame = subscribeFrame(st.req, inbox, st)
		} else {
			st.req = s.newID()
			s.pending[st.req] = &pending{frame: subscribeFrame(st.req, inbox, st), replay: true, inbox: inbox, answer: make(chan answer, 1)}
		}
	}
	for conv, req := range s.watches {
		if _, ok := s.pending[req]; !ok {
			id := s.newID()
			s.watches[conv] = id
			s.pending[id] = &pending{frame: map[string]any{"type": "watch", "id": id, "conversation_id": conv},
				replay: true, watch: conv, answer: make(chan answer, 1)}
		}
	}
	frames := make([]map[string]any, 0, len(s.pending))
	for _, p := range s.pending {
		if p.replay {
			frames = append(frames, p.frame)
		}
	}
	s.conn = conn
	return frames, s.maybeRestored()
}

// maybeRestored ends a restore once every inbox has answered. The caller
// holds mu.
func (s *Stream) maybeRestored() []Event {
	if s.restoring == nil || len(s.restoring) > 0 {
		return nil
	}
	s.restoring = nil
	state := StateLive
	if s.everLive {
		state = StateResumed
		if s.resynced {
			state = StateResynced
		}
	}
	s.everLive = true
	return s.stateLocked(state)
}

// lost handles a broken connection: requests that are not sent again fail.
func (s *Stream) lost(conn *websocket.Conn) {
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	s.restoring = nil
	for id, p := range s.pending {
		if !p.replay {
			delete(s.pending, id)
			p.answer <- answer{err: ErrDisconnected}
		}
	}
	s.mu.Unlock()
}

// finish ends the stream: every waiting request fails and Events closes.
func (s *Stream) finish() {
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	for id, p := range s.pending {
		delete(s.pending, id)
		p.answer <- answer{err: ErrClosed}
	}
	s.state = StateClosed
	s.mu.Unlock()
	if conn != nil {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	// The final state is offered, not forced: the consumer may be gone.
	select {
	case s.events <- Event{Type: EventState, State: StateClosed}:
	default:
	}
	close(s.events)
	if s.cancel != nil {
		s.cancel()
	}
	close(s.done)
}

func (s *Stream) setState(state ConnState) {
	s.mu.Lock()
	evs := s.stateLocked(state)
	s.mu.Unlock()
	s.emit(evs...)
}

func (s *Stream) stateLocked(state ConnState) []Event {
	if s.state == state {
		return nil
	}
	s.state = state
	return []Event{{Type: EventState, State: state}}
}

// emit delivers events, waiting for room: a consumer that falls behind
// holds the reader back, and the server resyncs rather than the client
// dropping anything.
func (s *Stream) emit(evs ...Event) {
	for _, ev := range evs {
		select {
		case s.events <- ev:
		case <-s.ctx.Done():
			return
		}
	}
}

// handle applies one frame and returns the events it makes.
func (s *Stream) handle(f *frame) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var evs []Event
	if f.Ref != "" {
		if p, ok := s.pending[f.Ref]; ok {
			delete(s.pending, f.Ref)
			if f.Type == "error" {
				e := frameError(f)
				p.answer <- answer{err: e}
				evs = append(evs, s.refused(p, e)...)
			} else {
				p.answer <- answer{f: f}
			}
		}
	}
	switch f.Type {
	case "subscribed":
		st := s.inboxes[f.InboxID]
		if st == nil {
			break
		}
		st.epoch, st.seq, st.req = f.Epoch, f.Seq, ""
		if f.Resumed && s.restoring != nil {
			delete(s.restoring, f.InboxID)
			evs = append(evs, s.maybeRestored()...)
		}
	case "snapshot":
		st := s.inboxes[f.InboxID]
		if st == nil {
			break
		}
		st.epoch, st.seq = f.Epoch, f.Seq
		convs := make([]Conversation, len(f.Conversations))
		for i, c := range f.Conversations {
			// The guard holds across a snapshot too: an ack may have
			// brought a newer summary than the page the snapshot was read
			// from.
			if held, ok := s.latest[c.ID]; ok && held.Version > c.Version {
				c = held
			}
			s.latest[c.ID] = c
			convs[i] = c
		}
		evs = append(evs, Event{Type: EventSnapshot, InboxID: f.InboxID, Conversations: convs, Counts: f.Counts, Total: f.Total})
		wasResync := st.resync
		st.resync = false
		if s.restoring != nil {
			if s.restoring[f.InboxID] {
				delete(s.restoring, f.InboxID)
				s.resynced = s.resynced || s.everLive
				evs = append(evs, s.maybeRestored()...)
			}
		} else if wasResync {
			evs = append(evs, s.stateLocked(StateResynced)...)
		}
	case "update":
		st := s.inboxes[f.InboxID]
		if st == nil || f.Conversation == nil {
			break
		}
		if f.Epoch == st.epoch && f.Seq > st.seq {
			st.seq = f.Seq
		}
		if s.applyLocked(*f.Conversation) {
			evs = append(evs, Event{Type: EventConversation, InboxID: f.InboxID, Conversation: f.Conversation, Counts: f.Counts})
		} else if f.Counts != nil {
			evs = append(evs, Event{Type: EventCounts, InboxID: f.InboxID, Counts: f.Counts})
		}
	case "resync":
		if st := s.inboxes[f.InboxID]; st != nil {
			st.resync = true
			evs = append(evs, Event{Type: EventResync, InboxID: f.InboxID, Reason: f.Reason})
		}
	case "watching":
		if _, ok := s.watches[f.ConversationID]; ok {
			evs = append(evs, Event{Type: EventWatching, ConversationID: f.ConversationID, Version: f.Version})
		}
	case "item":
		if _, ok := s.watches[f.ConversationID]; ok && f.Item != nil {
			evs = append(evs, Event{Type: EventItem, ConversationID: f.ConversationID, Item: f.Item})
		}
	case "typing":
		if _, ok := s.watches[f.ConversationID]; ok {
			evs = append(evs, Event{Type: EventTyping, ConversationID: f.ConversationID, AgentID: f.AgentID})
		}
	case "presence":
		if _, ok := s.watches[f.ConversationID]; ok {
			evs = append(evs, Event{Type: EventPresence, ConversationID: f.ConversationID, Agents: f.Agents})
		}
	case "error":
		if f.Ref == "" {
			evs = append(evs, Event{Type: EventError, Err: frameError(f)})
		}
	}
	return evs
}

// refused handles the server's refusal of a subscription or watch: it is
// final, not retried on the next connection.
func (s *Stream) refused(p *pending, e *Error) []Event {
	switch {
	case p.inbox != "":
		if st := s.inboxes[p.inbox]; st != nil && st.req == p.frame["id"] {
			delete(s.inboxes, p.inbox)
		}
		var evs []Event
		if s.restoring != nil && s.restoring[p.inbox] {
			delete(s.restoring, p.inbox)
			evs = s.maybeRestored()
		}
		return append(evs, Event{Type: EventError, InboxID: p.inbox, Err: e})
	case p.watch != "":
		if s.watches[p.watch] == p.frame["id"] {
			delete(s.watches, p.watch)
		}
		return []Event{{Type: EventError, ConversationID: p.watch, Err: e}}
	}
	return nil
}

func frameError(f *frame) *Error {
	if f.Error == nil {
		return &Error{Code: CodeInternal, Message: "error frame without details"}
	}
	return &Error{Code: f.Error.Code, Message: f.Error.Message}
}

// Apply passes a summary obtained elsewhere (a REST answer) through the
// version guard: it reports whether the summary is newer than every one
// the stream has seen, and from then on the stream delivers no summary of
// that conversation as old as it.
func (s *Stream) Apply(c Conversation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(c)
}

func (s *Stream) applyLocked(c Conversation) bool {
	if held, ok := s.latest[c.ID]; ok && held.Version >= c.Version {
		return false
	}
	s.latest[c.ID] = c
	return true
}

func (s *Stream) newID() string {
	s.nextID++
	return "r" + strconv.FormatUint(s.nextID, 10)
}

func subscribeFrame(id, inbox string, st *inboxState) map[string]any {
	f := map[string]any{"type": "subscribe", "id": id, "inbox_id": inbox}
	if st.filter != nil {
		f["filter"] = st.filter
	}
	if st.epoch != "" {
		f["resume"] = map[string]any{"epoch": st.epoch, "seq": st.seq}
	}
	return f
}

func (s *Stream) write(conn *websocket.Conn, f map[string]any) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("switchboard: encode %v frame: %w", f["type"], err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, data)
}

// request sends a frame (made by build with the request's id) and waits for
// its answer. A replayed request outlives a lost connection: the next one
// sends it again.
func (s *Stream) request(ctx context.Context, p *pending, build func(id string) map[string]any) (*frame, error) {
	s.mu.Lock()
	if s.state == StateClosed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	id := s.newID()
	p.frame = build(id)
	p.answer = make(chan answer, 1)
	conn := s.conn
	if conn == nil && !p.replay {
		s.mu.Unlock()
		return nil, ErrDisconnected
	}
	s.pending[id] = p
	s.mu.Unlock()
	if conn != nil {
		if err := s.write(conn, p.frame); err != nil && !p.replay {
			s.forget(id)
			return nil, fmt.Errorf("%w: %v", ErrDisconnected, err)
		}
	}
	t := time.NewTimer(s.opts.Timeout)
	defer t.Stop()
	select {
	case a := <-p.answer:
		return a.f, a.err
	case <-t.C:
		s.forget(id)
		return nil, fmt.Errorf("%w: %s after %s", ErrTimeout, p.frame["type"], s.opts.Timeout)
	case <-ctx.Done():
		s.forget(id)
		return nil, ctx.Err()
	}
}

func (s *Stream) forget(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// Subscribe subscribes to an inbox's live list under a filter (nil: the
// list's defaults); a snapshot event (the first page under the filter)
// follows, then updates: every change of the inbox, whatever the filter,
// so that a list kept by the filter learns what joins and leaves it. The
// subscription is kept across reconnects until Unsubscribe. An error is
// the server's refusal (ErrNotFound outside the caller's inboxes) or a
// failure to hear it; in the latter case the subscription stays and is
// sent again on the next connection.
func (s *Stream) Subscribe(ctx context.Context, inboxID string, filter *ListQuery) error {
	st := &inboxState{}
	if filter != nil {
		st.filter = filter.filter()
	}
	_, err := s.request(ctx, &pending{replay: true, inbox: inboxID}, func(id string) map[string]any {
		st.req = id
		s.inboxes[inboxID] = st
		return subscribeFrame(id, inboxID, st)
	})
	return err
}

// Unsubscribe ends an inbox subscription.
func (s *Stream) Unsubscribe(inboxID string) {
	s.mu.Lock()
	st, ok := s.inboxes[inboxID]
	delete(s.inboxes, inboxID)
	if ok {
		delete(s.pending, st.req)
	}
	conn := s.conn
	s.mu.Unlock()
	if ok && conn != nil {
		_ = s.write(conn, map[string]any{"type": "unsubscribe", "inbox_id": inboxID})
	}
}

// Watch watches a conversation: item, typing and presence events follow,
// and a watching event each time the watch is re-established after a
// reconnect. It returns the version the watch starts from.
func (s *Stream) Watch(ctx context.Context, conversationID string) (int64, error) {
	f, err := s.request(ctx, &pending{replay: true, watch: conversationID}, func(id string) map[string]any {
		s.watches[conversationID] = id
		return map[string]any{"type": "watch", "id": id, "conversation_id": conversationID}
	})
	if err != nil {
		return 0, err
	}
	return f.Version, nil
}

// Unwatch stops watching a conversation.
func (s *Stream) Unwatch(conversationID string) {
	s.mu.Lock()
	req, ok := s.watches[conversationID]
	delete(s.watches, conversationID)
	delete(s.pending, req)
	conn := s.conn
	s.mu.Unlock()
	if ok && conn != nil {
		_ = s.write(conn, map[string]any{"type": "unwatch", "conversation_id": conversationID})
	}
}

// Send posts a reply or note and waits for its ack. It survives a
// reconnect: without an ack the frame is sent again under the same
// client_id (a random one when r.ClientID is empty), which the server
// de-duplicates, until the timeout.
func (s *Stream) Send(ctx context.Context, conversationID string, r Reply) (*Item, error) {
	if r.ClientID == "" {
		r.ClientID = newClientID()
	}
	f, err := s.request(ctx, &pending{replay: true}, func(id string) map[string]any {
		m := map[string]any{"type": "send", "id": id, "conversation_id": conversationID, "body": r.Body, "client_id": r.ClientID}
		if r.Kind != "" {
			m["kind"] = r.Kind
		}
		if r.IfVersion != nil {
			m["if_version"] = *r.IfVersion
		}
		return m
	})
	if err != nil {
		return nil, err
	}
	if f.Message == nil {
		return nil, errors.New("switchboard: ack without message")
	}
	return f.Message, nil
}

// UpdateConversation changes a conversation over the websocket. The answer
// passes the version guard (Apply). It is not sent again after a lost
// connection (ErrDisconnected): the caller decides.
func (s *Stream) UpdateConversation(ctx context.Context, conversationID string, u ConversationUpdate) (*Conversation, error) {
	raw, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("switchboard: encode update: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("switchboard: encode update: %w", err)
	}
	f, err := s.request(ctx, &pending{}, func(id string) map[string]any {
		fields["type"], fields["id"], fields["conversation_id"] = "update_conversation", id, conversationID
		return fields
	})
	if err != nil {
		return nil, err
	}
	if f.Conversation == nil {
		return nil, errors.New("switchboard: ack without conversation")
	}
	s.Apply(*f.Conversation)
	return f.Conversation, nil
}

// Typing tells the conversation's other watchers that this agent is typing.
func (s *Stream) Typing(conversationID string) error {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return ErrDisconnected
	}
	return s.write(conn, map[string]any{"type": "typing", "conversation_id": conversationID})
}

// Ping round-trips a ping frame.
func (s *Stream) Ping(ctx context.Context) error {
	_, err := s.request(ctx, &pending{}, func(id string) map[string]any {
		return map[string]any{"type": "ping", "id": id}
	})
	return err
}
