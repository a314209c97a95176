package metrics

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	q := NewWindow([]float64{0.001, 0.002, 0.004}, time.Minute, 12)
	t0 := time.Unix(1_000_000, 0)
	if _, ok := q.Quantile(0.99, t0); ok {
		t.Fatal("a quantile without samples")
	}
	// 98 fast commits and two slow ones: p99 falls in the slow bucket,
	// p50 in the fast one.
	for i := range 100 {
		d := 500 * time.Microsecond
		if i >= 98 {
			d = 3 * time.Millisecond
		}
		q.Observe(d, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	now := t0.Add(10 * time.Second)
	if d, ok := q.Quantile(0.99, now); !ok || d != 4*time.Millisecond {
		t.Fatalf("p99 %s %v, want 4ms", d, ok)
	}
	if d, _ := q.Quantile(0.5, now); d != time.Millisecond {
		t.Fatalf("p50 %s, want 1ms", d)
	}
	// Beyond the last bound.
	q.Observe(time.Second, now)
	if d, _ := q.Quantile(1, now); d != time.Duration(1<<63-1) {
		t.Fatalf("max %s, want the overflow bucket", d)
	}
	// A minute later the old samples have left the window.
	later := now.Add(61 * time.Second)
	if _, ok := q.Quantile(0.99, later); ok {
		t.Fatal("samples older than the window still count")
	}
	q.Observe(1500*time.Microsecond, later)
	if d, ok := q.Quantile(0.99, later); !ok || d != 2*time.Millisecond {
		t.Fatalf("p99 after the window moved: %s %v", d, ok)
	}
}
