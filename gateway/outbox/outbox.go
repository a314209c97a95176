// Package outbox is a websocket connection's bounded outbound queue
// (docs/architecture.md, invariant 7). Producers (the session actor, the frame handler)
// push frames and never block; a writer goroutine exists only while there is
// something to write, and it takes every queued frame in one batch. When a
// connection falls behind, queued updates of one conversation are coalesced
// (only the newest version is kept, queued last, so the seqs a client
// receives still only grow: one that resumes from the last seq it got has
// every update before it); when the
// queue still overflows, the updates of the inbox concerned are dropped and a
// resync frame takes their place, to be followed by a fresh snapshot.
//
// It has no actor runtime and no websocket code, so it runs under -race.
package outbox

import (
	"context"
	"sync"

	"github.com/switchboard-dev/switchboard/wire"
)

// Kind classifies a frame for the queue's policies: the kind its wire
// constructor gave it. The queue never looks at a frame's bytes.
type Kind = wire.Kind

const (
	// Other frames (acks, errors, pongs, subscribed, items) are never
	// dropped or coalesced; a queue that cannot hold them fails.
	Other = wire.KindReply
	// Update frames belong to (Inbox, Conv) and carry Version; they are
	// coalesced per conversation and dropped on overflow.
	Update = wire.KindUpdate
	// Snapshot frames of Inbox end its resync: updates flow again after it.
	Snapshot = wire.KindSnapshot
	// Resync frames are made by the queue itself on overflow.
	Resync = wire.KindResync
	// Typing frames are ephemeral: dropped when the queue is full.
	Typing = wire.KindTyping
)

// Frame is one websocket text frame and what the queue needs to know of it.
type Frame struct {
	Kind    Kind
	Inbox   string
	Conv    string
	Version int64
	Data    []byte
	// Replay marks an update of a resume's replay: it is never coalesced,
	// neither replaced nor replacing, so that a resume arrives whole or,
	// when the queue overflows, is answered with a resync.
	Replay bool
	// superseded: a newer update of the conversation was queued after it
	// (coalesced); it is skipped, and dropped at the next compaction.
	superseded bool
}

// Config bounds a queue. Zero values take the defaults.
type Config struct {
	// MaxFrames bounds the queued frames (resync frames, at most one per
	// inbox, come on top). Default 512.
	MaxFrames int
	// MaxBytes bounds the queued bytes. Default 1 MiB.
	MaxBytes int
	// CoalesceAt is the queue length from which updates of a conversation
	// already queued are replaced rather than appended: below it, a
	// connection that keeps up receives every seq (the API promises it), and a resume
	// replay of up to CoalesceAt updates arrives whole. Default MaxFrames/2.
	CoalesceAt int
}

// Whole is how many frames a queue takes before it coalesces: the longest
// replay that arrives whole.
func (c Config) Whole() int { return c.withDefaults().CoalesceAt }

func (c Config) withDefaults() Config {
	if c.MaxFrames <= 0 {
		c.MaxFrames = 512
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
	if c.CoalesceAt <= 0 {
		c.CoalesceAt = max(1, c.MaxFrames/2)
	}
	return c
}

// Writer writes one batch of frames, in order, to the connection. It is
// called from the queue's writer goroutine only, one batch at a time.
type Writer interface {
	WriteBatch(frames []Frame) error
}

// Hooks are the queue's notifications. They run on the writer goroutine and
// must not block (send to an actor, set a flag).
type Hooks struct {
	// Resynced is called after the resync frame of inbox was written:
	// the client reads again, so it is time to fetch its snapshot.
	Resynced func(inbox string)
	// Failed is called once when a write fails; the queue is closed.
	Failed func(err error)
}

// ResyncFrame renders the resync frame of an inbox.
type ResyncFrame func(inbox string) []byte

type convKey struct{ inbox, conv string }

// Queue is one connection's outbound queue. Safe for concurrent use.
type Queue struct {
	cfg    Config
	w      Writer
	hooks  Hooks
	resync ResyncFrame

	mu      sync.Mutex
	frames  []Frame
	dead    int // superseded frames still in frames
	bytes   int
	newest  map[convKey]int // index in frames of the newest update per conversation
	stale   map[string]bool // inboxes resyncing: their updates are dropped
	writing bool
	closed  bool
	err     error
	// drained, when set, is closed once nothing is queued or being
	// written (Drain waits on it).
	drained chan struct{}

	// Statistics, for tests and metrics.
	highWater  int
	coalesced  int64
	dropped    int64
	overflowed int64
}

// New returns an empty queue writing through w.
func New(cfg Config, w Writer, hooks Hooks, resync ResyncFrame) *Queue {
	return &Queue{cfg: cfg.withDefaults(), w: w, hooks: hooks, resync: resync}
}

// Stats are a queue's counters.
type Stats struct {
	Len, Bytes, HighWater        int
	Coalesced, Dropped, Overflow int64
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Len: q.live(), Bytes: q.bytes, HighWater: q.highWater,
		Coalesced: q.coalesced, Dropped: q.dropped, Overflow: q.overflowed}
}

