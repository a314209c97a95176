package loadtest

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

type freshLog struct {
	samples []time.Duration
	tags    []sendTag
}

func newTestTracker() (*tracker, *freshLog) {
	log := &freshLog{}
	tr := newTracker(func(d time.Duration, tag sendTag) {
		log.samples = append(log.samples, d)
		log.tags = append(log.tags, tag)
	})
	return tr, log
}

// subscribe registers a subscriber of inbox "in" and gives it an empty
// snapshot at epoch "e1", seq 0.
func subscribe(tr *tracker) int {
	id := tr.addSubscriber("in")
	tr.subscribed(id, "e1", 0, false)
	tr.snapshot(id, "e1", 0, nil, 0, t0)
	return id
}

func wantCounts(t *testing.T, got trackerCounts, want map[string]int64) {
	t.Helper()
	fields := map[string]int64{
		"stale": got.Stale, "gaps": got.Gaps, "coalesced": got.Coalesced, "jumps": got.SeqJumps,
		"resyncs": got.Resyncs, "redelivered": got.Redelivered, "duplicates": got.Duplicates,
		"unverified": got.Unverified, "unmeasured": got.Unmeasured, "lost": got.LostUpdates, "pending": got.Pending,
	}
	for name, v := range fields {
		if v != want[name] {
			t.Errorf("%s = %d, want %d (all: %+v)", name, v, want[name], got)
		}
	}
}

func TestTrackerUpdateBeforeAndAfterAck(t *testing.T) {
	tr, log := newTestTracker()
	a := subscribe(tr)
	b := subscribe(tr)
	tag := sendTag{measured: true}

	// Subscriber a receives version 1 before the HTTP answer, b after it.
	tr.update(a, "e1", 1, "c1", 1, 11, ms(5))
	tr.acked("in", "c1", 1, ms(0), tag, true)
	if tr.snapshotCounts().Pending != 1 {
		t.Fatalf("pending = %d, want 1 (b has not got it)", tr.snapshotCounts().Pending)
	}
	tr.update(b, "e1", 1, "c1", 1, 11, ms(9))

	if len(log.samples) != 2 || log.samples[0] != 5*time.Millisecond || log.samples[1] != 9*time.Millisecond {
		t.Fatalf("freshness samples = %v, want [5ms 9ms]", log.samples)
	}
	wantCounts(t, tr.finish(), map[string]int64{})
}

func TestTrackerLaterVersionSettlesEarlierWrites(t *testing.T) {
	tr, log := newTestTracker()
	a := subscribe(tr)
	tr.acked("in", "c1", 1, ms(0), sendTag{}, true)
	tr.acked("in", "c1", 2, ms(1), sendTag{}, true)
	tr.acked("in", "c1", 3, ms(2), sendTag{}, true)
	// Version 2 was coalesced away: 3 settles 1, 2 and 3.
	tr.update(a, "e1", 1, "c1", 1, 1, ms(4))
	tr.update(a, "e1", 3, "c1", 3, 3, ms(10))
	want := []time.Duration{4 * time.Millisecond, 9 * time.Millisecond, 8 * time.Millisecond}
	if len(log.samples) != 3 {
		t.Fatalf("samples = %v, want %v", log.samples, want)
	}
	for i := range want {
		if log.samples[i] != want[i] {
			t.Errorf("sample %d = %v, want %v", i, log.samples[i], want[i])
		}
	}
	// One seq skipped, matched by one version skipped: coalesced, no gap.
	wantCounts(t, tr.finish(), map[string]int64{"coalesced": 1, "jumps": 1})
}

