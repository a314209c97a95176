// Package poll waits in tests for conditions that no event announces
// (index contents, metrics, membership): it re-checks until the condition
// holds or the deadline passes.
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