// Push queues a frame. It never blocks. It reports false when the queue is
// closed, or when a frame that may not be dropped does not fit even after
// every queued update was dropped: the caller then closes the connection.
func (q *Queue) Push(f Frame) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	switch f.Kind {
	case Update:
		q.pushUpdate(f)
	case Typing:
		if q.full(len(f.Data)) {
			q.dropped++
			return true
		}
		q.append(f)
	case Snapshot:
		delete(q.stale, f.Inbox)
		q.dropInbox(f.Inbox, false) // older updates and snapshots are superseded
		if q.full(len(f.Data)) {
			q.dropUpdates("")
		}
		q.append(f)
	default:
		if q.full(len(f.Data)) {
			q.dropUpdates("")
			if q.full(len(f.Data)) {
				q.closed, q.err = true, ErrOverflow
				q.frames, q.newest, q.bytes, q.dead = nil, nil, 0, 0
				return false
			}
		}
		q.append(f)
	}
	q.kick()
	return true
}

func (q *Queue) pushUpdate(f Frame) {
	if q.stale[f.Inbox] {
		q.dropped++
		return
	}
	k := convKey{f.Inbox, f.Conv}
	if i, ok := q.newest[k]; ok {
		old := &q.frames[i]
		if f.Version <= old.Version {
			q.dropped++ // stale never overwrites fresh
			return
		}
		if q.live() >= q.cfg.CoalesceAt && !f.Replay && !old.Replay {
			// Not in old's place: the updates queued between them carry
			// lower seqs, and a client must never see the seq go back.
			q.bytes -= len(old.Data)
			old.Data, old.superseded = nil, true
			q.dead++
			q.coalesced++
			q.append(f)
			if q.dead > len(q.frames)/2 {
				q.compact()
			}
			return
		}
	}
	if q.full(len(f.Data)) {
		q.overflowed++
		q.dropUpdates(f.Inbox)
		return
	}
	q.append(f)
}

func (q *Queue) full(n int) bool {
	return q.live() >= q.cfg.MaxFrames || q.bytes+n > q.cfg.MaxBytes
}

// live is the number of frames queued to be written.
func (q *Queue) live() int { return len(q.frames) - q.dead }

// compact drops the superseded frames and re-indexes the rest.
func (q *Queue) compact() {
	q.filter(func(f *Frame) bool { return !f.superseded })
}

// filter keeps the frames keep accepts, in order, and rebuilds the
// conversation index; bytes of the frames it drops are the caller's to
// account for.
func (q *Queue) filter(keep func(*Frame) bool) {
	kept := q.frames[:0]
	for i := range q.frames {
		if f := &q.frames[i]; !f.superseded && keep(f) {
			kept = append(kept, *f)
		}
	}
	clear(q.frames[len(kept):]) // release the dropped payloads
	q.frames, q.dead = kept, 0
	clear(q.newest)
	for i, f := range q.frames {
		if f.Kind == Update {
			if q.newest == nil {
				q.newest = make(map[convKey]int)
			}
			q.newest[convKey{f.Inbox, f.Conv}] = i
		}
	}
}

func (q *Queue) append(f Frame) {
	if f.Kind == Update {
		if q.newest == nil {
			q.newest = make(map[convKey]int)
		}
		q.newest[convKey{f.Inbox, f.Conv}] = len(q.frames)
	}
	q.frames = append(q.frames, f)
	q.bytes += len(f.Data)
	q.highWater = max(q.highWater, q.live())
}

