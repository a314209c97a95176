package loadtest

import (
	"context"
	"sort"
	"sync"
	"time"
)

// The tracker is the one place where delivery is judged. Websocket readers
// tell it what each subscriber received and when; senders tell it which
// conversation version each acknowledged write produced and when the write
// was due. It matches the two (in whichever order they happen: an update
// often reaches a subscriber before the HTTP response reaches the sender),
// records freshness per subscriber, and keeps the correctness counters.
// It does no I/O and takes every time as an argument, so it is tested
// directly.
//
// The counters it keeps (stale, gaps, coalesced, lost, duplicates,
// unverified...) are defined in the package documentation (doc.go).

// historyHorizon bounds how long receive times are kept per conversation.
// A receive time is only looked up by a write acknowledged after its update
// arrived, which happens within one request's lifetime; a write so late that
// its update has been forgotten is counted as freshness_unmeasured.
const historyHorizon = time.Minute

// sendTag says which figures a write's freshness feeds.
type sendTag struct {
	measured bool // due inside the measured window
	paused   bool // due while the indexer was paused
	// jobDue: when the job was due, which placed it in the window. A
	// call's later events are due when they are sent, which may be past
	// the window's end; the timeline places them with their call, so
	// that it holds every measured write.
	jobDue time.Time
}

type seenAt struct {
	version int64
	at      time.Time
}

type expectation struct {
	version int64
	due     time.Time
	tag     sendTag
}

// convView is one subscriber's knowledge of one conversation.
type convView struct {
	max     int64 // highest version received; 0 = none yet
	maxHash uint64
	// history holds (version, first receive time) for versions received in
	// the last historyHorizon, versions strictly increasing.
	history   []seenAt
	prunedMax int64 // highest version dropped from history
	pending   []expectation
	// inSnapshotAt is the time of the last snapshot that listed it.
	inSnapshotAt time.Time
}

type subView struct {
	inbox string
	convs map[string]*convView

	epoch     string
	seq       int64
	synced    bool // epoch/seq are a baseline to check updates against
	awaitSnap bool // subscribed or resynced, snapshot not yet received

	// The current stretch of stream: seqs skipped and versions skipped.
	segSkippedSeqs     int64
	segSkippedVersions int64

	// truncatedAt is the time of the last snapshot that did not list every
	// conversation of the inbox.
	truncatedAt time.Time
}

type trackerCounts struct {
	Stale, Gaps, Coalesced, SeqJumps, Resyncs  int64
	Redelivered, Duplicates, Unverified        int64
	Unmeasured, LostUpdates, Updates, Pending  int64
	Snapshots, FreshnessSamples, AckedVersions int64
}

type snapConv struct {
	id      string
	version int64
	hash    uint64
}

type tracker struct {
	mu      sync.Mutex
	subs    []*subView
	byInbox map[string][]int
	ackedV  map[string]*versionSet // conversation → versions acknowledged as new
	c       trackerCounts
	zero    chan struct{} // closed whenever pending drops to zero
	fresh   func(d time.Duration, tag sendTag)
}

// newTracker takes the callback that records one freshness sample (with
// the write's tag); it is called with the tracker's lock held and must not
// call back into it.
func newTracker(fresh func(time.Duration, sendTag)) *tracker {
	return &tracker{
		byInbox: map[string][]int{},
		ackedV:  map[string]*versionSet{},
		zero:    make(chan struct{}),
		fresh:   fresh,
	}
}

// addSubscriber registers a subscriber of inbox and returns its id. All
// subscribers must be added before writes are acknowledged: a write only
// expects the subscribers known when it is acknowledged.
func (t *tracker) addSubscriber(inbox string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := len(t.subs)
	t.subs = append(t.subs, &subView{inbox: inbox, convs: map[string]*convView{}})
	t.byInbox[inbox] = append(t.byInbox[inbox], id)
	return id
}

func (s *subView) conv(id string) *convView {
	cv := s.convs[id]
	if cv == nil {
		cv = &convView{}
		s.convs[id] = cv
	}
	return cv
}

