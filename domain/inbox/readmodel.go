package inbox

import (
	"slices"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// An inbox holds every conversation that is not closed, but only the
// ClosedKept most recently active closed ones. A list that asks for closed
// conversations is completed from the conversations read model, which is
// written in the same transaction as the journal and so never lags it: the
// caller reads the closed conversations a ClosedQuery names and hands them
// to List as ClosedRows, and List merges them with what it holds.

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
}

// ClosedRows are the read model's answer to a ClosedQuery.
type ClosedRows struct {
	Summaries []conversation.Summary
	// Complete is set when the read model had no more rows than these:
	// otherwise the rows cover the order only up to the last of them.
	Complete bool
}

// ClosedQuery returns the read-model query a list for q needs, and false
// when q does not ask for closed conversations. A query that Resolve
// refuses is refused here too, with the same error.
func (q Query) ClosedQuery(agentID string) (ClosedQuery, bool, error) {
	f, sort, limit, cur, err := q.Resolve(agentID)
	if err != nil || !slices.Contains(f.Statuses, conversation.StatusClosed) {
		return ClosedQuery{}, false, err
	}
	cq := ClosedQuery{Filter: f, Sort: sort, Limit: limit + 1}
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
// f and after pivot. bound is the last position the rows cover when they
// are not complete (nil otherwise): past it, closed conversations may
// exist that the rows did not reach.
func (s *State) closedRun(rows *ClosedRows, f *Filter, sort Sort, pivot *item) (run []*entry, bound *item) {
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
		run = append(run, e)
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
	return run, bound
}
