// Package poll is how tests wait: Until re-checks a condition that no event
// announces (index contents, metrics, a port opening) until it holds or the
// deadline passes; UntilSignaled re-checks one on each signal of the event
// that changes it (a membership change), so it neither sleeps nor spins.
package poll

import (
	"testing"
	"time"
)

// Until fails t unless cond holds within the given time.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// UntilSignaled fails t unless cond holds within the given time, checking it
// once at first and then each time wake delivers: for conditions that an
// event announces (a membership change, say) but whose event may have fired
// before the caller subscribed. The caller subscribes before calling, so no
// change can fall between the first check and the wait.
func UntilSignaled(t testing.TB, within time.Duration, what string, wake <-chan struct{}, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-timeout.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
	}
}
