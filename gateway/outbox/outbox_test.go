package outbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// client is the test's websocket peer: it applies what the writer delivers
// and checks that a conversation's version never goes back.
type client struct {
	t       *testing.T
	mu      sync.Mutex
	view    map[string]int64 // conv → version seen
	seq     map[string]int64 // inbox → last seq seen
	resyncs map[string]int
	frames  int
	// stall is held by the test while the peer does not read.
	stall   sync.Mutex
	stalled bool
	fail    atomic.Bool
	errs    []string
}

func newClient(t *testing.T) *client {
	return &client{t: t, view: map[string]int64{}, seq: map[string]int64{}, resyncs: map[string]int{}}
}

type snapshotData map[string]int64

func (c *client) WriteBatch(frames []Frame) error {
	c.stall.Lock()
	//lint:ignore SA2001 the empty section waits while the test stalls the peer
	c.stall.Unlock()
	if c.fail.Load() {
		return errors.New("broken pipe")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range frames {
		c.frames++
		switch f.Kind {
		case Update:
			if f.Version <= c.view[f.Conv] {
				c.errs = append(c.errs, fmt.Sprintf("conv %s: version %d after %d", f.Conv, f.Version, c.view[f.Conv]))
			}
			c.view[f.Conv] = f.Version
			// The model's updates carry their inbox's seq first: it only
			// grows, coalesced or not, so resuming from it misses nothing.
			if len(f.Data) >= 8 {
				seq := int64(binary.BigEndian.Uint64(f.Data))
				if seq <= c.seq[f.Inbox] {
					c.errs = append(c.errs, fmt.Sprintf("inbox %s: seq %d after %d", f.Inbox, seq, c.seq[f.Inbox]))
				}
				c.seq[f.Inbox] = seq
			}
		case Snapshot:
			var s snapshotData
			if err := json.Unmarshal(f.Data, &s); err != nil {
				c.errs = append(c.errs, err.Error())
			}
			for conv, v := range s {
				if v < c.view[conv] {
					c.errs = append(c.errs, fmt.Sprintf("snapshot: conv %s version %d after %d", conv, v, c.view[conv]))
				}
				c.view[conv] = v
			}
		case Resync:
			c.resyncs[f.Inbox]++
		}
	}
	return nil
}

// model is the producer side: the truth per conversation, pushed in order
// (as the session actor does, one message at a time).
type model struct {
	mu    sync.Mutex
	q     *Queue
	truth map[string]int64 // conv → newest version
	inbox map[string]string
	seq   map[string]int64 // inbox → seq of its latest update
}

func (m *model) update(inbox, conv string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.truth[conv]++
	m.inbox[conv] = inbox
	payload := make([]byte, 100+rand.IntN(400))
	if m.seq == nil {
		m.seq = map[string]int64{}
	}
	m.seq[inbox]++
	binary.BigEndian.PutUint64(payload, uint64(m.seq[inbox]))
	m.q.Push(Frame{Kind: Update, Inbox: inbox, Conv: conv, Version: m.truth[conv], Data: payload})
}

func (m *model) snapshot(inbox string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := snapshotData{}
	for conv, ib := range m.inbox {
		if ib == inbox {
			s[conv] = m.truth[conv]
		}
	}
	raw, _ := json.Marshal(s)
	m.q.Push(Frame{Kind: Snapshot, Inbox: inbox, Data: raw})
}

func waitIdle(t *testing.T, q *Queue) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !q.Idle() {
		if time.Now().After(deadline) {
			t.Fatalf("queue did not drain: %+v err=%v", q.Stats(), q.Err())
		}
		runtime.Gosched()
	}
}

