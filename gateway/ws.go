package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/gateway/outbox"
	"github.com/switchboard-dev/switchboard/gateway/wsconn"
	"github.com/switchboard-dev/switchboard/wire"
)

// WSConfig tunes websocket sessions. Zero values take the defaults.
type WSConfig struct {
	// MaxConnections per node; beyond it the upgrade is refused with 503
	// unavailable. Default 20000.
	MaxConnections int
	// MaxSubscriptions per connection. Default 50.
	MaxSubscriptions int
	// ReadLimit is the largest client frame handled; a bigger one, of any
	// size, is read past without being held and gets an invalid_argument
	// error frame: a bad frame never costs the connection. Default 128 KiB,
	// room for a 16 KiB body whose every byte a client's encoder escaped
	// (Go's writes "<" as \u003c, six bytes).
	ReadLimit int64
	// PingInterval between keepalive pings; IdleTimeout closes a connection
	// from which nothing (not even a pong) arrived for that long.
	// Defaults 25s and 60s.
	PingInterval time.Duration
	IdleTimeout  time.Duration
	// WriteTimeout bounds a batched write's wait without progress: a peer
	// that takes nothing of it for that long is disconnected (a slow one
	// that takes some is not; its queue coalesces and resyncs). Default 30s.
	WriteTimeout time.Duration
	// Queue bounds each connection's outbound queue (frames, bytes).
	Queue outbox.Config
	// CommandTimeout bounds a send or update_conversation. Default 15s.
	CommandTimeout time.Duration
	// SocketSendBuffer fixes the kernel's send buffer of each connection
	// (SO_SNDBUF; Linux doubles it) instead of letting it grow to
	// megabytes: it bounds kernel memory per slow peer, and makes the
	// outbound queue take the backlog sooner, where it coalesces and, past
	// its bounds, resyncs. Default 256 KiB: 5 MB/s at a 100 ms round trip.
	SocketSendBuffer int
}

func (c WSConfig) withDefaults() WSConfig {
	if c.MaxConnections <= 0 {
		c.MaxConnections = 20000
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 50
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 128 << 10
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.IdleTimeout < c.PingInterval {
		c.IdleTimeout = 2 * c.PingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 15 * time.Second
	}
	if c.SocketSendBuffer <= 0 {
		c.SocketSendBuffer = 256 << 10
	}
	return c
}

// wsHub is the node's set of websocket connections.
type wsHub struct {
	cfg   WSConfig
	mu    sync.Mutex
	conns map[*wsConn]struct{}
	// closed is set by CloseWebsockets: later upgrades are refused.
	closed bool
	// hw is the greatest outbound queue length any connection reached
	// (tests and metrics: the server's memory stays bounded).
	highWater atomic.Int64
	resyncs   atomic.Int64
}

func newWSHub(cfg WSConfig) *wsHub {
	return &wsHub{cfg: cfg.withDefaults(), conns: make(map[*wsConn]struct{})}
}

// WSStats are the websocket counters of a node.
type WSStats struct {
	Connections    int64
	QueueHighWater int64 // the longest any outbound queue got
	Resyncs        int64 // slow-consumer resyncs sent
}

// WSStats reports the node's websocket counters.
func (s *Server) WSStats() WSStats {
	return WSStats{Connections: s.wsConnections.Load(), QueueHighWater: s.ws.highWater.Load(), Resyncs: s.ws.resyncs.Load()}
}

// CloseWebsockets closes every websocket connection (1001 going away) and
// refuses new ones: http.Server.Shutdown does not track hijacked
// connections, so the node calls this when it stops, before its actors.
// Like the HTTP requests in flight, a frame being handled (a send awaiting
// its commit) is finished and its answer written first; frames that arrive
// meanwhile are answered unavailable. It returns once every connection is
// closed.
func (s *Server) CloseWebsockets() {
	s.ws.mu.Lock()
	s.ws.closed = true
	conns := make([]*wsConn, 0, len(s.ws.conns))
	for c := range s.ws.conns {
		conns = append(conns, c)
	}
	s.ws.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.drainAndClose()
		}()
	}
	wg.Wait()
}

