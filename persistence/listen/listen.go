// Package listen holds a node's one PostgreSQL LISTEN session and hands each
// channel's notices to the node's subscribers.
//
// PostgreSQL wakes every listening backend of a database at every NOTIFY,
// whatever the channel, and every group commit sends one: a node with a
// session per listener (the journal's two consumers, the timer scanner, inbox
// settings, credential revocations) cost five backend wake-ups per commit,
// three of them for nothing. One session per node costs one.
//
// A notice sent while no session listens is lost, so a subscription also
// reports when notices may have been missed (Notices.Missed): when its
// channel starts being listened to, when the session is lost, and when the
// subscriber fell too far behind. The subscriber then re-reads whatever the
// notices announce.
package listen

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxRetry bounds the pause between attempts to open a session.
const maxRetry = 5 * time.Second

// maxPending bounds the payloads a subscription holds for a subscriber that
// does not take them; past it they are dropped and reported as missed.
const maxPending = 1024

// Hub is a node's LISTEN session. It listens to a channel while the channel
// has a subscriber, and reconnects after a lost session. Run runs it.
type Hub struct {
	connect func(context.Context) (*pgx.Conn, error)
	log     *slog.Logger
	retry   time.Duration

	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
	// listened are the channels the current session listens to (empty
	// between sessions: lost clears it).
	listened map[string]bool
	// interrupt cuts the session's current wait short when the set of
	// channels changes (nil while it is not waiting).
	interrupt context.CancelFunc
	changed   bool
}

// ApplicationName names the hub's session in pg_stat_activity.
const ApplicationName = "switchboard-listen"

// New returns a hub whose session connects with cfg. A nil log discards.
func New(cfg *pgx.ConnConfig, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.Copy()
	cfg.RuntimeParams["application_name"] = ApplicationName
	return &Hub{
		connect:  func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) },
		log:      log,
		retry:    100 * time.Millisecond,
		subs:     map[string]map[*Subscription]struct{}{},
		listened: map[string]bool{},
	}
}

// Run keeps the session up until ctx ends. A session that cannot be
// opened is retried with backoff (doubling up to maxRetry), so an outage of
// the database logs a warning every few seconds, not many a second.
func (h *Hub) Run(ctx context.Context) {
	backoff := h.retry
	for {
		listened, err := h.session(ctx)
		h.lost()
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = h.retry
		}
		h.log.Warn("notice session lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRetry)
	}
}

// Subscribe starts receiving channel's notices. The first Notices it yields
// once the channel is listened to report Missed: what was sent before then
// is for the subscriber to read. Close it when done.
func (h *Hub) Subscribe(channel string) *Subscription {
	s := &Subscription{hub: h, channel: channel, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[channel] == nil {
		h.subs[channel] = map[*Subscription]struct{}{}
		h.changedLocked()
	}
	h.subs[channel][s] = struct{}{}
	if h.listened[channel] {
		s.listened()
	}
	return s
}

func (h *Hub) unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.channel], s)
	if len(h.subs[s.channel]) == 0 {
		delete(h.subs, s.channel)
		h.changedLocked()
	}
}

func (h *Hub) changedLocked() {
	h.changed = true
	if h.interrupt != nil {
		h.interrupt()
	}
}

// session listens on one connection until it fails or ctx ends; listened
// reports whether it got as far as listening.
func (h *Hub) session(ctx context.Context) (listened bool, err error) {
	conn, err := h.connect(ctx)
	if err != nil {
		return false, fmt.Errorf("listen: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	for {
		if err := h.sync(ctx, conn); err != nil {
			return listened, err
		}
		listened = true
		wctx, cancel := context.WithCancel(ctx)
		h.mu.Lock()
		if h.changed {
			h.mu.Unlock()
			cancel()
			continue
		}
		h.interrupt = cancel
		h.mu.Unlock()
		n, err := conn.WaitForNotification(wctx)
		interrupted := wctx.Err() != nil
		h.mu.Lock()
		h.interrupt = nil
		h.mu.Unlock()
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && interrupted:
			// Interrupted by a change of channels: the wait gave up on a
			// deadline, which leaves the connection usable.
			continue
		case err != nil:
			return true, fmt.Errorf("listen: wait: %w", err)
		}
		h.deliver(n.Channel, n.Payload)
	}
}