// TestProperties pushes random updates for a few inboxes and conversations
// while the writer stalls at random, and checks the invariants: a client
// never sees a lower version after a higher one, ends with the newest
// version of every conversation, gets a resync per overflow, and the queue
// never holds more than its bound.
func TestProperties(t *testing.T) {
	for seed := range 40 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			c := newClient(t)
			m := &model{truth: map[string]int64{}, inbox: map[string]string{}}
			cfg := Config{MaxFrames: 16 + rng.IntN(48), MaxBytes: 8 << 10}
			if seed%2 == 1 {
				cfg.CoalesceAt = 1 + rng.IntN(cfg.MaxFrames)
			}
			q := New(cfg, c, Hooks{Resynced: func(inbox string) { go m.snapshot(inbox) }},
				func(inbox string) []byte { return []byte(`{"type":"resync","inbox_id":"` + inbox + `"}`) })
			m.q = q
			inboxes := []string{"a", "b", "c"}
			for step := range 3000 {
				switch r := rng.IntN(100); {
				case r < 3 && !c.stalled:
					c.stall.Lock()
					c.stalled = true
				case r < 6 && c.stalled:
					c.stall.Unlock()
					c.stalled = false
				case r < 7:
					q.Push(Frame{Kind: Other, Data: []byte(`{"type":"pong"}`)})
				default:
					ib := inboxes[rng.IntN(len(inboxes))]
					m.update(ib, fmt.Sprintf("%s%d", ib, rng.IntN(6)))
				}
				if st := q.Stats(); st.Len > cfg.MaxFrames+2*len(inboxes) || st.HighWater > cfg.MaxFrames+2*len(inboxes) {
					t.Fatalf("step %d: queue holds %d frames (high water %d), bound %d", step, st.Len, st.HighWater, cfg.MaxFrames)
				}
			}
			if c.stalled {
				c.stall.Unlock()
				c.stalled = false
			}
			// Drain, and hold the producer lock with the queue idle: a
			// snapshot requested by a Resynced hook is then either written
			// or not pushed yet (its inbox still stale).
			for {
				waitIdle(t, q)
				m.mu.Lock()
				if q.Idle() {
					break
				}
				m.mu.Unlock()
			}
			defer m.mu.Unlock()
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, e := range c.errs {
				t.Error(e)
			}
			if q.Err() != nil {
				return // the connection was closed for not reading: a valid end
			}
			for conv, v := range m.truth {
				if c.view[conv] != v && !q.Stale(m.inbox[conv]) {
					t.Errorf("conv %s: client ends at version %d, newest is %d", conv, c.view[conv], v)
				}
			}
			st := q.Stats()
			if st.Overflow > 0 && len(c.resyncs) == 0 {
				t.Errorf("%d overflows but no resync delivered", st.Overflow)
			}
		})
	}
}

// TestKeepingUpDeliversEverySeq: below the coalescing threshold nothing is
// coalesced, so a client that keeps up receives every update.
func TestKeepingUpDeliversEverySeq(t *testing.T) {
	c := newClient(t)
	var got atomic.Int64
	w := writerFunc(func(fs []Frame) error { got.Add(int64(len(fs))); return c.WriteBatch(fs) })
	q := New(Config{MaxFrames: 64}, w, Hooks{}, func(string) []byte { return nil })
	for v := int64(1); v <= 5; v++ {
		q.Push(Frame{Kind: Update, Inbox: "a", Conv: "x", Version: v, Data: []byte("u")})
	}
	waitIdle(t, q)
	if got.Load() != 5 || q.Stats().Coalesced != 0 {
		t.Fatalf("delivered %d frames, coalesced %d; want 5 and 0", got.Load(), q.Stats().Coalesced)
	}
}

// stalledWriter holds its first batch until release is closed (entered
// says it is holding it), and records every frame it writes.
type stalledWriter struct {
	entered, release chan struct{}
	mu               sync.Mutex
	held             bool
	frames           []Frame
}

func newStalledWriter() *stalledWriter {
	return &stalledWriter{entered: make(chan struct{}), release: make(chan struct{})}
}

func (w *stalledWriter) WriteBatch(fs []Frame) error {
	if !w.held { // the writer goroutine is the only caller, one batch at a time
		w.held = true
		close(w.entered)
		<-w.release
	}
	w.mu.Lock()
	w.frames = append(w.frames, fs...)
	w.mu.Unlock()
	return nil
}