func TestTrackerAckAfterNewerVersionArrived(t *testing.T) {
	tr, log := newTestTracker()
	a := subscribe(tr)
	tr.update(a, "e1", 1, "c1", 1, 1, ms(3))
	tr.update(a, "e1", 2, "c1", 2, 2, ms(7))
	// The answer for version 1 arrives last; the subscriber held it since 3ms.
	tr.acked("in", "c1", 2, ms(5), sendTag{}, true)
	tr.acked("in", "c1", 1, ms(1), sendTag{}, true)
	if len(log.samples) != 2 || log.samples[0] != 2*time.Millisecond || log.samples[1] != 2*time.Millisecond {
		t.Fatalf("samples = %v, want [2ms 2ms]", log.samples)
	}
	wantCounts(t, tr.finish(), map[string]int64{})
}

func TestTrackerStaleAndRedelivered(t *testing.T) {
	tr, _ := newTestTracker()
	a := subscribe(tr)
	tr.update(a, "e1", 1, "c1", 1, 100, ms(1))
	tr.update(a, "e1", 2, "c1", 2, 200, ms(2))
	tr.update(a, "e1", 3, "c1", 1, 100, ms(3)) // lower after higher
	tr.update(a, "e1", 4, "c1", 2, 200, ms(4)) // same version, same contents
	tr.update(a, "e1", 5, "c1", 2, 999, ms(5)) // same version, other contents
	wantCounts(t, tr.finish(), map[string]int64{"stale": 1, "redelivered": 1, "duplicates": 1})
}

func TestTrackerStaleSnapshot(t *testing.T) {
	tr, _ := newTestTracker()
	a := subscribe(tr)
	tr.update(a, "e1", 1, "c1", 5, 5, ms(1))
	tr.resync(a)
	tr.snapshot(a, "e1", 1, []snapConv{{id: "c1", version: 4}}, 1, ms(2))
	wantCounts(t, tr.finish(), map[string]int64{"stale": 1, "resyncs": 1})
}

func TestTrackerGaps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(tr *tracker, a int)
		want  map[string]int64
	}{
		{
			name: "seq skipped, nothing coalesced",
			steps: func(tr *tracker, a int) {
				tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
				tr.update(a, "e1", 3, "c2", 1, 1, ms(2))
			},
			want: map[string]int64{"gaps": 1, "coalesced": 1, "jumps": 1},
		},
		{
			name: "seq skipped, explained later in the stretch",
			steps: func(tr *tracker, a int) {
				tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
				tr.update(a, "e1", 3, "c2", 1, 1, ms(2)) // seq 2 was c1 v2, replaced by...
				tr.update(a, "e1", 4, "c1", 3, 3, ms(3)) // ...c1 v3
			},
			want: map[string]int64{"coalesced": 1, "jumps": 1},
		},
		{
			name: "repeated seq",
			steps: func(tr *tracker, a int) {
				tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
				tr.update(a, "e1", 1, "c2", 1, 1, ms(2))
			},
			want: map[string]int64{"gaps": 1},
		},
		{
			name: "epoch changed without resync",
			steps: func(tr *tracker, a int) {
				tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
				tr.update(a, "e2", 1, "c1", 2, 2, ms(2))
				tr.update(a, "e2", 2, "c1", 3, 3, ms(3))
			},
			want: map[string]int64{"gaps": 1},
		},
		{
			name: "resync then snapshot starts afresh",
			steps: func(tr *tracker, a int) {
				tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
				tr.resync(a)
				tr.snapshot(a, "e2", 7, []snapConv{{id: "c1", version: 4}}, 1, ms(2))
				tr.update(a, "e2", 8, "c1", 5, 5, ms(3))
			},
			want: map[string]int64{"resyncs": 1},
		},
		{
			name: "resumed reconnect continues the stretch",
			steps: func(tr *tracker, a int) {
				tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
				tr.subscribed(a, "e1", 1, true)
				tr.update(a, "e1", 2, "c1", 2, 2, ms(2))
				tr.update(a, "e1", 4, "c2", 1, 1, ms(3)) // unexplained
			},
			want: map[string]int64{"gaps": 1, "coalesced": 1, "jumps": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker()
			a := subscribe(tr)
			tc.steps(tr, a)
			wantCounts(t, tr.finish(), tc.want)
		})
	}
}

