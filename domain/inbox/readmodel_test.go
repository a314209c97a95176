package inbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// readModel answers ClosedQuery the way the conversations table does: from
// every conversation's latest summary, closed, matching, in the sort's order
// after the position, at most Limit.
type readModel map[string]conversation.Summary

// reconcileRows is what the inbox actor reads to reconcile s: the newest
// version of every conversation not closed or held by s, where newer than
// held, and how many are closed.
func (m readModel) reconcileRows(s *State) (rows []conversation.Summary, closedTotal int) {
	held := s.HeldVersions()
	for id, sum := range m {
		if sum.Status == conversation.StatusClosed {
			closedTotal++
		}
		v, ok := held[id]
		if (sum.Status != conversation.StatusClosed || ok) && (!ok || sum.Version > v) {
			rows = append(rows, sum)
		}
	}
	return rows, closedTotal
}

// snapshot is what LoadInbox reads: every conversation not closed, the
// closedKept most recently active closed ones and how many are closed.
func (m readModel) snapshot(closedKept int) (active, closedRecent []conversation.Summary, closedTotal int) {
	for _, s := range m {
		if s.Status != conversation.StatusClosed {
			active = append(active, s)
			continue
		}
		closedRecent = append(closedRecent, s)
	}
	closedTotal = len(closedRecent)
	// Most recently active first, ties by id, as the state orders them.
	slices.SortFunc(closedRecent, func(a, b conversation.Summary) int {
		if c := b.LastActivityAt.Compare(a.LastActivityAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return active, closedRecent[:min(closedKept, len(closedRecent))], closedTotal
}

// The rows are read for s's current state, as the engine reads them after
// the inbox's read_closed answer.
func (m readModel) closed(s *State, q ClosedQuery) *ClosedRows {
	var all []*entry
	for _, sum := range m {
		if sum.Status == conversation.StatusClosed && q.Filter.matchesRest(&sum) {
			all = append(all, newEntry(sum, 0))
		}
	}
	at := func(e *entry) item { return item{indexKey(q.Sort, e), e} }
	slices.SortFunc(all, func(a, b *entry) int {
		if lessItem(at(a), at(b)) {
			return -1
		}
		return 1
	})
	rows := &ClosedRows{Complete: true, Epoch: s.Epoch(), Seq: s.Seq()}
	if q.Count {
		rows.Count, rows.Counted = len(all), true
	}
	for _, e := range all {
		if q.After != nil && !lessItem(cursorItem(q.Sort, q.After.Key, q.After.ID), at(e)) {
			continue
		}
		if len(rows.Summaries) == q.Limit {
			rows.Complete = false
			break
		}
		rows.Summaries = append(rows.Summaries, e.sum)
	}
	return rows
}

// at stamps rows as read for s's current state.
func at(s *State, rows *ClosedRows) *ClosedRows {
	rows.Epoch, rows.Seq = s.Epoch(), s.Seq()
	return rows
}

// want is the whole list a filter selects from the truth, in order.
func (m readModel) want(f Filter, sort Sort) []string {
	var all []*entry
	for _, sum := range m {
		if f.Matches(sum) {
			all = append(all, newEntry(sum, 0))
		}
	}
	slices.SortFunc(all, func(a, b *entry) int {
		if lessItem(item{indexKey(sort, a), a}, item{indexKey(sort, b), b}) {
			return -1
		}
		return 1
	})
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = e.sum.ID
	}
	return out
}

// pageAll pages through a list to its end, asking the read model for each
// page as the engine does.
func pageAll(t *testing.T, s *State, m readModel, q Query) []string {
	got, _ := pageAllTotals(t, s, m, q)
	return got
}

// pageAllTotals is pageAll that also returns each page's total.
func pageAllTotals(t *testing.T, s *State, m readModel, q Query) (got []string, totals []int) {
	t.Helper()
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%+v: no end after 1000 pages", q)
		}
		f, sort, limit, cur, err := q.Resolve("")
		if err != nil {
			t.Fatal(err)
		}
		var rows *ClosedRows
		if cq, ok, err := q.ClosedQuery(""); err != nil {
			t.Fatal(err)
		} else if ok {
			rows = m.closed(s, cq)
		}
		p, err := s.List(f, sort, limit, cur, rows)
		if err != nil {
			t.Fatal(err)
		}
		got, totals = append(got, ids(p)...), append(totals, p.Total)
		if p.NextCursor == "" {
			return got, totals
		}
		q.Cursor = p.NextCursor
	}
}