// wsConn is one websocket connection: a reader goroutine that handles the
// client's frames in order, an outbound queue whose writer goroutine exists
// only while there is something to write, and a session actor that receives
// what inbox and conversation actors send.
type wsConn struct {
	s      *Server
	cfg    *WSConfig
	c      *websocket.Conn
	cork   *wsconn.Cork
	ctx    context.Context // carries the principal; ends with the connection
	cancel context.CancelFunc
	q      *outbox.Queue
	root   *actor.RootContext
	pid    *actor.PID

	// alive is set once the connection is registered, before the reader
	// starts; shutdown may run concurrently from CloseWebsockets, hence
	// the atomic.
	alive atomic.Pointer[wsconn.Keepalive]
	once  sync.Once
	slot  *wsSlot // the credential's place (ws_creds.go)

	// busy is held while a frame is handled; draining, once set, has
	// every later frame refused (the server is stopping).
	busy     sync.Mutex
	draining atomic.Bool
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) error {
	if s.node == nil {
		return errorf(codeUnavailable, "websockets need a cluster member")
	}
	if msg := handshakeProblem(r); msg != "" {
		// The library would answer in plain text; every error of the API
		// is JSON.
		if r.Header.Get("Sec-WebSocket-Version") != "13" {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		return errorf(codeInvalid, "%s", msg)
	}
	if !originAllowed(r, s.cfg.AllowedOrigins) {
		// Checked here, as the library would, for the API's error shape.
		return errorf(codeForbidden, "a page at Origin %q may not open a websocket here (the page's own origin may; SWITCHBOARD_ALLOWED_ORIGINS adds others)", r.Header.Get("Origin"))
	}
	cfg := &s.ws.cfg
	slot, err := s.wsCreds.reserve(r.Context())
	if err != nil {
		// A slot frees when one of the credential's websockets closes,
		// which nothing here can foresee: the shortest wait the header
		// can say.
		w.Header().Set("Retry-After", "1")
		return err
	}
	if n := s.wsConnections.Add(1); n > int64(cfg.MaxConnections) {
		s.wsConnections.Add(-1)
		slot.release()
		return errorf(codeUnavailable, "this node holds its maximum of %d websocket connections; retry on another node or later", cfg.MaxConnections)
	}
	counted := true
	defer func() {
		if counted {
			s.wsConnections.Add(-1)
			slot.release()
		}
	}()
	s.ws.mu.Lock()
	closed := s.ws.closed
	s.ws.mu.Unlock()
	if closed {
		return errorf(codeUnavailable, "the node is shutting down")
	}

	// The connection outlives the request: its context is not r.Context().
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), principalKey{}, principalFrom(r.Context())))
	wc := &wsConn{s: s, cfg: cfg, ctx: ctx, cancel: cancel, root: s.node.System.Root}
	hw := &wsconn.Hijacker{ResponseWriter: w, WriteTimeout: cfg.WriteTimeout, SendBuffer: cfg.SocketSendBuffer}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.AllowedOrigins,
		OnPongReceived: func(context.Context, []byte) { wc.touch() },
	})
	if err != nil {
		cancel()
		return nil // Accept wrote the response (400, 403, ...)
	}
	// The read loop bounds what it holds (ReadLimit) and skips the rest of
	// a bigger frame; the library's limit would close the connection.
	c.SetReadLimit(-1)
	wc.c, wc.cork = c, hw.Cork
	wc.q = outbox.New(cfg.Queue, wc, outbox.Hooks{
		Resynced: func(inbox string) { wc.root.Send(wc.pid, &resynced{inbox: inbox}) },
		Failed:   func(error) { _ = wc.c.CloseNow() },
	}, func(inbox string) []byte {
		s.ws.resyncs.Add(1)
		return wire.Resync(inbox, wire.ReasonSlowConsumer).Data
	})
	wc.pid = wc.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newSession(wc) }, s.sessionProps...))

	s.ws.mu.Lock()
	if s.ws.closed {
		s.ws.mu.Unlock()
		wc.root.Stop(wc.pid)
		cancel()
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	s.ws.conns[wc] = struct{}{}
	s.ws.mu.Unlock()
	counted = false // released by wc.shutdown
	if wc.slot = slot; slot.attach(wc) {
		go s.recheckWebsockets(ctx, wc)
	}
	wc.alive.Store(wsconn.StartKeepalive(ctx, wsconn.KeepaliveConfig{Interval: cfg.PingInterval, Idle: cfg.IdleTimeout, Ping: wc.c.Ping,
		Dead:  func(reason string) { wc.shutdown(websocket.StatusPolicyViolation, reason) },
		Acked: wsconn.TCPAcked(hw.Cork.Conn), Writing: hw.Cork.Writing}))
	// A fresh goroutine rather than this handler's: its stack starts small,
	// which matters when a node holds tens of thousands of idle connections.
	go wc.readLoop()
	return nil
}