// dropUpdates drops the queued updates and snapshots of inbox (of every
// inbox when inbox is ""), marks those inboxes stale and queues one resync
// frame for each. Called on overflow only.
func (q *Queue) dropUpdates(inbox string) {
	inboxes := map[string]bool{}
	if inbox != "" {
		inboxes[inbox] = true
	} else {
		for _, f := range q.frames {
			if f.Kind == Update || f.Kind == Snapshot {
				inboxes[f.Inbox] = true
			}
		}
	}
	for ib := range inboxes {
		q.dropInbox(ib, true)
	}
	for ib := range inboxes {
		if q.stale == nil {
			q.stale = make(map[string]bool)
		}
		if q.stale[ib] {
			continue // its resync is queued already
		}
		q.stale[ib] = true
		// A resync frame may exceed the bounds: it is one per inbox, and
		// the subscriptions per connection are bounded.
		q.append(Frame{Kind: Resync, Inbox: ib, Data: q.resync(ib)})
	}
}

// dropInbox removes the queued updates and snapshots of one inbox and
// rebuilds the conversation index.
func (q *Queue) dropInbox(inbox string, count bool) {
	q.filter(func(f *Frame) bool {
		if (f.Kind == Update || f.Kind == Snapshot) && f.Inbox == inbox {
			q.bytes -= len(f.Data)
			if count {
				q.dropped++
			}
			return false
		}
		return true
	})
}

// Forget ends the queue's knowledge of an inbox (unsubscribed): its queued
// updates are dropped and it is no longer stale.
func (q *Queue) Forget(inbox string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dropInbox(inbox, false)
	delete(q.stale, inbox)
}

// Stale reports whether an inbox is waiting for its snapshot after a resync.
func (q *Queue) Stale(inbox string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stale[inbox]
}

// kick starts the writer goroutine unless one runs. Called with mu held.
func (q *Queue) kick() {
	if q.writing || q.closed || len(q.frames) == 0 {
		return
	}
	q.writing = true
	go q.run()
}

// run is the writer goroutine: it takes the whole queue as one batch, writes
// it, and repeats until the queue is empty, then exits, so an idle
// connection has no writer goroutine.
func (q *Queue) run() {
	var spare []Frame
	for {
		q.mu.Lock()
		if q.dead > 0 {
			q.compact()
		}
		if q.closed || len(q.frames) == 0 {
			q.writing = false
			q.wakeDrain()
			q.mu.Unlock()
			return
		}
		batch := q.frames
		q.frames = spare[:0]
		q.bytes = 0
		clear(q.newest)
		q.mu.Unlock()

		err := q.w.WriteBatch(batch)
		if err != nil {
			q.mu.Lock()
			q.closed, q.err, q.writing = true, err, false
			q.frames, q.dead = nil, 0
			q.wakeDrain()
			q.mu.Unlock()
			if q.hooks.Failed != nil {
				q.hooks.Failed(err)
			}
			return
		}
		if q.hooks.Resynced != nil {
			for _, f := range batch {
				if f.Kind == Resync {
					q.hooks.Resynced(f.Inbox)
				}
			}
		}
		clear(batch)
		if cap(batch) <= 64 {
			spare = batch // reuse small buffers; let big ones go
		} else {
			spare = nil
		}
	}
}

// Idle reports whether nothing is queued and no write is in progress.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.writing && (q.closed || len(q.frames) == 0)
}

// Close stops the queue: pending frames are dropped and Push fails.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.frames, q.dead = nil, 0
	q.newest = nil
	q.wakeDrain()
}

// Drain waits until every frame queued so far, and any queued meanwhile,
// is written, or the queue closed; it gives up when ctx ends.
func (q *Queue) Drain(ctx context.Context) error {
	for {
		q.mu.Lock()
		if q.closed || (!q.writing && len(q.frames) == 0) {
			q.mu.Unlock()
			return nil
		}
		if q.drained == nil {
			q.drained = make(chan struct{})
		}
		ch := q.drained
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wakeDrain releases Drain's waiters. Called with mu held.
func (q *Queue) wakeDrain() {
	if q.drained != nil {
		close(q.drained)
		q.drained = nil
	}
}

// Err is why the queue closed itself (overflow or a failed write).
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// ErrOverflow: a frame that may not be dropped did not fit.
var ErrOverflow = overflowError{}

type overflowError struct{}

func (overflowError) Error() string { return "outbound queue overflow: the client does not read" }