// TestClosedListsPageTheReadModel: with most closed conversations evicted
// from memory, paging a list that includes closed ones to its end yields
// exactly the read model's list — every conversation once, in order — for
// every sort, filter and page size, ties included.
func TestClosedListsPageTheReadModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []conversation.Status{conversation.StatusNew, conversation.StatusOpen, conversation.StatusPending, conversation.StatusClosed}
	for round := range 40 {
		s := New("in1", "e1", Config{ClosedKept: 1 + rng.IntN(6)})
		m := readModel{}
		for i := range 20 + rng.IntN(60) {
			st := statuses[rng.IntN(len(statuses))]
			if rng.IntN(2) == 0 {
				st = conversation.StatusClosed
			}
			var opts []opt
			if st != conversation.StatusClosed && rng.IntN(2) == 0 {
				opts = append(opts, waiting(rng.IntN(5)))
			}
			if rng.IntN(3) == 0 {
				opts = append(opts, assigned(fmt.Sprintf("ag%d", rng.IntN(2))))
			}
			if rng.IntN(3) == 0 {
				opts = append(opts, tags("vip"))
			}
			sum := mk(fmt.Sprintf("c%02d", i), st, rng.IntN(8), 1, opts...) // few times: many ties
			m[sum.ID] = sum
			mustApply(t, s, sum)
		}
		if s.closedNotHeld == 0 {
			continue
		}
		for _, sort := range sorts {
			for _, q := range []Query{
				{Statuses: []conversation.Status{conversation.StatusClosed}},
				{Statuses: statuses},
				{Statuses: []conversation.Status{conversation.StatusOpen, conversation.StatusClosed}, Tag: "vip"},
				{Statuses: []conversation.Status{conversation.StatusClosed}, Assignee: AssigneeNone},
				{Statuses: []conversation.Status{conversation.StatusClosed, conversation.StatusNew}, Assignee: "ag1"},
			} {
				q.Sort, q.Limit = sort, 1+rng.IntN(7)
				f, _, _, _, err := q.Resolve("")
				if err != nil {
					t.Fatal(err)
				}
				got, totals := pageAllTotals(t, s, m, q)
				if want := m.want(f, sort); !slices.Equal(got, want) {
					t.Fatalf("round %d, %s, %+v:\n got  %v\n want %v", round, sort, q, got, want)
				}
				for i, n := range totals {
					if n != len(got) {
						t.Fatalf("round %d, %s, %+v: page %d's total %d, the list has %d", round, sort, q, i, n, len(got))
					}
				}
			}
		}
	}
}

// TestClosedListPrefersWhatIsHeld: a read-model row of a conversation the
// inbox holds (here older than the held version, which reopened it) is
// not listed: the inbox's own version is the one its stream delivered.
func TestClosedListPrefersWhatIsHeld(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1})
	for i := range 3 {
		mustApply(t, s, mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, i, 1))
	}
	mustApply(t, s, mk("x0", conversation.StatusOpen, 10, 2)) // reopened: held again
	m := readModel{}
	for i := range 3 {
		sum := mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, i, 1)
		m[sum.ID] = sum // x0 as the read model had it before the reopen
	}
	q := Query{Statuses: []conversation.Status{conversation.StatusClosed}}
	if got := pageAll(t, s, m, q); !slices.Equal(got, []string{"x2", "x1"}) {
		t.Fatalf("closed list %v, want x2 x1 (x0 is held, open)", got)
	}
	// Rows that belong to another inbox or are not closed are not listed.
	foreign := mk("y", conversation.StatusClosed, 20, 1)
	foreign.InboxID = "in2"
	f, sort, limit, _, _ := q.Resolve("")
	p, err := s.List(f, sort, limit, "", at(s, &ClosedRows{Summaries: []conversation.Summary{foreign, mk("z", conversation.StatusOpen, 19, 1)}, Complete: true}))
	if err != nil || len(p.Conversations) != 1 || p.Conversations[0].ID != "x2" {
		t.Fatalf("list with foreign rows: %v, %v", ids(p), err)
	}
}

