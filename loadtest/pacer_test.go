package loadtest

import (
	"context"
	"testing"
	"time"
)

// fakeClock never waits: SleepUntil moves time forward to the target, and
// tests move it further to simulate slow work.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

func TestPacerSchedule(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		span time.Duration
		want int64
	}{
		{1000, time.Second, 1000},
		{3, time.Second, 3},
		{0.5, 3 * time.Second, 2}, // due at 0s and 2s
		{7, 1500 * time.Millisecond, 11},
		{2000, 10 * time.Second, 20000},
	} {
		p := pacer{start: t0, end: t0.Add(tc.span), rate: tc.rate}
		if got := p.total(); got != tc.want {
			t.Errorf("rate %g over %s: total = %d, want %d", tc.rate, tc.span, got, tc.want)
		}
	}
}

func TestPacerIsOpenLoop(t *testing.T) {
	clk := &fakeClock{now: t0}
	p := pacer{start: t0, end: t0.Add(time.Second), rate: 100}
	var dues, emittedAt []time.Time
	n := p.run(context.Background(), clk, func(i int64, due time.Time) bool {
		dues = append(dues, due)
		emittedAt = append(emittedAt, clk.now)
		if i == 10 {
			clk.now = clk.now.Add(200 * time.Millisecond) // a stall from 100ms to 300ms: every worker busy
		}
		return true
	})
	if n != 100 || len(dues) != 100 {
		t.Fatalf("emitted %d (%d calls), want 100", n, len(dues))
	}
	for i, d := range dues {
		if want := t0.Add(time.Duration(i) * 10 * time.Millisecond); !d.Equal(want) {
			t.Fatalf("send %d due %v, want %v: the schedule must not shift after a stall", i, d.Sub(t0), want.Sub(t0))
		}
	}
	// The sends due during the stall go out at once when it ends (a
	// catch-up burst), then the schedule is kept again.
	for i := 11; i <= 30; i++ {
		if want := t0.Add(300 * time.Millisecond); !emittedAt[i].Equal(want) {
			t.Errorf("send %d emitted at %v, want %v", i, emittedAt[i].Sub(t0), want.Sub(t0))
		}
	}
	if !emittedAt[40].Equal(dues[40]) {
		t.Errorf("send 40 emitted at %v, want on time at %v", emittedAt[40].Sub(t0), dues[40].Sub(t0))
	}
}

func TestPacerStops(t *testing.T) {
	clk := &fakeClock{now: t0}
	p := pacer{start: t0, end: t0.Add(time.Second), rate: 100}
	n := p.run(context.Background(), clk, func(i int64, _ time.Time) bool { return i < 41 })
	if n != 41 {
		t.Errorf("emit refused the 42nd: run = %d, want 41", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := p.run(ctx, clk, func(int64, time.Time) bool { return true }); n != 0 {
		t.Errorf("cancelled: run = %d, want 0", n)
	}
}

func TestRealClockSleepUntil(t *testing.T) {
	clk := realClock{}
	start := time.Now()
	if err := clk.SleepUntil(context.Background(), start.Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("woke early")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := clk.SleepUntil(ctx, time.Now().Add(time.Hour)); err == nil {
		t.Error("cancelled sleep returned nil")
	}
}