// closeSegment settles the current stretch of stream: skipped seqs not
// matched by skipped versions are gaps.
func (t *tracker) closeSegment(s *subView) {
	if s.synced {
		if d := s.segSkippedSeqs - s.segSkippedVersions; d > 0 {
			t.c.Gaps += d
		}
	}
	s.segSkippedSeqs, s.segSkippedVersions = 0, 0
	s.synced = false
}

// resumePoint is what a reconnecting subscriber asks to resume from.
func (t *tracker) resumePoint(sub int) (epoch string, seq int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	return s.epoch, s.seq, s.synced && !s.awaitSnap
}

// subscribed handles the "subscribed" frame. Resumed, the stream continues
// where it was and the missed updates follow; otherwise a snapshot follows.
func (t *tracker) subscribed(sub int, epoch string, seq int64, resumed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	if resumed && s.synced && epoch == s.epoch {
		return
	}
	t.closeSegment(s)
	s.epoch, s.seq = epoch, seq
	s.awaitSnap = !resumed
	s.synced = resumed
}

// resync handles the "resync" frame: continuity is given up until the
// snapshot that follows.
func (t *tracker) resync(sub int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	t.c.Resyncs++
	t.closeSegment(s)
	s.awaitSnap = true
}

// snapshot handles a "snapshot" frame; total is the number of conversations
// under the filter, so total > len(convs) means only the first page came.
func (t *tracker) snapshot(sub int, epoch string, seq int64, convs []snapConv, total int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	t.c.Snapshots++
	t.closeSegment(s)
	s.epoch, s.seq, s.synced, s.awaitSnap = epoch, seq, true, false
	listed := make(map[string]bool, len(convs))
	for _, sc := range convs {
		listed[sc.id] = true
		cv := s.conv(sc.id)
		cv.inSnapshotAt = at
		// A snapshot restates versions; an equal one is expected, not a
		// redelivery, so only lower (stale) and higher (news) matter.
		switch {
		case sc.version < cv.max:
			t.c.Stale++
		case sc.version > cv.max:
			t.advance(s, cv, sc.version, sc.hash, at)
		}
	}
	if total > len(convs) {
		s.truncatedAt = at
		// Conversations past the first page are invisible to this
		// subscriber until they change again: writes waiting on them
		// can no longer be verified.
		for id, cv := range s.convs {
			if !listed[id] && len(cv.pending) > 0 {
				t.c.Unverified += int64(len(cv.pending))
				t.c.Pending -= int64(len(cv.pending))
				cv.pending = nil
			}
		}
		t.signalIfIdle()
	}
}

// update handles an "update" frame received at at; hash identifies the
// conversation summary's contents.
func (t *tracker) update(sub int, epoch string, seq int64, convID string, version int64, hash uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.subs[sub]
	t.c.Updates++
	counting := false // whether this update continues a checked stretch
	switch {
	case !s.synced || s.awaitSnap:
		// Between resync and snapshot there is no baseline to check against.
	case epoch != s.epoch:
		t.c.Gaps++ // a new inbox activation must be announced by a resync
		t.closeSegment(s)
		s.epoch, s.seq, s.synced = epoch, seq, true
	case seq == s.seq+1:
		s.seq = seq
		counting = true
	case seq > s.seq+1:
		skipped := seq - s.seq - 1
		s.segSkippedSeqs += skipped
		t.c.Coalesced += skipped
		t.c.SeqJumps++
		s.seq = seq
		counting = true
	default:
		t.c.Gaps++ // repeated or backward seq
	}

	cv := s.conv(convID)
	switch {
	case version < cv.max:
		t.c.Stale++
		return
	case version == cv.max:
		if hash == cv.maxHash {
			t.c.Redelivered++
		} else {
			t.c.Duplicates++
		}
		return
	}
	if counting && version > cv.max+1 {
		s.segSkippedVersions += version - cv.max - 1
	}
	t.advance(s, cv, version, hash, at)
}