// sync makes the session listen to exactly the subscribed channels. Only
// the goroutine running the session writes h.listened, so it may do the
// session's I/O between reading and updating it.
func (h *Hub) sync(ctx context.Context, conn *pgx.Conn) error {
	h.mu.Lock()
	h.changed = false
	var add, drop []string
	for ch := range h.subs {
		if !h.listened[ch] {
			add = append(add, ch)
		}
	}
	for ch := range h.listened {
		if h.subs[ch] == nil {
			drop = append(drop, ch)
		}
	}
	h.mu.Unlock()
	for _, ch := range drop {
		if _, err := conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen: unlisten %s: %w", ch, err)
		}
	}
	for _, ch := range add {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen: listen %s: %w", ch, err)
		}
	}
	// Subscriptions made since the last sync (and all of them after a
	// reconnection) learn that their channel is listened to now.
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range drop {
		delete(h.listened, ch)
	}
	for _, ch := range add {
		h.listened[ch] = true
	}
	for ch := range h.listened {
		for s := range h.subs[ch] {
			s.listened()
		}
	}
	return nil
}

func (h *Hub) deliver(channel, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[channel] {
		s.add(payload)
	}
}

// lost tells every subscription that notices are not listened to.
func (h *Hub) lost() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.listened)
	for _, subs := range h.subs {
		for s := range subs {
			s.unlistened()
		}
	}
}

// Subscription is one subscriber's share of a channel.
type Subscription struct {
	hub     *Hub
	channel string
	ready   chan struct{} // holds a token while Take has something

	mu        sync.Mutex
	pending   []string
	missed    bool
	listening bool
}

// Notices is what a subscription received since the last Take.
type Notices struct {
	// Payloads are the notices' payloads, in the order they were sent.
	Payloads []string
	// Missed reports that notices on the channel may have been lost before
	// these: the subscriber re-reads what they would have announced.
	Missed bool
	// Listening reports whether the channel was listened to at the Take:
	// while it is not, notices are being lost (and Missed will say so
	// again once it is).
	Listening bool
}

// Empty reports whether n holds neither notices nor news of missed ones.
func (n Notices) Empty() bool { return len(n.Payloads) == 0 && !n.Missed }

// Ready delivers when Take has something; a delivery may find it empty after
// a Take made without waiting.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns what arrived since the last Take, without waiting.
func (s *Subscription) Take() Notices {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := Notices{Payloads: s.pending, Missed: s.missed, Listening: s.listening}
	s.pending, s.missed = nil, false
	return n
}

// Wait returns what arrived, waiting up to d for something to (an empty
// Notices when nothing did, or when ctx ended).
func (s *Subscription) Wait(ctx context.Context, d time.Duration) Notices {
	if n := s.Take(); !n.Empty() {
		return n
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ready:
		return s.Take()
	case <-t.C:
	case <-ctx.Done():
	}
	return Notices{Listening: s.Listening()}
}

// Listening reports whether the channel is listened to now.
func (s *Subscription) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listening
}

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.unsubscribe(s) }

func (s *Subscription) add(payload string) {
	s.mu.Lock()
	if len(s.pending) < maxPending {
		s.pending = append(s.pending, payload)
	} else {
		s.pending, s.missed = nil, true
	}
	s.mu.Unlock()
	s.signal()
}

// listened marks the channel listened to; news only when it was not.
func (s *Subscription) listened() {
	s.mu.Lock()
	news := !s.listening
	s.listening = true
	if news {
		s.missed = true
	}
	s.mu.Unlock()
	if news {
		s.signal()
	}
}

func (s *Subscription) unlistened() {
	s.mu.Lock()
	news := s.listening
	if news {
		s.listening, s.missed = false, true
	}
	s.mu.Unlock()
	if news {
		s.signal()
	}
}

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}