// TestClosedListEndsAtTheRowsBound: when the read model's rows stop short
// (not complete), the page ends at their last position even if it has room,
// and its cursor resumes there — also when every row was held.
func TestClosedListEndsAtTheRowsBound(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 2})
	for i := range 6 {
		mustApply(t, s, mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, 10-i, 1)) // x0 newest
	}
	f := Filter{Statuses: []conversation.Status{conversation.StatusClosed}}
	// Rows x0, x1 (both held): nothing unheld reaches past x1 yet.
	rows := at(s, &ClosedRows{Summaries: []conversation.Summary{mk("x0", conversation.StatusClosed, 10, 1), mk("x1", conversation.StatusClosed, 9, 1)}})
	p, err := s.List(f, SortRecent, 10, "", rows)
	if err != nil || !slices.Equal(ids(p), []string{"x0", "x1"}) || p.NextCursor == "" {
		t.Fatalf("first page %v next %q, %v; want x0 x1 and a cursor", ids(p), p.NextCursor, err)
	}
	// A page whose rows were all filtered out still moves on.
	rows = at(s, &ClosedRows{Summaries: []conversation.Summary{mk("x2", conversation.StatusClosed, 8, 1, tags("other"))}})
	p, err = s.List(Filter{Statuses: f.Statuses, Tag: "vip"}, SortRecent, 10, "", rows)
	if err != nil || len(p.Conversations) != 0 || p.NextCursor == "" {
		t.Fatalf("filtered page %v next %q, %v; want empty with a cursor", ids(p), p.NextCursor, err)
	}
	c, err := decodeCursor(p.NextCursor)
	if err != nil || c.id != "x2" {
		t.Fatalf("cursor %+v, %v: want it at x2", c, err)
	}
}

// TestClosedListStaleRowsSkipNothing: read-model rows of held conversations
// at positions they have since left (read before a reopen reached the
// inbox) use up the rows' limit; the page must not run past the rows'
// bound, or a closed conversation beyond it would fall between two pages.
func TestClosedListStaleRowsSkipNothing(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1})
	for _, sum := range []conversation.Summary{
		mk("c", conversation.StatusClosed, 3, 1),
		mk("b", conversation.StatusClosed, 5, 1),
		mk("h1", conversation.StatusClosed, 8, 1),
		mk("h2", conversation.StatusClosed, 7, 1),
		mk("a", conversation.StatusClosed, 9, 1),
		mk("o", conversation.StatusOpen, 4, 1),
		mk("h1", conversation.StatusOpen, 1, 2), // reopened; the read model below still has v1
		mk("h2", conversation.StatusOpen, 2, 2),
	} {
		mustApply(t, s, sum)
	}
	m := readModel{}
	for _, sum := range []conversation.Summary{
		mk("a", conversation.StatusClosed, 9, 1), mk("h1", conversation.StatusClosed, 8, 1),
		mk("h2", conversation.StatusClosed, 7, 1), mk("b", conversation.StatusClosed, 5, 1),
		mk("c", conversation.StatusClosed, 3, 1),
	} {
		m[sum.ID] = sum
	}
	q := Query{Statuses: []conversation.Status{conversation.StatusOpen, conversation.StatusClosed}, Limit: 2}
	if got, want := pageAll(t, s, m, q), []string{"a", "b", "o", "c", "h2", "h1"}; !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
}

// TestClosedListNeverPagesBackwards: rows that do not follow the cursor
// (a read model out of this order) never set where the next page starts,
// so paging cannot loop.
func TestClosedListNeverPagesBackwards(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1})
	for i := range 4 {
		mustApply(t, s, mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, 10-i, 1)) // x0 newest
	}
	f := Filter{Statuses: []conversation.Status{conversation.StatusClosed}}
	first, err := s.List(f, SortRecent, 1, "", at(s, &ClosedRows{Summaries: []conversation.Summary{mk("x0", conversation.StatusClosed, 10, 1), mk("x1", conversation.StatusClosed, 9, 1)}}))
	if err != nil || !slices.Equal(ids(first), []string{"x0"}) || first.NextCursor == "" {
		t.Fatalf("first page %v next %q, %v", ids(first), first.NextCursor, err)
	}
	// The rows for the next page end with one before the cursor.
	rows := at(s, &ClosedRows{Summaries: []conversation.Summary{mk("x1", conversation.StatusClosed, 9, 1), mk("x0", conversation.StatusClosed, 10, 1)}})
	p, err := s.List(f, SortRecent, 1, first.NextCursor, rows)
	if err != nil {
		t.Fatal(err)
	}
	if p.NextCursor != "" {
		c, err := decodeCursor(p.NextCursor)
		if err != nil || c.id == "x0" || c.key > nanos(t0.Add(9*time.Minute)) {
			t.Fatalf("next cursor %+v (%v) goes back to x0", c, err)
		}
	}
	if !slices.Equal(ids(p), []string{"x1"}) {
		t.Fatalf("second page %v, want x1", ids(p))
	}
}

