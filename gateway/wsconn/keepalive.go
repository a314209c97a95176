package wsconn

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Keepalive pings a peer every interval and gives up on it when nothing
// (not even a pong) arrived for idle. It runs on a timer, never on a
// goroutine of its own: a node holds tens of thousands of idle connections.
type Keepalive struct {
	ctx context.Context
	cfg KeepaliveConfig

	lastRead  atomic.Int64 // unix nanos of the last frame, pong or progress
	lastAcked uint64       // cfg.Acked at the last tick; the timer's alone

	// mu orders the timer's creation, re-arming and Stop: the timer's
	// function may run before Start returns, and Stop may come from any
	// goroutine at any time.
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// Idle timeout reasons passed to dead.
const (
	ReasonIdle   = "idle timeout"
	ReasonNoPong = "idle timeout: no pong"
)

// KeepaliveConfig is what a Keepalive pings with and when it gives up.
type KeepaliveConfig struct {
	// Interval between pings; Idle without hearing from the peer makes it
	// dead.
	Interval, Idle time.Duration
	// Ping sends a ping and waits for its pong (or for its context to end).
	Ping func(context.Context) error
	// Dead is called once, from the timer, when the peer is gone, and the
	// keepalive stops.
	Dead func(reason string)
	// Acked, when set, reports how many bytes the peer has acknowledged so
	// far (TCPAcked). A pong waits behind the frames sent before its ping:
	// a slow reader still draining a backlog answers late, yet takes what
	// is sent, so that progress counts as hearing from it. A peer that
	// stops reading stops acknowledging once its receive window is full.
	Acked func() uint64
	// Writing, when set, reports a write to the peer under way (Cork's).
	// No ping is sent then: it would wait behind that write, and the
	// websocket library closes a connection whose ping waits 5 s. The write
	// has a timeout of its own, and Acked shows its progress.
	Writing func() bool
}

// StartKeepalive starts pinging until ctx ends or Stop. Touch marks the
// peer alive.
func StartKeepalive(ctx context.Context, cfg KeepaliveConfig) *Keepalive {
	k := &Keepalive{ctx: ctx, cfg: cfg}
	k.Touch()
	if cfg.Acked != nil {
		k.lastAcked = cfg.Acked()
	}
	k.mu.Lock()
	k.timer = time.AfterFunc(cfg.Interval, k.tick)
	k.mu.Unlock()
	return k
}

// Touch records that something arrived from the peer.
func (k *Keepalive) Touch() { k.lastRead.Store(time.Now().UnixNano()) }

// Stop ends the keepalive; a tick running now does not re-arm, and dead is
// not called after Stop returns unless a tick was already deciding.
func (k *Keepalive) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
	}
}

func (k *Keepalive) isStopped() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stopped
}

func (k *Keepalive) tick() {
	if k.isStopped() || k.ctx.Err() != nil {
		return
	}
	k.progressed()
	idle := time.Since(time.Unix(0, k.lastRead.Load()))
	if idle >= k.cfg.Idle {
		k.Stop()
		k.cfg.Dead(ReasonIdle)
		return
	}
	if k.cfg.Writing != nil && k.cfg.Writing() {
		k.rearm()
		return
	}
	ctx, cancel := context.WithTimeout(k.ctx, k.cfg.Idle-idle)
	err := k.cfg.Ping(ctx)
	cancel()
	if err != nil && !k.progressed() {
		if !k.isStopped() && k.ctx.Err() == nil {
			k.Stop()
			k.cfg.Dead(ReasonNoPong)
		}
		return
	}
	k.rearm()
}

func (k *Keepalive) rearm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		k.timer.Reset(k.cfg.Interval)
	}
}

// progressed reports whether the peer acknowledged more bytes since the
// last look, and if so counts it as heard from.
func (k *Keepalive) progressed() bool {
	if k.cfg.Acked == nil {
		return false
	}
	n := k.cfg.Acked()
	if n == k.lastAcked {
		return false
	}
	k.lastAcked = n
	k.Touch()
	return true
}
