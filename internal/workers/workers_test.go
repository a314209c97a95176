package workers

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// Every scheduled run runs exactly once, from many goroutines at once.
func TestEveryRunRunsOnce(t *testing.T) {
	d := New(300, time.Second)
	const n = 10_000
	var ran [n]atomic.Int32
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		go d.Schedule(func() { ran[i].Add(1); wg.Done() })
	}
	wg.Wait()
	for i := range n {
		if got := ran[i].Load(); got != 1 {
			t.Fatalf("run %d ran %d times", i, got)
		}
	}
}

// A run that blocks never holds up another: Schedule starts a worker when
// none is waiting.
func TestBlockedRunDoesNotHoldOthers(t *testing.T) {
	d := New(300, time.Second)
	release := make(chan struct{})
	started := make(chan struct{})
	d.Schedule(func() { close(started); <-release })
	<-started
	done := make(chan struct{})
	d.Schedule(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a run waited behind a blocked one")
	}
	close(release)
}

// Sequential runs reuse one worker (the point: its grown stack), and an
// idle worker exits. The idle times are ones no pause of a loaded machine
// outlasts: a worker that retired before the test saw it wait would make
// the wait for it never end.
func TestWorkersAreReusedAndRetire(t *testing.T) {
	d := New(300, time.Minute)
	goroutines := map[string]bool{}
	for range 20 {
		done := make(chan string, 1)
		d.Schedule(func() { done <- goroutineID() })
		id := <-done
		goroutines[id] = true
		// Idle counts the worker a moment before it reaches its select; a
		// run scheduled in that moment finds no receiver and rightly starts a
		// second worker. Reuse is what this test is about, so it waits for
		// the worker to be parked in the select.
		poll.Until(t, 10*time.Second, "the worker waits for work", func() bool { return d.Idle() == 1 && parkedInSelect(id) })
	}
	if len(goroutines) != 1 {
		t.Fatalf("20 sequential runs ran on %d goroutines, want 1 worker reused", len(goroutines))
	}
	short := New(300, 2*time.Second)
	done := make(chan struct{})
	short.Schedule(func() { close(done) })
	<-done
	poll.Until(t, 10*time.Second, "the worker waits for work", func() bool { return short.Idle() == 1 })
	poll.Until(t, 10*time.Second, "the idle worker exits", func() bool { return short.Idle() == 0 })
}

// parkedInSelect reports whether goroutine id is blocked in a select, from
// the header of its stack ("goroutine 42 [select]:", or "[select, 2
// minutes]:" once it has waited that long).
func parkedInSelect(id string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Contains(string(buf), "goroutine "+id+" [select")
}

// goroutineID reads the running goroutine's number from its stack header
// ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Fields(string(buf))[1]
}