// TestClosedListLeavesOutWhatMovedAfterTheCursor: a closed conversation the
// inbox does not hold changes between two pages so that it moves in the
// order (addressing it ends its wait), comes into memory and is evicted at
// once; its row, now further on, is left out of the later pages as a held
// conversation's would be — the update stream carries it — and it is not
// listed twice.
func TestClosedListLeavesOutWhatMovedAfterTheCursor(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1})
	m := readModel{}
	put := func(sum conversation.Summary) {
		t.Helper()
		m[sum.ID] = sum
		mustApply(t, s, sum)
	}
	for i := range 6 {
		put(mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, 20+i, 1, waiting(i)))
	}
	q := Query{Statuses: []conversation.Status{conversation.StatusClosed}, Sort: SortLongestWait, Limit: 2}
	f, sort, limit, _, _ := q.Resolve("")
	list := func(cur string) Page {
		t.Helper()
		q.Cursor = cur
		cq, _, err := q.ClosedQuery("")
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.List(f, sort, limit, cur, m.closed(s, cq))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := list("")
	if !slices.Equal(ids(first), []string{"x0", "x1"}) {
		t.Fatalf("first page %v", ids(first))
	}
	// x0, listed and not held, is addressed: no wait any more, so it sorts
	// last now.
	addressed := mk("x0", conversation.StatusClosed, 20, 2)
	put(addressed)
	if _, held := s.Get("x0"); held {
		t.Fatal("x0 still held: not the case under test")
	}
	var got []string
	for p := list(first.NextCursor); ; p = list(p.NextCursor) {
		got = append(got, ids(p)...)
		if p.NextCursor == "" {
			break
		}
	}
	if want := []string{"x2", "x3", "x4", "x5"}; !slices.Equal(got, want) {
		t.Fatalf("later pages %v, want %v (x0 moved after the first page)", got, want)
	}
}

// TestClosedListRefusesStaleRows: rows read before a closed conversation
// the inbox does not hold changed (the change came into memory and was
// evicted in between) are refused, so that neither a page nor a snapshot
// carries a version older than the inbox's seq covers; rows read again
// are taken.
func TestClosedListRefusesStaleRows(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1})
	m := readModel{}
	for i := range 3 {
		sum := mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, i, 1)
		m[sum.ID] = sum
		mustApply(t, s, sum)
	}
	q := Query{Statuses: []conversation.Status{conversation.StatusClosed}}
	cq, _, _ := q.ClosedQuery("")
	f, sort, limit, _, _ := q.Resolve("")
	before := m.closed(s, cq)
	tagged := mk("x0", conversation.StatusClosed, 0, 2, tags("vip"))
	m[tagged.ID] = tagged
	mustApply(t, s, tagged) // into memory and out again: x0 is the least recent
	if _, err := s.List(f, sort, limit, "", before); !errors.Is(err, ErrReadClosed) {
		t.Fatalf("stale rows: %v, want ErrReadClosed", err)
	}
	p, err := s.List(f, sort, limit, "", m.closed(s, cq))
	if err != nil || !slices.Equal(ids(p), []string{"x2", "x1", "x0"}) || p.Conversations[2].Version != 2 {
		t.Fatalf("rows read again: %v %+v", err, p.Conversations)
	}
}

