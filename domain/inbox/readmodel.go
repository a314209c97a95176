package inbox

import (
	"errors"
	"slices"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// An inbox holds every conversation that is not closed, but only the
// ClosedKept most recently active closed ones. A list that asks for closed
// conversations while others exist is completed from the conversations read
// model, which is written in the same transaction as the journal and so
// never lags it: List asks for them (ErrReadClosed), the caller reads the
// closed conversations a ClosedQuery names and hands them to List as
// ClosedRows, and List merges them with what it holds.

// ErrReadClosed is List's answer when it needs the read model's closed
// conversations: none were given, or those given were read for another
// state than the one they would be merged into — another activation, or a
// closed conversation this inbox does not hold changed in the range of the
// page since they were read (it may be missing from them, or older in them
// than the inbox's seq covers). Read them, again, after the state Epoch and
// Seq name, and retry.
var ErrReadClosed = errors.New("inbox: the list needs the read model's closed conversations")

// NoKey is a Position's key for a conversation without the sort's time
// (waiting_since or sla_due_at unset): it sorts after every time.
const NoKey = noWait

// Position is a place in a list's order: a sort key in Unix nanoseconds
// (last_activity_at for recent and oldest, waiting_since for longest_wait,
// sla_due_at for sla_due, NoKey when unset) and the id that breaks ties.
type Position struct {
	Key int64
	ID  string
}

// ClosedQuery names the closed conversations of the read model a list page
// may need: those matching Filter (its statuses aside), in Sort's order,
// strictly after After (nil: from the start), at most Limit of them.
type ClosedQuery struct {
	Filter Filter
	Sort   Sort
	After  *Position
	Limit  int
	// Count asks for how many closed conversations match Filter, for the
	// page's total: the inbox counts those it does not hold by status only.
	Count bool
}

// ClosedRows are the read model's answer to a ClosedQuery.
type ClosedRows struct {
	Summaries []conversation.Summary
	// Complete is set when the read model had no more rows than these:
	// otherwise the rows cover the order only up to the last of them.
	Complete bool
	// Count is how many closed conversations of the inbox match the
	// query's filter, when it asked (Counted).
	Count   int
	Counted bool
	// Epoch and Seq name the inbox state that asked for them (the page
	// ErrReadClosed answered): they were read after it, so they hold every
	// change the inbox had applied by then.
	Epoch string
	Seq   int64
}

// ClosedQuery returns the read-model query a list for q needs, and false
// when q does not ask for closed conversations. A query that Resolve
// refuses is refused here too, with the same error.
func (q Query) ClosedQuery(agentID string) (ClosedQuery, bool, error) {
	f, sort, limit, cur, err := q.Resolve(agentID)
	if err != nil || !slices.Contains(f.Statuses, conversation.StatusClosed) {
		return ClosedQuery{}, false, err
	}
	cq := ClosedQuery{Filter: f, Sort: sort, Limit: limit + 1, Count: !f.onlyStatuses()}
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return ClosedQuery{}, false, err
		}
		cq.After = &Position{Key: c.key, ID: c.id}
	}
	return cq, true, nil
}

