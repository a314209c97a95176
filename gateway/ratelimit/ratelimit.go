// Package ratelimit limits callers by key (a credential id): one token
// bucket per key, held in a bounded LRU so that memory stays bounded however
// many credentials call. Keys are only ever authenticated credentials, so an
// anonymous flood cannot evict the buckets of real callers.
package ratelimit

import (
	"math"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// DefaultSize is how many keys a Limiter remembers by default. A key evicted
// and seen again starts with a full bucket, which is harmless: only the
// least recently active keys are evicted.
const DefaultSize = 100_000

// Limiter allows each key perSecond events with bursts of burst. The zero
// rate means no limit. It is safe for concurrent use.
type Limiter struct {
	limit rate.Limit
	burst int
	// buckets is nil when there is no limit.
	buckets *lru.Cache[string, *rate.Limiter]
}

// New returns a limiter of perSecond events per key with bursts of burst
// (at least 1), remembering up to size keys (DefaultSize when size ≤ 0).
// perSecond ≤ 0 means unlimited.
func New(perSecond float64, burst, size int) *Limiter {
	if perSecond <= 0 {
		return &Limiter{limit: rate.Inf}
	}
	if size <= 0 {
		size = DefaultSize
	}
	c, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		panic(err) // only for size ≤ 0, excluded above
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: c}
}

// Allow takes one event for key now. When over the limit it takes nothing
// and says how long until an event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) { return l.AllowAt(key, time.Now()) }

// AllowAt is Allow at a given time (tests drive the clock).
func (l *Limiter) AllowAt(key string, now time.Time) (bool, time.Duration) {
	if l.buckets == nil {
		return true, 0
	}
	b, ok := l.buckets.Get(key)
	if !ok {
		// PeekOrAdd keeps one bucket per key when two callers race here.
		fresh := rate.NewLimiter(l.limit, l.burst)
		if prev, found, _ := l.buckets.PeekOrAdd(key, fresh); found {
			b = prev
		} else {
			b = fresh
		}
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.TokensAt(now)
	return false, max(time.Duration(missing/float64(l.limit)*float64(time.Second)), time.Nanosecond)
}

// Unlimited reports whether the limiter lets everything through.
func (l *Limiter) Unlimited() bool { return l.buckets == nil }

// RetryAfterSeconds is d rounded up to whole seconds, at least 1: the value
// of a Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