// touch records that something arrived from the client.
func (wc *wsConn) touch() {
	if k := wc.alive.Load(); k != nil {
		k.Touch()
	}
}

// readLoop reads the client's frames and handles each before reading the
// next, so that frames of one connection are handled in order.
func (wc *wsConn) readLoop() {
	defer wc.shutdown(websocket.StatusNormalClosure, "")
	for {
		typ, rd, err := wc.c.Reader(wc.ctx)
		if err != nil {
			return
		}
		wc.touch()
		buf := framePool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(io.LimitReader(rd, wc.cfg.ReadLimit+1))
		if err == nil && int64(buf.Len()) > wc.cfg.ReadLimit {
			// Skip the rest without holding it: a giant frame costs reading
			// it, as the same bytes in many frames would.
			_, err = io.Copy(io.Discard, rd)
			if err == nil {
				wc.sendError(nil, errorf(codeInvalid, "frame over %d bytes", wc.cfg.ReadLimit))
			}
			buf.Reset()
		} else if err == nil {
			if typ != websocket.MessageText {
				wc.sendError(nil, errorf(codeInvalid, "frames are JSON text, not binary"))
			} else if wc.admitFrame(buf.Bytes()) {
				wc.handleUnlessDraining(buf.Bytes())
			}
		}
		if buf.Cap() <= 64<<10 {
			framePool.Put(buf)
		}
		if err != nil {
			return
		}
	}
}

var framePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// push queues a frame; a queue that cannot take a frame it may not drop
// means the client stopped reading: the connection is closed.
func (wc *wsConn) push(f outbox.Frame) {
	if !wc.q.Push(f) && errors.Is(wc.q.Err(), outbox.ErrOverflow) {
		go wc.shutdown(websocket.StatusPolicyViolation, "slow consumer: outbound queue full")
	}
	if st := wc.q.Stats(); int64(st.HighWater) > wc.s.ws.highWater.Load() {
		wc.s.ws.highWater.Store(int64(st.HighWater)) // a racy max is fine for a statistic
	}
}

// frameOf queues a frame that belongs to no inbox.
func frameOf(f wire.Frame) outbox.Frame { return outbox.Frame{Kind: f.Kind, Data: f.Data} }

// WriteBatch writes a batch of frames, one websocket message each, in one
// write to the socket: the frames go to the corked connection's buffer, and
// uncorking sends them together.
func (wc *wsConn) WriteBatch(frames []outbox.Frame) error {
	wc.cork.Cork()
	for _, f := range frames {
		// Background: the write only fills the cork buffer; the blocking
		// write and its deadline are Uncork's.
		if err := wc.c.Write(context.Background(), websocket.MessageText, f.Data); err != nil {
			_ = wc.cork.Uncork()
			return err
		}
	}
	return wc.cork.Uncork()
}