func (w *stalledWriter) written() []Frame {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Frame(nil), w.frames...)
}

type writerFunc func([]Frame) error

func (f writerFunc) WriteBatch(fs []Frame) error { return f(fs) }

// TestCoalescesWhenBehind: a stalled writer holds one frame per conversation,
// the newest, queued after the updates it overtook.
func TestCoalescesWhenBehind(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	var batches [][]Frame
	var mu sync.Mutex
	first := true
	w := writerFunc(func(fs []Frame) error {
		if first {
			first = false
			close(entered)
			<-release
		}
		mu.Lock()
		batches = append(batches, append([]Frame(nil), fs...))
		mu.Unlock()
		return nil
	})
	q := New(Config{MaxFrames: 100, CoalesceAt: 1}, w, Hooks{}, func(string) []byte { return nil })
	q.Push(Frame{Kind: Other, Data: []byte("blocker")})
	<-entered
	for v := int64(1); v <= 50; v++ {
		q.Push(Frame{Kind: Update, Inbox: "a", Conv: "x", Version: v, Data: []byte("x")})
		q.Push(Frame{Kind: Update, Inbox: "a", Conv: "y", Version: v, Data: []byte("y")})
	}
	close(release)
	waitIdle(t, q)
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 {
		t.Fatalf("want 2 batches, got %d", len(batches))
	}
	b := batches[1]
	if len(b) != 2 || b[0].Conv != "x" || b[0].Version != 50 || b[1].Conv != "y" || b[1].Version != 50 {
		t.Fatalf("second batch: %+v", b)
	}
}

// TestReplayIsNeverCoalesced: a resume's replayed updates arrive whole even
// when the queue is past its coalescing length, and a live update behind
// them does not replace one of them.
func TestReplayIsNeverCoalesced(t *testing.T) {
	w := newStalledWriter()
	q := New(Config{MaxFrames: 100, CoalesceAt: 1}, w, Hooks{}, func(string) []byte { return nil })
	q.Push(Frame{Kind: Other, Data: []byte("blocker")})
	<-w.entered
	for v := int64(1); v <= 5; v++ {
		q.Push(Frame{Kind: Update, Inbox: "a", Conv: "x", Version: v, Data: []byte("x"), Replay: true})
	}
	q.Push(Frame{Kind: Update, Inbox: "a", Conv: "x", Version: 6, Data: []byte("x")})
	q.Push(Frame{Kind: Update, Inbox: "a", Conv: "x", Version: 7, Data: []byte("x")}) // coalesces with 6 only
	close(w.release)
	waitIdle(t, q)
	var versions []int64
	for _, f := range w.written()[1:] {
		versions = append(versions, f.Version)
	}
	if fmt.Sprint(versions) != "[1 2 3 4 5 7]" {
		t.Fatalf("written versions %v, want [1 2 3 4 5 7]", versions)
	}
}

// TestOverflowResyncsOnlyThatInbox: overflow drops the queued updates of the
// inbox that overflowed, queues one resync for it, and keeps other frames.
func TestOverflowResyncsOnlyThatInbox(t *testing.T) {
	w := newStalledWriter()
	var resynced []string
	var mu sync.Mutex
	q := New(Config{MaxFrames: 10, CoalesceAt: 100}, w, Hooks{Resynced: func(ib string) {
		mu.Lock()
		resynced = append(resynced, ib)
		mu.Unlock()
	}}, func(ib string) []byte { return []byte("resync " + ib) })
	q.Push(Frame{Kind: Other, Data: []byte("blocker")})
	<-w.entered
	q.Push(Frame{Kind: Update, Inbox: "b", Conv: "b1", Version: 1, Data: []byte("b")})
	q.Push(Frame{Kind: Other, Data: []byte("ack")})
	for v := int64(1); v <= 20; v++ {
		q.Push(Frame{Kind: Update, Inbox: "a", Conv: "a1", Version: v, Data: []byte("a")})
	}
	if !q.Stale("a") || q.Stale("b") {
		t.Fatal("want a stale, b not")
	}
	// Updates of a stale inbox are dropped until its snapshot.
	q.Push(Frame{Kind: Update, Inbox: "a", Conv: "a1", Version: 21, Data: []byte("a")})
	st := q.Stats()
	if st.HighWater > 11 {
		t.Fatalf("high water %d over bound", st.HighWater)
	}
	close(w.release)
	waitIdle(t, q)
	q.Push(Frame{Kind: Snapshot, Inbox: "a", Data: []byte("snap")})
	q.Push(Frame{Kind: Update, Inbox: "a", Conv: "a1", Version: 22, Data: []byte("a")})
	waitIdle(t, q)
	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for _, f := range w.written() {
		kinds = append(kinds, string(f.Data))
	}
	want := "[blocker b ack resync a snap a]"
	if fmt.Sprint(kinds) != want {
		t.Fatalf("delivered %v, want %s", kinds, want)
	}
	if fmt.Sprint(resynced) != "[a]" {
		t.Fatalf("resynced hooks: %v", resynced)
	}
}

