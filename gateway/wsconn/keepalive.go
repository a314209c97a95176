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
	ctx            context.Context
	interval, idle time.Duration
	ping           func(context.Context) error
	dead           func(reason string)

	lastRead atomic.Int64 // unix nanos of the last frame or pong

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

// StartKeepalive starts pinging until ctx ends or Stop. ping sends a ping and waits for its pong
// (or for its context to end); dead is called once, from the timer, when
// the peer is gone, and the keepalive stops. Touch marks the peer alive.
func StartKeepalive(ctx context.Context, interval, idle time.Duration, ping func(context.Context) error, dead func(reason string)) *Keepalive {
	k := &Keepalive{ctx: ctx, interval: interval, idle: idle, ping: ping, dead: dead}
	k.Touch()
	k.mu.Lock()
	k.timer = time.AfterFunc(interval, k.tick)
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
	idle := time.Since(time.Unix(0, k.lastRead.Load()))
	if idle >= k.idle {
		k.Stop()
		k.dead(ReasonIdle)
		return
	}
	ctx, cancel := context.WithTimeout(k.ctx, k.idle-idle)
	err := k.ping(ctx)
	cancel()
	if err != nil {
		if !k.isStopped() && k.ctx.Err() == nil {
			k.Stop()
			k.dead(ReasonNoPong)
		}
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		k.timer.Reset(k.interval)
	}
}