// handleUnlessDraining handles a frame, or refuses it once the connection
// is closing.
func (wc *wsConn) handleUnlessDraining(raw []byte) {
	wc.busy.Lock()
	defer wc.busy.Unlock()
	if wc.draining.Load() {
		wc.sendError(wire.RefOf(raw), errorf(codeUnavailable, "the server is shutting down; send it again once reconnected"))
		return
	}
	wc.handle(raw)
}

// drainAndClose closes the connection for a stopping server: the frame
// being handled, if any, finishes (within CommandTimeout), what is queued
// is written (within WriteTimeout), then 1001.
func (wc *wsConn) drainAndClose() {
	wc.draining.Store(true)
	handled := make(chan struct{})
	go func() {
		wc.busy.Lock()
		close(handled) // no frame is being handled, and none will be
		wc.busy.Unlock()
	}()
	timer := time.NewTimer(wc.cfg.CommandTimeout)
	select {
	case <-handled:
	case <-timer.C:
	}
	timer.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), wc.cfg.WriteTimeout)
	_ = wc.q.Drain(ctx)
	cancel()
	wc.closeWithHandshake(websocket.StatusGoingAway, "server shutting down")
}

// shutdown ends the connection once: the session actor stops (it
// unsubscribes), the queue drops what it holds, the socket closes.
func (wc *wsConn) shutdown(code websocket.StatusCode, reason string) { wc.stop(code, reason, false) }

// closeWithHandshake ends the connection like shutdown, but for a peer that
// is alive and reading: the close handshake runs before the reader's
// context ends, which would drop the connection at once, and a peer still
// sending would then get a reset that can swallow the frames written
// before the close.
func (wc *wsConn) closeWithHandshake(code websocket.StatusCode, reason string) {
	wc.stop(code, reason, true)
}

func (wc *wsConn) stop(code websocket.StatusCode, reason string, handshake bool) {
	wc.once.Do(func() {
		wc.draining.Store(true) // no frame is handled from here on
		if !handshake {
			wc.cancel()
		}
		if k := wc.alive.Load(); k != nil {
			k.Stop()
		}
		wc.q.Close()
		wc.root.Stop(wc.pid)
		wc.s.ws.mu.Lock()
		delete(wc.s.ws.conns, wc)
		wc.s.ws.mu.Unlock()
		wc.s.wsConnections.Add(-1)
		wc.slot.release()
		if code == websocket.StatusNormalClosure && reason == "" {
			_ = wc.c.CloseNow() // the peer went away: no handshake to wait for
		} else {
			_ = wc.c.Close(code, reason)
		}
		wc.cancel()
	})
}

// handshakeProblem says what makes r no websocket opening handshake (RFC
// 6455 4.2.1), checked as websocket.Accept checks it, or "" when nothing
// does.
func handshakeProblem(r *http.Request) string {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return "GET /v1/ws takes a websocket upgrade (Connection: Upgrade, Upgrade: websocket)"
	}
	if !r.ProtoAtLeast(1, 1) {
		return "a websocket upgrade needs HTTP/1.1"
	}
	if r.ContentLength != 0 {
		return "a websocket upgrade takes no body"
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return fmt.Sprintf("Sec-WebSocket-Version %q is not supported; only 13 is", v)
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "a websocket upgrade takes exactly one Sec-WebSocket-Key"
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return "Sec-WebSocket-Key must be 16 bytes in base64"
	}
	return ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// originAllowed applies websocket.Accept's origin rule: no Origin (not a
// browser), the page's own host, or a host matching one of patterns
// (path.Match, case-insensitive; a pattern with "://" matches the scheme
// too).
func originAllowed(r *http.Request, patterns []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(r.Host, u.Host) {
		return true
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}
