package persistence

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// The persistence actor's messages. The writer is only ever addressed on its
// own node, so they are plain structs, not protobuf.
type (
	// snapshot is a conversation's encoded state at a committed version.
	snapshot struct {
		conv    string
		version int64
		state   []byte
	}
	// flush asks the actor to start whatever batches it can. It is sent to
	// itself, so it is handled after every message already in the mailbox:
	// that is what makes a batch of whatever arrived meanwhile.
	flush struct{}
	// windowElapsed: the oldest pending append has waited Window.
	windowElapsed struct{}
	// batchDone: a batch's transaction finished; its conversations and
	// keys are free again.
	batchDone struct{ batch []*request }
	// snapshotsDone: a snapshot write finished.
	snapshotsDone struct{}
	// closeWriter: commit what is pending, then stop.
	closeWriter struct{}
)

// writerActor is the persistence actor's state. Only Receive touches it.
type writerActor struct {
	w *Writer

	pending  []*request
	inflight int
	// lastBatch is the size of the batch started last. While it commits, the
	// next batch starts only once it is as large: under load the batches
	// stay large (PostgreSQL's cost per append falls with batch size); at low
	// load they are single appends and go at once.
	lastBatch int
	// Conversations and keys of in-flight batches: an append for one of them
	// waits for that batch, so two transactions of this writer never contend
	// for the same head row or key.
	busyConv map[string]bool
	busyKey  map[IdempotencyKey]bool

	snaps        map[string]snapshot // newest pending snapshot per conversation
	snapInflight bool

	flushQueued, timerArmed, closing, stopped bool
}

func (a *writerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *request:
		m.at = time.Now()
		a.pending = append(a.pending, m)
		if a.w.enqueued != nil {
			a.w.enqueued <- struct{}{}
		}
		if a.inflight == 0 && a.w.cfg.Window == 0 {
			// Idle: nothing to wait for, so no hop through the mailbox.
			a.dispatch(ctx)
			return
		}
		a.schedule(ctx)
	case snapshot:
		if cur, ok := a.snaps[m.conv]; !ok || cur.version < m.version {
			a.snaps[m.conv] = m
		}
		a.schedule(ctx)
	case flush:
		a.flushQueued = false
		a.dispatch(ctx)
	case windowElapsed:
		a.timerArmed = false
		a.dispatch(ctx)
	case batchDone:
		a.inflight--
		for _, r := range m.batch {
			delete(a.busyConv, r.a.Summary.ID)
			for _, k := range r.keys {
				delete(a.busyKey, k)
			}
		}
		// Through the mailbox rather than at once: appends that arrived
		// while the batch committed join the next one.
		a.schedule(ctx)
	case snapshotsDone:
		a.snapInflight = false
		a.schedule(ctx)
	case closeWriter:
		a.closing = true
		a.dispatch(ctx)
	}
}

// schedule queues one flush behind the messages already in the mailbox.
func (a *writerActor) schedule(ctx actor.Context) {
	if !a.flushQueued {
		a.flushQueued = true
		ctx.Send(ctx.Self(), flush{})
	}
}

// dispatch starts batches while committers are free (natural group commit:
// with nothing in flight whatever is pending goes now; while a batch
// commits, appends accumulate into the next one, which starts beside it once
// it is as large, or when a committer is free again), and one snapshot write
// at a time.
func (a *writerActor) dispatch(ctx actor.Context) {
	w := a.w
	if !a.snapInflight && len(a.snaps) > 0 {
		snaps := make([]snapshot, 0, len(a.snaps))
		for _, s := range a.snaps {
			snaps = append(snaps, s)
		}
		clear(a.snaps)
		a.snapInflight = true
		self := ctx.Self()
		go func() {
			w.writeSnapshots(snaps)
			w.system.Root.Send(self, snapshotsDone{})
		}()
	}
	for a.inflight < w.cfg.Committers && len(a.pending) > 0 {
		if a.inflight > 0 && !a.closing && len(a.pending) < min(a.lastBatch, w.cfg.MaxBatch) {
			break // batch while a commit runs; batchDone dispatches the rest
		}
		if w.cfg.Window > 0 && !a.closing && len(a.pending) < w.cfg.MaxBatch {
			if wait := time.Until(a.pending[0].at.Add(w.cfg.Window)); wait > 0 {
				if !a.timerArmed {
					a.timerArmed = true
					self := ctx.Self()
					time.AfterFunc(wait, func() { w.system.Root.Send(self, windowElapsed{}) })
				}
				break
			}
		}
		var batch []*request
		batch, a.pending = w.take(a.pending, a.busyConv, a.busyKey)
		if len(batch) == 0 {
			break // every pending append waits on an in-flight batch
		}
		for _, r := range batch {
			a.busyConv[r.a.Summary.ID] = true
			for _, k := range r.keys {
				a.busyKey[k] = true
			}
		}
		a.inflight++
		a.lastBatch = len(batch)
		w.committing <- batch
	}
	if a.closing && !a.stopped && len(a.pending) == 0 && a.inflight == 0 && !a.snapInflight && len(a.snaps) == 0 {
		a.stopped = true
		close(w.committing)
		close(w.done)
		ctx.Stop(ctx.Self())
	}
}

// take picks the next batch from pending in arrival order: at most MaxBatch
// appends, at most one per conversation and per key, none touching an
// in-flight batch. The others stay pending, in order. Appends whose caller
// gave up are answered here rather than written.
func (w *Writer) take(pending []*request, busyConv map[string]bool, busyKey map[IdempotencyKey]bool) (batch, rest []*request) {
	convs := make(map[string]bool, min(len(pending), w.cfg.MaxBatch))
	var keys map[IdempotencyKey]bool
	rest = pending[:0:0]
	for _, r := range pending {
		if len(batch) == w.cfg.MaxBatch {
			rest = append(rest, r)
			continue
		}
		if err := r.ctx.Err(); err != nil {
			w.answer(r, err, resultCanceled)
			continue
		}
		id := r.a.Summary.ID
		conflict := busyConv[id] || convs[id]
		for _, k := range r.keys {
			conflict = conflict || busyKey[k] || keys[k]
		}
		if conflict {
			rest = append(rest, r)
			continue
		}
		convs[id] = true
		for _, k := range r.keys {
			if keys == nil {
				keys = map[IdempotencyKey]bool{}
			}
			keys[k] = true
		}
		batch = append(batch, r)
	}
	return batch, rest
}