// advance records that the subscriber now holds version (higher than any
// before) since at, and settles the writes that were waiting for it.
func (t *tracker) advance(s *subView, cv *convView, version int64, hash uint64, at time.Time) {
	cv.max, cv.maxHash = version, hash
	cv.history = append(cv.history, seenAt{version, at})
	for len(cv.history) > 1 && at.Sub(cv.history[0].at) > historyHorizon {
		cv.prunedMax = cv.history[0].version
		cv.history = cv.history[1:]
	}
	n := 0
	for n < len(cv.pending) && cv.pending[n].version <= version {
		t.recordFresh(at, cv.pending[n])
		n++
	}
	if n > 0 {
		cv.pending = append(cv.pending[:0], cv.pending[n:]...)
		t.c.Pending -= int64(n)
		t.signalIfIdle()
	}
}

func (t *tracker) recordFresh(at time.Time, e expectation) {
	d := at.Sub(e.due)
	if d < 0 {
		// The update came before the write was due: only possible when the
		// sender started early, so the honest figure is zero.
		d = 0
	}
	t.c.FreshnessSamples++
	if t.fresh != nil {
		t.fresh(d, e.tag)
	}
}

func (t *tracker) signalIfIdle() {
	if t.c.Pending == 0 {
		close(t.zero)
		t.zero = make(chan struct{})
	}
}

// acked records an acknowledged write: conversation convID of inbox reached
// version; the write was due at due. isNew is false for replays (answers to
// retries or re-sends), which repeat a version legitimately.
func (t *tracker) acked(inbox, convID string, version int64, due time.Time, tag sendTag, isNew bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if isNew {
		vs := t.ackedV[convID]
		if vs == nil {
			vs = &versionSet{}
			t.ackedV[convID] = vs
		}
		if !vs.add(version) {
			t.c.Duplicates++ // two distinct writes claim one version: a forked history
		}
		t.c.AckedVersions++
	}
	for _, id := range t.byInbox[inbox] {
		s := t.subs[id]
		cv := s.conv(convID)
		e := expectation{version: version, due: due, tag: tag}
		switch {
		case cv.max >= version:
			// Already delivered, before the response reached us.
			if version <= cv.prunedMax {
				t.c.Unmeasured++
				continue
			}
			i := sort.Search(len(cv.history), func(i int) bool { return cv.history[i].version >= version })
			t.recordFresh(cv.history[i].at, e)
		case s.truncatedAt.After(due) && !cv.inSnapshotAt.Equal(s.truncatedAt):
			// A truncated snapshot since the write may have absorbed it.
			t.c.Unverified++
		default:
			i := sort.Search(len(cv.pending), func(i int) bool { return cv.pending[i].version > version })
			cv.pending = append(cv.pending, expectation{})
			copy(cv.pending[i+1:], cv.pending[i:])
			cv.pending[i] = e
			t.c.Pending++
		}
	}
}

// duplicate counts a duplicate found outside the tracker's own checks (a
// re-send answered as new).
func (t *tracker) duplicate() {
	t.mu.Lock()
	t.c.Duplicates++
	t.mu.Unlock()
}

// waitSettled returns when no acknowledged write is waiting for a
// subscriber, or when ctx is done.
func (t *tracker) waitSettled(ctx context.Context) error {
	for {
		t.mu.Lock()
		if t.c.Pending == 0 {
			t.mu.Unlock()
			return nil
		}
		ch := t.zero
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// snapshotCounts returns the counters so far (for the progress line).
func (t *tracker) snapshotCounts() trackerCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.c
}

// finish closes every stream stretch and turns writes still waiting into
// lost ones. Call it once, after the grace period.
func (t *tracker) finish() trackerCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.subs {
		t.closeSegment(s)
		for _, cv := range s.convs {
			t.c.LostUpdates += int64(len(cv.pending))
			cv.pending = nil
		}
	}
	t.c.Pending = 0
	return t.c
}

// versionSet is a bitset of versions; versions start at 1 and are dense,
// so this is far smaller than a map.
type versionSet struct{ bits []uint64 }

// add reports whether v was not yet in the set.
func (s *versionSet) add(v int64) bool {
	if v < 0 {
		return true
	}
	w, b := int(v/64), uint(v%64)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w-len(s.bits)+1)...)
	}
	if s.bits[w]&(1<<b) != 0 {
		return false
	}
	s.bits[w] |= 1 << b
	return true
}