func TestTrackerLost(t *testing.T) {
	tr, _ := newTestTracker()
	a := subscribe(tr)
	b := subscribe(tr)
	tr.acked("in", "c1", 1, ms(0), sendTag{}, true)
	tr.acked("in", "c1", 2, ms(1), sendTag{}, true)
	tr.update(a, "e1", 1, "c1", 1, 1, ms(2))
	tr.update(b, "e1", 1, "c1", 1, 1, ms(2))
	tr.update(b, "e1", 2, "c1", 2, 2, ms(3))
	// a never gets version 2, and no seq skip tells it so: lost, no gap.
	wantCounts(t, tr.finish(), map[string]int64{"lost": 1})
}

func TestTrackerDuplicateVersions(t *testing.T) {
	tr, _ := newTestTracker()
	tr.acked("in", "c1", 1, ms(0), sendTag{}, true)
	tr.acked("in", "c1", 1, ms(1), sendTag{}, false) // a replay: fine
	tr.acked("in", "c1", 1, ms(2), sendTag{}, true)  // a second new write at version 1
	tr.acked("in", "c2", 1, ms(2), sendTag{}, true)  // another conversation
	c := tr.finish()
	if c.Duplicates != 1 {
		t.Fatalf("duplicates = %d, want 1", c.Duplicates)
	}
}

func TestTrackerTruncatedSnapshotUnverified(t *testing.T) {
	tr, _ := newTestTracker()
	a := subscribe(tr)
	tr.acked("in", "c1", 1, ms(0), sendTag{}, true) // waiting
	tr.resync(a)
	// Only the first page came back, without c1.
	tr.snapshot(a, "e1", 10, []snapConv{{id: "c9", version: 3}}, 60, ms(5))
	// Due before the truncated snapshot, answered after it.
	tr.acked("in", "c1", 2, ms(1), sendTag{}, true)
	// Due after it: the subscriber must get it.
	tr.acked("in", "c1", 3, ms(6), sendTag{}, true)
	wantCounts(t, tr.finish(), map[string]int64{"resyncs": 1, "unverified": 2, "lost": 1})
}

func TestTrackerHistoryPruned(t *testing.T) {
	tr, log := newTestTracker()
	a := subscribe(tr)
	tr.update(a, "e1", 1, "c1", 1, 1, ms(0))
	tr.update(a, "e1", 2, "c1", 2, 2, t0.Add(historyHorizon+time.Second))
	tr.acked("in", "c1", 1, ms(-1), sendTag{}, true)
	tr.acked("in", "c1", 2, t0.Add(historyHorizon), sendTag{}, true)
	if len(log.samples) != 1 || log.samples[0] != time.Second {
		t.Fatalf("samples = %v, want [1s]", log.samples)
	}
	wantCounts(t, tr.finish(), map[string]int64{"unmeasured": 1})
}

func TestTrackerWaitSettled(t *testing.T) {
	tr, _ := newTestTracker()
	a := subscribe(tr)
	tr.acked("in", "c1", 1, ms(0), sendTag{}, true)

	done := make(chan error, 1)
	go func() { done <- tr.waitSettled(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("waitSettled returned %v with a write pending", err)
	default:
	}
	tr.update(a, "e1", 1, "c1", 1, 1, ms(1))
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	tr.acked("in", "c1", 2, ms(2), sendTag{}, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.waitSettled(ctx); err == nil {
		t.Fatal("waitSettled with a cancelled context and a pending write returned nil")
	}
}

func TestVersionSet(t *testing.T) {
	var s versionSet
	for _, v := range []int64{1, 64, 65, 1000} {
		if !s.add(v) {
			t.Errorf("add(%d) first time = false", v)
		}
		if s.add(v) {
			t.Errorf("add(%d) second time = true", v)
		}
	}
}