// TestFailedWriteCloses: a failed write closes the queue and reports once.
func TestFailedWriteCloses(t *testing.T) {
	var failed atomic.Int32
	reported := make(chan error, 2)
	w := writerFunc(func([]Frame) error { return errors.New("broken pipe") })
	q := New(Config{}, w, Hooks{Failed: func(err error) { failed.Add(1); reported <- err }}, func(string) []byte { return nil })
	q.Push(Frame{Kind: Other, Data: []byte("x")})
	// The hook runs after the queue closed itself, so once it has reported,
	// the queue must refuse and must not report again.
	select {
	case err := <-reported:
		if err == nil || err.Error() != "broken pipe" {
			t.Fatalf("failed hook got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("failed hook never ran")
	}
	if q.Push(Frame{Kind: Other, Data: []byte("y")}) {
		t.Fatal("push after failure accepted")
	}
	if q.Err() == nil {
		t.Fatal("Err is nil after a failed write")
	}
	waitIdle(t, q)
	if n := failed.Load(); n != 1 {
		t.Fatalf("failed hook ran %d times", n)
	}
}

// TestOtherFramesNeverDropped: acks that do not fit even after dropping all
// updates fail the queue (the connection is closed) instead of vanishing.
func TestOtherFramesNeverDropped(t *testing.T) {
	block := make(chan struct{})
	w := writerFunc(func([]Frame) error { <-block; return nil })
	q := New(Config{MaxFrames: 4}, w, Hooks{}, func(string) []byte { return nil })
	defer close(block)
	ok := true
	for i := 0; i < 10 && ok; i++ {
		ok = q.Push(Frame{Kind: Other, Data: []byte("ack")})
	}
	if ok || !errors.Is(q.Err(), ErrOverflow) {
		t.Fatalf("want overflow failure, got ok=%v err=%v", ok, q.Err())
	}
}

// TestDrainWaitsForEveryFrame: Drain returns once the frames queued before
// and during it are written, not before; it gives up at its context's end,
// and a closed queue has nothing to wait for.
func TestDrainWaitsForEveryFrame(t *testing.T) {
	w := newStalledWriter()
	q := New(Config{MaxFrames: 100}, w, Hooks{}, func(string) []byte { return nil })
	q.Push(Frame{Kind: Other, Data: []byte("first")})
	<-w.entered
	q.Push(Frame{Kind: Other, Data: []byte("second")})

	short, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Drain(short); err == nil {
		t.Fatal("Drain returned with a write held")
	}
	drained := make(chan error, 1)
	go func() { drained <- q.Drain(context.Background()) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a write held", err)
	default:
	}
	close(w.release)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if got := w.written(); len(got) != 2 || string(got[1].Data) != "second" {
		t.Fatalf("written when Drain returned: %d frames", len(got))
	}

	q.Close()
	if err := q.Drain(context.Background()); err != nil {
		t.Fatalf("Drain of a closed queue: %v", err)
	}
}