// TestEvictionRecordsAreBounded: an inbox that closes and evicts without
// end keeps at most RingSize records, the newest, and forgets the record
// of a conversation held again.
func TestEvictionRecordsAreBounded(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1, RingSize: 8})
	for i := range 100 {
		mustApply(t, s, mk(fmt.Sprintf("x%03d", i), conversation.StatusClosed, i, 1))
	}
	if n := len(s.evicted.byID); n != 8 || len(s.evicted.order) > 16 {
		t.Fatalf("%d records, %d in order; want 8 and at most 16", n, len(s.evicted.order))
	}
	if _, ok := s.evicted.byID["x098"]; !ok {
		t.Fatal("the newest eviction is not remembered")
	}
	mustApply(t, s, mk("x098", conversation.StatusOpen, 200, 2)) // reopened: held again
	if _, ok := s.evicted.byID["x098"]; ok {
		t.Fatal("a conversation held again keeps its eviction record")
	}
}

// TestClosedListRefusesRowsReadBeforeAChange: rows read before a change the
// inbox then applied to a closed conversation it does not hold (it came
// into memory and went at once) are refused, whether the change left it
// out of the rows (an open conversation closed; a tag the filter asks for)
// or made its row stale (also when that record was dropped meanwhile); the
// rows read again list it.
func TestClosedListRefusesRowsReadBeforeAChange(t *testing.T) {
	closedOnly := []conversation.Status{conversation.StatusClosed}
	all := []conversation.Status{conversation.StatusNew, conversation.StatusOpen, conversation.StatusPending, conversation.StatusClosed}
	for _, c := range []struct {
		name    string
		q       Query
		ringLen int
		setup   []conversation.Summary
		change  conversation.Summary
		burst   bool // evict more changed conversations than RingSize after the change
	}{
		{"closed while read", Query{Statuses: closedOnly}, 0,
			[]conversation.Summary{mk("b", conversation.StatusClosed, 0, 1), mk("a", conversation.StatusClosed, 5, 1), mk("x", conversation.StatusOpen, 1, 1)},
			mk("x", conversation.StatusClosed, 1, 2), false},
		{"closed while read, every status", Query{Statuses: all}, 0,
			[]conversation.Summary{mk("b", conversation.StatusClosed, 0, 1), mk("a", conversation.StatusClosed, 5, 1), mk("x", conversation.StatusOpen, 1, 1)},
			mk("x", conversation.StatusClosed, 1, 2), false},
		{"tagged while read", Query{Statuses: closedOnly, Tag: "vip"}, 0,
			[]conversation.Summary{mk("x", conversation.StatusClosed, 0, 1), mk("b", conversation.StatusClosed, 1, 1, tags("vip")), mk("a", conversation.StatusClosed, 5, 1, tags("vip"))},
			mk("x", conversation.StatusClosed, 0, 2, tags("vip")), false},
		{"stale, its record dropped", Query{Statuses: closedOnly}, 4,
			[]conversation.Summary{mk("x", conversation.StatusClosed, 0, 1), mk("a", conversation.StatusClosed, 50, 1)},
			mk("x", conversation.StatusClosed, 0, 2, tags("vip")), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New("in1", "e1", Config{ClosedKept: 1, RingSize: c.ringLen})
			m := readModel{}
			put := func(sum conversation.Summary) { m[sum.ID] = sum; mustApply(t, s, sum) }
			for _, sum := range c.setup {
				put(sum)
			}
			cq, _, _ := c.q.ClosedQuery("")
			f, sort, limit, _, _ := c.q.Resolve("")
			before := m.closed(s, cq)
			put(c.change)
			if _, held := s.Get(c.change.ID); held {
				t.Fatal("the changed conversation is held: not the case under test")
			}
			if c.burst {
				for i := range 5 {
					id := fmt.Sprintf("o%d", i)
					put(mk(id, conversation.StatusOpen, 1+i, 1))
					put(mk(id, conversation.StatusClosed, 1+i, 2))
				}
			}
			if p, err := s.List(f, sort, limit, "", before); !errors.Is(err, ErrReadClosed) {
				t.Fatalf("rows read before the change: %v %v, want ErrReadClosed", ids(p), err)
			}
			p, err := s.List(f, sort, limit, "", m.closed(s, cq))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, sum := range p.Conversations {
				if sum.ID == c.change.ID {
					found = sum.Version == c.change.Version
				}
			}
			if !found {
				t.Fatalf("rows read again: %v lacks %s v%d", p.Conversations, c.change.ID, c.change.Version)
			}
		})
	}
}

