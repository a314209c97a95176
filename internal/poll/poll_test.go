package poll

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilRechecks(t *testing.T) {
	var n atomic.Int32
	Until(t, 10*time.Second, "the third check", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("checked %d times, want 3", got)
	}
}

func TestUntilSignaledChecksOncePerWake(t *testing.T) {
	wake := make(chan struct{}) // unbuffered: a send completes only when the helper waits
	sentBoth := make(chan struct{})
	go func() {
		defer close(sentBoth)
		wake <- struct{}{}
		wake <- struct{}{}
	}()
	var checks atomic.Int32
	UntilSignaled(t, 10*time.Second, "the third check", wake, func() bool { return checks.Add(1) >= 3 })
	// Once before waiting and once per wake: the third check needs both
	// wakes, so a helper that re-checked without waiting would leave the
	// sender blocked.
	select {
	case <-sentBoth:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper returned without waiting for the wakes")
	}
}

// fatalRecorder records Fatalf instead of stopping the test, so a timeout
// can be asserted; Fatalf still ends the helper's goroutine as testing does.
type fatalRecorder struct {
	testing.TB
	failed atomic.Bool
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(string, ...any) {
	r.failed.Store(true)
	runtime.Goexit()
}

func TestTimeoutsFail(t *testing.T) {
	for name, wait := range map[string]func(testing.TB){
		"Until": func(tb testing.TB) { Until(tb, 20*time.Millisecond, "never", func() bool { return false }) },
		"UntilSignaled": func(tb testing.TB) {
			UntilSignaled(tb, 20*time.Millisecond, "never", make(chan struct{}), func() bool { return false })
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				wait(r)
			}()
			<-done
			if !r.failed.Load() {
				t.Fatal("a condition that never holds did not fail the test")
			}
		})
	}
}
