package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBurstThenRefillAtTheRate(t *testing.T) {
	l := New(20, 40, 0)
	now := time.Unix(1_000_000, 0)
	for i := range 40 {
		if ok, _ := l.AllowAt("tok_a", now); !ok {
			t.Fatalf("event %d of the burst of 40 refused", i+1)
		}
	}
	ok, wait := l.AllowAt("tok_a", now)
	if ok {
		t.Fatal("41st event in the same instant allowed")
	}
	if wait <= 0 || wait > 50*time.Millisecond {
		t.Fatalf("retry after %v, want (0, 50ms] at 20/s", wait)
	}
	// A refused event takes nothing: after exactly the announced wait, one
	// event passes, and the next is refused again.
	if ok, _ := l.AllowAt("tok_a", now.Add(wait)); !ok {
		t.Fatalf("refused after waiting the announced %v", wait)
	}
	if ok, _ := l.AllowAt("tok_a", now.Add(wait)); ok {
		t.Fatal("second event after one refill allowed")
	}
	// Over a second, 20 more.
	later := now.Add(wait + time.Second)
	n := 0
	for {
		if ok, _ := l.AllowAt("tok_a", later); !ok {
			break
		}
		n++
	}
	if n != 20 {
		t.Fatalf("%d events allowed after one second, want 20", n)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l := New(1, 1, 0)
	now := time.Unix(1_000_000, 0)
	if ok, _ := l.AllowAt("a", now); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.AllowAt("a", now); ok {
		t.Fatal("a allowed twice at 1/s burst 1")
	}
	if ok, _ := l.AllowAt("b", now); !ok {
		t.Fatal("b refused because of a")
	}
}

func TestUnlimited(t *testing.T) {
	l := New(0, 0, 0)
	if !l.Unlimited() {
		t.Fatal("rate 0 is not unlimited")
	}
	for range 10_000 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("unlimited limiter refused")
		}
	}
}

func TestBoundedMemoryEvictsLeastRecent(t *testing.T) {
	l := New(1, 1, 2)
	now := time.Unix(1_000_000, 0)
	l.AllowAt("a", now) // a exhausted
	l.AllowAt("b", now)
	l.AllowAt("a", now) // a most recent (refused, still touched)
	l.AllowAt("c", now) // evicts b, the least recent
	if l.buckets.Len() != 2 {
		t.Fatalf("%d buckets, want at most 2", l.buckets.Len())
	}
	if ok, _ := l.AllowAt("a", now); ok {
		t.Fatal("a was evicted instead of the least recent key")
	}
	if ok, _ := l.AllowAt("b", now); !ok {
		t.Fatal("b was not evicted (its bucket is still empty)")
	}
}

// Concurrent callers of one key share one bucket: exactly the burst passes.
func TestConcurrentCallersShareOneBucket(t *testing.T) {
	l := New(0.001, 50, 0)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				_, _ = l.Allow(fmt.Sprint("own", g))
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 50 {
		t.Fatalf("%d events allowed, want exactly the burst of 50", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{time.Nanosecond, 1}, {50 * time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {0, 1}} {
		if got := RetryAfterSeconds(c.d); got != c.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}