// closedRun returns the read model's rows that List merges as one more
// sorted run: closed, of this inbox, not held (a held conversation is
// served as held: its version is the one the stream delivered), matching
// f, after pivot, and — like a held conversation — not moved in this order
// since the page's cursor was made (changedAfter, -1 for none) if this
// activation evicted it. bound is the last position the rows cover when
// they are not complete (nil otherwise): past it, closed conversations may
// exist that the rows did not reach. stale reports rows read for another
// state than this one (see ErrReadClosed).
func (s *State) closedRun(rows *ClosedRows, f *Filter, sort Sort, pivot *item, changedAfter int64) (run []*entry, bound *item, stale bool) {
	if rows.Epoch != s.epoch || rows.Seq > s.seq {
		return nil, nil, true
	}
	sortIdx := sortIndex(sort)
	run = make([]*entry, 0, len(rows.Summaries))
	for i := range rows.Summaries {
		sum := &rows.Summaries[i]
		e := newEntry(*sum, 0)
		it := item{indexKey(sort, e), e}
		if !rows.Complete && i == len(rows.Summaries)-1 && (pivot == nil || lessItem(*pivot, it)) {
			// (A last row not after the pivot would be rows out of this
			// order: a bound there could send the next page back.)
			bound = &it
		}
		if sum.Status != conversation.StatusClosed || !s.accepts(sum) || s.byID[sum.ID] != nil ||
			!f.matchesRest(sum) || (pivot != nil && !lessItem(*pivot, it)) {
			continue
		}
		if rec, ok := s.evicted.byID[sum.ID]; ok {
			if sum.Version < rec.version {
				return nil, nil, true
			}
			if changedAfter >= 0 && rec.moved[sortIdx] > changedAfter {
				continue
			}
		}
		run = append(run, e)
	}
	// A closed conversation evicted since the rows were read, in the range
	// they cover, may be missing from them or older in them.
	inRange := func(key int64, id string) bool {
		it := item{key, &entry{sum: conversation.Summary{ID: id}}}
		return (pivot == nil || lessItem(*pivot, it)) && (bound == nil || !lessItem(*bound, it))
	}
	if s.evicted.since(rows.Seq, sortIdx, inRange) {
		return nil, nil, true
	}
	// The read model orders them so already; sorting again makes the merge
	// independent of how the rows were read.
	slices.SortFunc(run, func(a, b *entry) int {
		x, y := item{indexKey(sort, a), a}, item{indexKey(sort, b), b}
		switch {
		case lessItem(x, y):
			return -1
		case lessItem(y, x):
			return 1
		}
		return 0
	})
	return run, bound, false
}

// evictions remember the conversations an activation changed and then
// evicted: the version it last saw of each, where each stood in every order
// and the seq at which it last moved there, and the seq of the eviction.
// Rows of them older than that version are stale; a row of one that moved
// after a page's cursor is left out of the later pages as a held one would
// be; and rows read before an eviction in their range are read again.
// Conversations evicted unchanged since the activation loaded them need no
// record (a row cannot be older than the load, nor have moved since).
// Bounded: beyond the limit the oldest records go (rows read before a
// dropped record are read again; a cursor older than it keeps only the
// keyset order for the conversations not held, as one from another epoch
// does).
type evictions struct {
	byID    map[string]evicted
	order   []evictedAt // in eviction order; entries whose record went are skipped
	next    uint64
	dropped int64 // the latest change among the records dropped
}

type evicted struct {
	version int64
	keys    [len(sorts)]int64 // its key in each order
	moved   [len(sorts)]int64
	seq     int64 // the inbox seq of the eviction
	changed int64 // the inbox seq of its last change, at or before seq
	stamp   uint64
}

type evictedAt struct {
	id    string
	stamp uint64
}

func (v *evictions) remember(e *entry, seq int64, limit int) {
	if e.seq == 0 {
		return // loaded and unchanged since
	}
	if v.byID == nil {
		v.byID = make(map[string]evicted)
	}
	v.next++
	rec := evicted{version: e.sum.Version, moved: e.moved, seq: seq, changed: e.seq, stamp: v.next}
	for k, so := range sorts {
		rec.keys[k] = indexKey(so, e)
	}
	v.byID[e.sum.ID] = rec
	v.order = append(v.order, evictedAt{e.sum.ID, v.next})
	for len(v.byID) > limit || len(v.order) > 2*limit {
		at := v.order[0]
		v.order = v.order[1:]
		if r, ok := v.byID[at.id]; ok && r.stamp == at.stamp {
			delete(v.byID, at.id)
			v.dropped = max(v.dropped, r.changed)
		}
	}
}

// since reports whether a conversation changed after seq, then evicted, lies
// at a place inRange accepts (its key in order sortIdx, its id), or a record
// that could tell was dropped. (Evicting a conversation that did not change
// after seq leaves rows read after seq exact.)
func (v *evictions) since(seq int64, sortIdx int, inRange func(key int64, id string) bool) bool {
	if v.dropped > seq {
		return true
	}
	for i := len(v.order) - 1; i >= 0; i-- {
		at := v.order[i]
		r, ok := v.byID[at.id]
		if !ok || r.stamp != at.stamp {
			continue // held again since: served as held
		}
		if r.seq <= seq {
			return false // evicted, so changed, no later than seq: so are the rest
		}
		if r.changed > seq && inRange(r.keys[sortIdx], at.id) {
			return true
		}
	}
	return false
}

// forget drops the record of a conversation held again.
func (v *evictions) forget(id string) {
	if v.byID != nil {
		delete(v.byID, id)
	}
}