// TestClosedListRefusesRowsOfAnotherActivation: rows read for one
// activation of the inbox are refused by the next, which loaded later.
func TestClosedListRefusesRowsOfAnotherActivation(t *testing.T) {
	m := readModel{}
	old := New("in1", "e1", Config{ClosedKept: 1})
	for _, sum := range []conversation.Summary{mk("x", conversation.StatusClosed, 0, 1), mk("a", conversation.StatusClosed, 5, 1)} {
		m[sum.ID] = sum
		mustApply(t, old, sum)
	}
	q := Query{Statuses: []conversation.Status{conversation.StatusClosed}}
	cq, _, _ := q.ClosedQuery("")
	f, sort, limit, _, _ := q.Resolve("")
	rows := m.closed(old, cq)
	m["x"] = mk("x", conversation.StatusClosed, 0, 2, tags("vip"))
	s := New("in1", "e2", Config{ClosedKept: 1})
	s.Load(nil, []conversation.Summary{m["a"]}, 2)
	if _, err := s.List(f, sort, limit, "", rows); !errors.Is(err, ErrReadClosed) {
		t.Fatalf("rows of epoch e1 in epoch e2: %v, want ErrReadClosed", err)
	}
}

// TestEvictionsSinceCountsDroppedRecords: once a record went for the
// limit, rows read before its eviction can no longer be judged by it and
// count as read before a change, wherever it was.
func TestEvictionsSinceCountsDroppedRecords(t *testing.T) {
	var v evictions
	nowhere := func(int64, string) bool { return false }
	for i := range 3 {
		v.remember(newEntry(mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, i, 1), int64(10+i)), int64(10+i), 1)
	}
	// x0 (evicted at seq 10) and x1 (11) went; x2 (12) stays.
	if !v.since(10, 0, nowhere) {
		t.Fatal("rows read before x1's eviction (seq 11), whose record went, are not refused")
	}
	if v.since(11, 0, nowhere) || v.since(12, 0, nowhere) {
		t.Fatal("rows read after every dropped eviction are refused for one out of range")
	}
}

// TestClosedListTakesRowsAfterAnUnrelatedEviction: a close elsewhere in
// the inbox evicts its oldest held closed conversation, unchanged since
// long before the rows were read: the rows are still exact and are taken.
func TestClosedListTakesRowsAfterAnUnrelatedEviction(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 5})
	m := readModel{}
	put := func(sum conversation.Summary) { m[sum.ID] = sum; mustApply(t, s, sum) }
	for i := range 20 {
		var o []opt
		if i%7 == 0 {
			o = append(o, assigned("ag1"))
		}
		put(mk(fmt.Sprintf("c%02d", i), conversation.StatusClosed, i, 1, o...))
	}
	q := Query{Statuses: []conversation.Status{conversation.StatusClosed}, Assignee: "ag1"}
	cq, _, _ := q.ClosedQuery("")
	f, sort, limit, _, _ := q.Resolve("")
	rows := m.closed(s, cq)
	put(mk("z", conversation.StatusClosed, 100, 1)) // evicts c15, last changed before the read
	p, err := s.List(f, sort, limit, "", rows)
	if err != nil || !slices.Equal(ids(p), m.want(f, sort)) {
		t.Fatalf("exact rows after an unrelated close: %v, %v; want %v", ids(p), err, m.want(f, sort))
	}
}

// TestApplyRefusesAStaleSummaryOfAnEvictedConversation: a late or repeated
// summary of a conversation evicted at a newer version is not applied.
func TestApplyRefusesAStaleSummaryOfAnEvictedConversation(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 1})
	mustApply(t, s, mk("a", conversation.StatusClosed, 50, 1))
	mustApply(t, s, mk("x", conversation.StatusClosed, 0, 1))
	mustApply(t, s, mk("x", conversation.StatusClosed, 0, 2, tags("vip"))) // evicted at v2
	if _, ok := s.Apply(mk("x", conversation.StatusClosed, 0, 1), conversation.StatusClosed); ok {
		t.Fatal("a stale v1 applied over the evicted v2")
	}
	if _, ok := s.Apply(mk("x", conversation.StatusClosed, 0, 3), conversation.StatusClosed); !ok {
		t.Fatal("v3 not applied")
	}
}
