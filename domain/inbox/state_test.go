package inbox

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type opt func(*conversation.Summary)

func waiting(min int) opt {
	return func(s *conversation.Summary) {
		w := t0.Add(time.Duration(min) * time.Minute)
		s.WaitingSince = &w
		s.Addressed = false
	}
}
func assigned(a string) opt { return func(s *conversation.Summary) { s.AssigneeID = &a } }
func tags(t ...string) opt  { return func(s *conversation.Summary) { s.Tags = t } }
func channel(c conversation.Channel) opt {
	return func(s *conversation.Summary) { s.Channel = c }
}

func mk(id string, st conversation.Status, atMin int, version int64, opts ...opt) conversation.Summary {
	s := conversation.Summary{
		ID: id, InboxID: "in1", Status: st, Addressed: true, Channel: conversation.ChannelSMS,
		Tags: []string{}, LastActivityAt: t0.Add(time.Duration(atMin) * time.Minute), Version: version,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func ids(p Page) []string {
	out := make([]string, len(p.Conversations))
	for i, c := range p.Conversations {
		out[i] = c.ID
	}
	return out
}

// mustApply applies sum as the next change of its conversation, the status
// held (if any) being the one before it.
func mustApply(t testing.TB, s *State, sum conversation.Summary) Update {
	t.Helper()
	var was conversation.Status
	if held, ok := s.Get(sum.ID); ok {
		was = held.Status
	}
	u, ok := s.Apply(sum, was)
	if !ok {
		t.Fatalf("apply %s v%d: not applied", sum.ID, sum.Version)
	}
	return u
}

// mustList lists from memory alone: the read model, when asked, has no
// closed conversations to add.
func mustList(t testing.TB, s *State, f Filter, so Sort, limit int, cur string) Page {
	t.Helper()
	p, err := s.List(f, so, limit, cur, &ClosedRows{Complete: true, Epoch: s.Epoch(), Seq: s.Seq()})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return p
}

func TestSortsAndTies(t *testing.T) {
	s := New("in1", "e1", Config{})
	for _, sum := range []conversation.Summary{
		mk("c", conversation.StatusOpen, 10, 1, waiting(5)),
		mk("a", conversation.StatusNew, 10, 1, waiting(5)), // ties c on both keys
		mk("b", conversation.StatusPending, 20, 1),         // addressed: nil waiting
		mk("d", conversation.StatusOpen, 5, 1, waiting(1)),
		mk("e", conversation.StatusOpen, 30, 1), // addressed
		mk("z", conversation.StatusClosed, 40, 1),
	} {
		mustApply(t, s, sum)
	}
	cases := []struct {
		sort Sort
		want []string
	}{
		{SortRecent, []string{"e", "b", "a", "c", "d"}},
		{"", []string{"e", "b", "a", "c", "d"}},
		{SortOldest, []string{"d", "a", "c", "b", "e"}},
		{SortLongestWait, []string{"d", "a", "c", "b", "e"}},
	}
	for _, c := range cases {
		if got := ids(mustList(t, s, Filter{}, c.sort, 50, "")); !slices.Equal(got, c.want) {
			t.Errorf("sort %q: got %v, want %v", c.sort, got, c.want)
		}
	}
	// Paging one at a time keeps the tie order.
	for _, c := range cases {
		var got []string
		cur := ""
		for {
			p := mustList(t, s, Filter{}, c.sort, 1, cur)
			got = append(got, ids(p)...)
			if p.NextCursor == "" {
				break
			}
			cur = p.NextCursor
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("paged sort %q: got %v, want %v", c.sort, got, c.want)
		}
	}
}

func TestFilters(t *testing.T) {
	s := New("in1", "e1", Config{})
	for _, sum := range []conversation.Summary{
		mk("n1", conversation.StatusNew, 1, 1, waiting(1)),
		mk("o1", conversation.StatusOpen, 2, 1, assigned("ag1"), tags("vip", "billing")),
		mk("o2", conversation.StatusOpen, 3, 1, assigned("ag2"), waiting(2), channel(conversation.ChannelChat)),
		mk("p1", conversation.StatusPending, 4, 1, assigned("ag1"), waiting(3), tags("vip")),
		mk("x1", conversation.StatusClosed, 5, 1, assigned("ag1"), tags("vip")),
	} {
		mustApply(t, s, sum)
	}
	f, tr := false, true
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"default excludes closed", Filter{}, []string{"n1", "o1", "o2", "p1"}},
		{"status list", Filter{Statuses: []conversation.Status{conversation.StatusClosed, conversation.StatusNew}}, []string{"n1", "x1"}},
		{"unaddressed", Filter{Addressed: &f}, []string{"n1", "o2", "p1"}},
		{"addressed", Filter{Addressed: &tr}, []string{"o1"}},
		{"assignee none", Filter{Assignee: AssigneeNone}, []string{"n1"}},
		{"assignee ag1", Filter{Assignee: "ag1"}, []string{"o1", "p1"}},
		{"ag1 unaddressed", Filter{Assignee: "ag1", Addressed: &f}, []string{"p1"}},
		{"channel", Filter{Channel: conversation.ChannelChat}, []string{"o2"}},
		{"tag", Filter{Tag: "vip"}, []string{"o1", "p1"}},
		{"tag with closed", Filter{Tag: "vip", Statuses: []conversation.Status{conversation.StatusClosed, conversation.StatusOpen}}, []string{"o1", "x1"}},
	}
	for _, c := range cases {
		p := mustList(t, s, c.f, SortOldest, 50, "")
		if got := ids(p); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
		if p.Total != len(c.want) {
			t.Errorf("%s: total %d, want %d", c.name, p.Total, len(c.want))
		}
		for _, id := range []string{"n1", "o1", "o2", "p1", "x1"} {
			sum, _ := s.Get(id)
			if c.f.Matches(sum) != slices.Contains(c.want, id) {
				t.Errorf("%s: Matches(%s) disagrees with List", c.name, id)
			}
		}
	}
}

// The orders the API defines, written out as the reference the indexes'
// items (inverted keys, copied into the trees) must agree with: every
// one breaks ties by id ascending.
func lessFor(s Sort) func(a, b *entry) bool {
	key := func(e *entry) int64 { return e.key(s) }
	desc := s == SortRecent
	return func(a, b *entry) bool {
		if ka, kb := key(a), key(b); ka != kb {
			return (ka < kb) != desc
		}
		return a.sum.ID < b.sum.ID
	}
}

// bruteOrder is the reference: filter everything held, sort fully.
func bruteOrder(s *State, f Filter, so Sort) []string {
	var es []*entry
	for _, e := range s.byID {
		if f.Matches(e.sum) {
			es = append(es, e)
		}
	}
	less := lessFor(so)
	sort.Slice(es, func(i, j int) bool { return less(es[i], es[j]) })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.sum.ID
	}
	return out
}

func randomSummary(r *rand.Rand, id string, version int64) conversation.Summary {
	statuses := allStatuses()
	chans := []conversation.Channel{conversation.ChannelSMS, conversation.ChannelChat, conversation.ChannelEmail, conversation.ChannelVoice}
	// Few distinct minutes so that ties are common.
	sum := mk(id, statuses[r.IntN(nStatus)], r.IntN(50), version, channel(chans[r.IntN(len(chans))]))
	if r.IntN(2) == 0 {
		sum = withOpts(sum, waiting(r.IntN(50)))
	}
	if a := r.IntN(4); a > 0 {
		sum = withOpts(sum, assigned(fmt.Sprintf("ag%d", a)))
	}
	if r.IntN(3) == 0 {
		sum = withOpts(sum, tags("vip"))
	}
	return sum
}

func withOpts(s conversation.Summary, opts ...opt) conversation.Summary {
	for _, o := range opts {
		o(&s)
	}
	return s
}

func TestPagingYieldsEachOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := New("in1", "e1", Config{})
	for i := range 500 {
		mustApply(t, s, randomSummary(r, fmt.Sprintf("c%03d", i), 1))
	}
	f := false
	filters := []Filter{
		{},
		{Statuses: []conversation.Status{conversation.StatusClosed, conversation.StatusOpen, conversation.StatusNew, conversation.StatusPending}},
		{Addressed: &f, Assignee: "ag1"},
		{Tag: "vip", Channel: conversation.ChannelChat},
	}
	for _, fl := range filters {
		for _, so := range []Sort{SortRecent, SortOldest, SortLongestWait} {
			want := bruteOrder(s, fl, so)
			for _, limit := range []int{1, 7, 50, 200} {
				var got []string
				cur := ""
				for pages := 0; ; pages++ {
					p := mustList(t, s, fl, so, limit, cur)
					if p.Total != len(want) {
						t.Fatalf("%+v %s: total %d, want %d", fl, so, p.Total, len(want))
					}
					got = append(got, ids(p)...)
					if p.NextCursor == "" {
						break
					}
					cur = p.NextCursor
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%+v %s limit %d: paged order differs from brute force\n got %v\nwant %v", fl, so, limit, got, want)
				}
			}
		}
	}
}

// Conversations change between pages: none may appear twice, and every one
// that did not move since the first page appears exactly once — also those
// that changed in place (tags, status, assignee, sort keys untouched) or
// moved in another order than the page's (addressed: the wait order).
func TestPagingUnderChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, so := range []Sort{SortRecent, SortOldest, SortLongestWait} {
		s := New("in1", "e1", Config{})
		versions := map[string]int64{}
		for i := range 300 {
			id := fmt.Sprintf("c%03d", i)
			sum := randomSummary(r, id, 1)
			sum.Status = conversation.StatusOpen
			mustApply(t, s, sum)
			versions[id] = 1
		}
		changed := map[string]bool{}
		seen := map[string]int{}
		cur := ""
		for {
			p := mustList(t, s, Filter{}, so, 10, cur)
			for _, c := range p.Conversations {
				seen[c.ID]++
			}
			if p.NextCursor == "" {
				break
			}
			cur = p.NextCursor
			for range 5 {
				id := fmt.Sprintf("c%03d", r.IntN(300))
				versions[id]++
				if r.IntN(2) == 0 {
					// In place: the same keys, another status and tags.
					sum, _ := s.Get(id)
					sum.Version = versions[id]
					sum.Tags = append(sum.Tags, fmt.Sprintf("t%d", versions[id]))
					sum.Status = conversation.StatusPending
					if r.IntN(2) == 0 {
						sum.Status = conversation.StatusOpen
					}
					if r.IntN(3) == 0 && sum.WaitingSince != nil {
						// Addressed: it moves in the wait order only.
						sum.Addressed, sum.WaitingSince = true, nil
						if so == SortLongestWait {
							changed[id] = true
						}
					}
					mustApply(t, s, sum)
					continue
				}
				sum := randomSummary(r, id, versions[id])
				sum.Status = conversation.StatusOpen
				mustApply(t, s, sum)
				changed[id] = true
			}
		}
		for id := range versions {
			if seen[id] > 1 {
				t.Errorf("%s: %s seen %d times", so, id, seen[id])
			}
			if !changed[id] && seen[id] != 1 {
				t.Errorf("%s: %s, unmoved, seen %d times", so, id, seen[id])
			}
		}
	}
}

func TestStaleDropped(t *testing.T) {
	s := New("in1", "e1", Config{})
	mustApply(t, s, mk("a", conversation.StatusOpen, 1, 5))
	for _, v := range []int64{5, 4, 1} {
		if _, ok := s.Apply(mk("a", conversation.StatusClosed, 9, v), conversation.StatusOpen); ok {
			t.Fatalf("version %d applied over 5", v)
		}
	}
	if s.Seq() != 1 {
		t.Fatalf("seq %d after stale applies, want 1", s.Seq())
	}
	if got, _ := s.Get("a"); got.Status != conversation.StatusOpen || got.Version != 5 {
		t.Fatalf("held %+v, want open v5", got)
	}
	u := mustApply(t, s, mk("a", conversation.StatusPending, 2, 7))
	if u.Seq != 2 || u.Summary.Version != 7 {
		t.Fatalf("update %+v, want seq 2 version 7", u)
	}
	if c := s.Counts(""); c.Open != 0 || c.Pending != 1 {
		t.Fatalf("counts %+v", c)
	}
	// Foreign inbox and unindexable summaries are refused.
	other := mk("b", conversation.StatusOpen, 1, 1)
	other.InboxID = "in2"
	if _, ok := s.Apply(other, ""); ok {
		t.Fatal("summary of another inbox applied")
	}
	if _, ok := s.Apply(mk("c", "bogus", 1, 1), ""); ok {
		t.Fatal("summary with unknown status applied")
	}
	if s.Seq() != 2 {
		t.Fatalf("seq %d, want 2", s.Seq())
	}
}

func TestImmutability(t *testing.T) {
	s := New("in1", "e1", Config{})
	in := mk("a", conversation.StatusOpen, 1, 1, tags("x"), assigned("ag1"), waiting(1))
	u := mustApply(t, s, in)
	in.Tags[0] = "in-mutated"
	*in.AssigneeID = "in-mutated"
	u.Summary.Tags[0] = "u-mutated"
	*u.Summary.WaitingSince = t0.Add(time.Hour)
	p := mustList(t, s, Filter{}, SortRecent, 50, "")
	p.Conversations[0].Tags[0] = "p-mutated"
	got, _ := s.Get("a")
	got.Tags[0] = "get-mutated"
	ups, _ := s.Since(0)
	ups[0].Summary.Tags[0] = "since-mutated"

	got, _ = s.Get("a")
	if got.Tags[0] != "x" || *got.AssigneeID != "ag1" || !got.WaitingSince.Equal(t0.Add(time.Minute)) {
		t.Fatalf("state corrupted through a returned or passed summary: %+v", got)
	}
	ups, _ = s.Since(0)
	if ups[0].Summary.Tags[0] != "x" {
		t.Fatalf("ring corrupted: %v", ups[0].Summary.Tags)
	}
	if p := mustList(t, s, Filter{Tag: "x"}, SortRecent, 50, ""); len(p.Conversations) != 1 {
		t.Fatal("tag index corrupted")
	}
}

// model is the brute-force reference of every conversation ever applied,
// held or not.
func recount(model map[string]conversation.Summary, agent string) Counts {
	var c Counts
	for _, s := range model {
		switch s.Status {
		case conversation.StatusOpen:
			c.Open++
		case conversation.StatusNew:
			c.New++
		case conversation.StatusPending:
			c.Pending++
		case conversation.StatusClosed:
			c.Closed++
			continue
		}
		if !s.Addressed {
			c.Unaddressed++
		}
		if s.AssigneeID == nil {
			c.Unassigned++
		} else if *s.AssigneeID == agent {
			c.Mine++
			if !s.Addressed {
				c.MineUnaddressed++
			}
		}
	}
	return c
}

func TestCountsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	s := New("in1", "e1", Config{ClosedKept: 40, RingSize: 64})
	model := map[string]conversation.Summary{}
	versions := map[string]int64{}
	const nIDs = 300
	wantSeq := int64(0)
	f := false
	for step := range 5000 {
		id := fmt.Sprintf("c%03d", r.IntN(nIDs))
		var sum conversation.Summary
		stale := false
		if _, held := s.Get(id); held && r.IntN(5) == 0 {
			// A late delivery of an older or equal version. Only for held
			// conversations: evicted ones keep no tombstone (see Apply).
			sum = randomSummary(r, id, 1+r.Int64N(versions[id]))
			stale = true
		} else {
			versions[id]++
			sum = randomSummary(r, id, versions[id])
		}
		was := model[id].Status // "" for a conversation not seen yet
		_, ok := s.Apply(sum, was)
		if ok == stale {
			t.Fatalf("step %d: %s v%d applied=%v, stale=%v", step, id, sum.Version, ok, stale)
		}
		if ok {
			wantSeq++
			model[id] = sum
		}
		if s.Seq() != wantSeq {
			t.Fatalf("step %d: seq %d, want %d", step, s.Seq(), wantSeq)
		}
		if step%97 == 0 || step == 4999 {
			for _, agent := range []string{"", "ag1", "ag3", "nobody"} {
				if got, want := s.Counts(agent), recount(model, agent); got != want {
					t.Fatalf("step %d agent %q: counts %+v, brute force %+v", step, agent, got, want)
				}
			}
			if held := s.cnt[closedIdx].all; held > 40 {
				t.Fatalf("step %d: %d closed held, ClosedKept 40", step, held)
			}
			for _, fl := range []Filter{{}, {Addressed: &f, Assignee: "ag2"}, {Assignee: AssigneeNone}, {Tag: "vip"}} {
				p := mustList(t, s, fl, SortLongestWait, 200, "")
				if want := len(bruteOrder(s, fl, SortLongestWait)); p.Total != want {
					t.Fatalf("step %d filter %+v: total %d, want %d", step, fl, p.Total, want)
				}
			}
		}
	}
	// Counts of the closed status through List agree with Counts, held or not.
	p := mustList(t, s, Filter{Statuses: []conversation.Status{conversation.StatusClosed}}, SortRecent, 200, "")
	if c := s.Counts(""); p.Total != c.Closed {
		t.Fatalf("closed total %d, counts %d", p.Total, c.Closed)
	}
}

func TestRingSince(t *testing.T) {
	s := New("in1", "e1", Config{RingSize: 8})
	if ups, ok := s.Since(0); !ok || len(ups) != 0 {
		t.Fatalf("empty state: Since(0) = %v, %v", ups, ok)
	}
	for i := range 20 {
		mustApply(t, s, mk(fmt.Sprintf("c%d", i%3), conversation.StatusOpen, i, int64(i/3+1)))
	}
	if s.Seq() != 20 {
		t.Fatalf("seq %d", s.Seq())
	}
	for _, c := range []struct {
		since int64
		n     int
		ok    bool
	}{
		{20, 0, true}, {19, 1, true}, {15, 5, true}, {12, 8, true}, // ring holds 13..20
		{11, 0, false}, {0, 0, false}, {21, 0, false}, {-1, 0, false},
	} {
		ups, ok := s.Since(c.since)
		if ok != c.ok || len(ups) != c.n {
			t.Fatalf("Since(%d) = %d updates, %v; want %d, %v", c.since, len(ups), ok, c.n, c.ok)
		}
		for i, u := range ups {
			if u.Seq != c.since+int64(i)+1 {
				t.Fatalf("Since(%d)[%d].Seq = %d", c.since, i, u.Seq)
			}
			if want := fmt.Sprintf("c%d", (u.Seq-1)%3); u.Summary.ID != want {
				t.Fatalf("update seq %d carries %s, want %s", u.Seq, u.Summary.ID, want)
			}
		}
	}
	// Load starts the stream afresh.
	s.Load(nil, nil, 0)
	if ups, ok := s.Since(0); !ok || len(ups) != 0 || s.Seq() != 0 || s.Epoch() != "e1" {
		t.Fatalf("after Load: seq %d, Since(0) = %v, %v", s.Seq(), ups, ok)
	}
}

func TestClosedEviction(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 3})
	for i := range 5 {
		mustApply(t, s, mk(fmt.Sprintf("x%d", i), conversation.StatusClosed, i, 1))
	}
	mustApply(t, s, mk("o", conversation.StatusOpen, 0, 1))
	if s.Len() != 4 {
		t.Fatalf("held %d, want 3 closed + 1 open", s.Len())
	}
	for _, id := range []string{"x0", "x1"} {
		if _, ok := s.Get(id); ok {
			t.Fatalf("%s (least recent) still held", id)
		}
	}
	if c := s.Counts(""); c.Closed != 5 || c.Open != 1 {
		t.Fatalf("counts %+v, want closed 5 open 1", c)
	}
	closed := Filter{Statuses: []conversation.Status{conversation.StatusClosed}}
	if _, err := s.List(closed, SortRecent, 50, "", nil); !errors.Is(err, ErrReadClosed) {
		t.Fatalf("closed list without the read model's rows: %v, want ErrReadClosed", err)
	}
	if _, err := s.List(Filter{}, SortRecent, 50, "", nil); err != nil {
		t.Fatalf("default list without the read model's rows: %v", err)
	}
	p := mustList(t, s, closed, SortRecent, 50, "")
	if got := ids(p); !slices.Equal(got, []string{"x4", "x3", "x2"}) || p.Total != 5 || p.NextCursor != "" {
		t.Fatalf("closed list from memory alone %v total %d next %q", got, p.Total, p.NextCursor)
	}
	// An evicted conversation reopening moves out of the closed count.
	if _, ok := s.Apply(mk("x0", conversation.StatusOpen, 10, 2), conversation.StatusClosed); !ok {
		t.Fatal("reopened x0 not applied")
	}
	if c := s.Counts(""); c.Closed != 4 || c.Open != 2 {
		t.Fatalf("after reopen: counts %+v, want closed 4 open 2", c)
	}
	// Load: closed beyond ClosedKept and closed ones never loaded are counted.
	s.Load(
		[]conversation.Summary{mk("o1", conversation.StatusOpen, 1, 3), mk("o1", conversation.StatusOpen, 1, 2)},
		[]conversation.Summary{
			mk("y0", conversation.StatusClosed, 0, 2), mk("y1", conversation.StatusClosed, 1, 2),
			mk("y2", conversation.StatusClosed, 2, 2), mk("y3", conversation.StatusClosed, 3, 2),
		}, 100)
	if c := s.Counts(""); c.Closed != 100 || c.Open != 1 || s.Len() != 4 {
		t.Fatalf("after Load: counts %+v, held %d", c, s.Len())
	}
	if got, _ := s.Get("o1"); got.Version != 3 {
		t.Fatalf("Load kept version %d of o1, want 3", got.Version)
	}
	if _, ok := s.Get("y0"); ok {
		t.Fatal("y0 held beyond ClosedKept")
	}
}

func TestCursorErrors(t *testing.T) {
	s := New("in1", "e1", Config{})
	for i := range 5 {
		mustApply(t, s, mk(fmt.Sprintf("c%d", i), conversation.StatusOpen, i, 1))
	}
	p := mustList(t, s, Filter{}, SortRecent, 2, "")
	for _, c := range []struct{ cur, sort string }{
		{"!!!", "recent"}, {"", "recent"}, {"AQ", "recent"}, {p.NextCursor, "oldest"},
		{cursor{sort: SortRecent, key: 1, epoch: "e1"}.encode(), "recent"},
	} {
		if c.cur == "" {
			continue
		}
		if _, err := s.List(Filter{}, Sort(c.sort), 2, c.cur, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("cursor %q sort %s: err %v, want ErrInvalid", c.cur, c.sort, err)
		}
	}
	if _, err := s.List(Filter{}, "sideways", 2, "", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad sort: %v", err)
	}
	// A cursor from another epoch still pages by position.
	s2 := New("in1", "e2", Config{})
	s2.Load(slicesOf(s), nil, 0)
	p2 := mustList(t, s2, Filter{}, SortRecent, 10, p.NextCursor)
	if got := ids(p2); !slices.Equal(got, []string{"c2", "c1", "c0"}) {
		t.Fatalf("cross-epoch page %v", got)
	}
	// One from another inbox is refused, though it would parse as a
	// position there.
	other := New("in2", "e1", Config{})
	other.Load(slicesOf(s), nil, 0)
	if _, err := other.List(Filter{}, SortRecent, 2, p.NextCursor, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "another inbox") {
		t.Fatalf("a cursor of in1 on in2: %v, want ErrInvalid naming another inbox", err)
	}
	// A version 1 cursor (before cursors named their inbox) still pages.
	c, err := decodeCursor(p.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte{1, sortCode(c.sort)}, mustB64(t, p.NextCursor)[6:]...)
	p1 := mustList(t, s, Filter{}, SortRecent, 10, base64.RawURLEncoding.EncodeToString(v1))
	if got := ids(p1); !slices.Equal(got, []string{"c2", "c1", "c0"}) {
		t.Fatalf("version 1 cursor's page %v", got)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func slicesOf(s *State) []conversation.Summary {
	var out []conversation.Summary
	for _, e := range s.byID {
		out = append(out, e.sum)
	}
	return out
}

func TestQueryResolve(t *testing.T) {
	f, so, limit, cur, err := Query{}.Resolve("")
	if err != nil || so != SortRecent || limit != 50 || cur != "" || len(f.Statuses) != 0 || f.Addressed != nil {
		t.Fatalf("defaults: %+v %s %d %q %v", f, so, limit, cur, err)
	}
	no := false
	f, so, limit, _, err = Query{Statuses: []conversation.Status{"open", "new", "open"}, Addressed: &no, Assignee: AssigneeMe,
		Channel: "chat", Tag: "vip", Sort: SortLongestWait, Limit: 200}.Resolve("ag7")
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{Statuses: []conversation.Status{"open", "new"}, Assignee: "ag7", Channel: "chat", Tag: "vip"}
	if !slices.Equal(f.Statuses, want.Statuses) || f.Assignee != "ag7" || f.Channel != "chat" || f.Tag != "vip" ||
		f.Addressed == nil || *f.Addressed || so != SortLongestWait || limit != 200 {
		t.Fatalf("resolved %+v %s %d", f, so, limit)
	}
	if f, _, _, _, _ := (Query{Assignee: AssigneeNone}).Resolve(""); f.Assignee != AssigneeNone {
		t.Fatalf("assignee none: %q", f.Assignee)
	}
	s := New("in1", "e1", Config{})
	mustApply(t, s, mk("a", conversation.StatusOpen, 1, 1))
	mustApply(t, s, mk("b", conversation.StatusOpen, 2, 1))
	oldestCur := mustList(t, s, Filter{}, SortOldest, 1, "").NextCursor
	for _, c := range []struct {
		name string
		q    Query
		key  string
	}{
		{"unknown status", Query{Statuses: []conversation.Status{"open", "archived"}}, "status"},
		{"empty status", Query{Statuses: []conversation.Status{""}}, "status"},
		{"me without agent", Query{Assignee: AssigneeMe}, "assignee"},
		{"unknown channel", Query{Channel: "fax"}, "channel"},
		{"unknown sort", Query{Sort: "newest"}, "sort"},
		{"negative limit", Query{Limit: -1}, "limit"},
		{"limit over max", Query{Limit: 201}, "limit"},
		{"bad cursor", Query{Cursor: "***"}, "cursor"},
		{"cursor of another sort", Query{Cursor: oldestCur}, "cursor"}, // made for oldest, used with recent
	} {
		_, _, _, _, err := c.q.Resolve("")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: err %v, want ErrInvalid naming %q", c.name, err, c.key)
		}
	}
}

// A conversation whose version 1 never reached the inbox arrives unheld at
// version 2: it was never counted among the closed ones not held, so Closed
// must not drop. Only one that was closed moves out of that count.
func TestUnheldConversationKeepsClosedExact(t *testing.T) {
	s := New("in1", "e1", Config{ClosedKept: 10})
	s.Load(nil, []conversation.Summary{mk("x1", conversation.StatusClosed, 1, 3)}, 7)
	if c := s.Counts(""); c.Closed != 7 {
		t.Fatalf("after Load: closed %d, want 7", c.Closed)
	}
	if _, ok := s.Apply(mk("n", conversation.StatusOpen, 5, 2), conversation.StatusNew); !ok {
		t.Fatal("n v2 not applied")
	}
	if c := s.Counts(""); c.Closed != 7 || c.Open != 1 {
		t.Fatalf("a new conversation missing its version 1: counts %+v, want closed 7 open 1", c)
	}
	if _, ok := s.Apply(mk("old", conversation.StatusOpen, 6, 9), conversation.StatusClosed); !ok {
		t.Fatal("old v9 not applied")
	}
	if c := s.Counts(""); c.Closed != 6 || c.Open != 2 {
		t.Fatalf("a closed conversation not held reopening: counts %+v, want closed 6 open 2", c)
	}
	p := mustList(t, s, Filter{Statuses: []conversation.Status{conversation.StatusClosed}}, SortRecent, 50, "")
	if p.Total != 6 {
		t.Fatalf("closed list total %d, want 6", p.Total)
	}
}

// After deliveries are lost (their sender's node died between the commit and
// the delivery), Reconcile with the read model leaves the state as if none
// had been: every conversation not closed held at its newest version, every
// held one at its newest, counts exact; and it stays so as changes go on.
func TestReconcileRepairsLostDeliveries(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 3))
	const closedKept, nIDs = 15, 120
	truth := readModel{}
	change := func(id string) conversation.Summary {
		sum := randomSummary(r, id, truth[id].Version+1)
		truth[id] = sum
		return sum
	}
	for i := range nIDs / 2 {
		change(fmt.Sprintf("c%03d", i))
	}
	s := New("in1", "e1", Config{ClosedKept: closedKept, RingSize: 4096})
	s.Load(truth.snapshot(closedKept))
	check := func(when string) {
		t.Helper()
		for _, agent := range []string{"", "ag1", "ag2"} {
			if got, want := s.Counts(agent), recount(truth, agent); got != want {
				t.Fatalf("%s, agent %q: counts %+v, read model %+v", when, agent, got, want)
			}
		}
		for id, want := range truth {
			got, held := s.Get(id)
			if held && got.Version != want.Version || !held && want.Status != conversation.StatusClosed {
				t.Fatalf("%s: %s held=%v at v%d, read model v%d %s", when, id, held, got.Version, want.Version, want.Status)
			}
		}
	}
	lost := 0
	for range 3000 {
		id := fmt.Sprintf("c%03d", r.IntN(nIDs))
		was := truth[id].Status
		sum := change(id)
		if r.IntN(10) == 0 {
			lost++
			continue
		}
		s.Apply(sum, was)
	}
	if lost == 0 {
		t.Fatal("no delivery lost: the test proves nothing")
	}
	before := s.Seq()
	changes := s.Reconcile(truth.reconcileRows(s))
	check("after Reconcile")
	if len(changes) == 0 {
		t.Fatalf("%d deliveries lost, Reconcile emitted nothing", lost)
	}
	missed, ok := s.Since(before)
	if !ok || len(missed) != len(changes) {
		t.Fatalf("Since(%d) = %d updates (ok %v), Reconcile emitted %d", before, len(missed), ok, len(changes))
	}
	for i, c := range changes {
		if c.Seq != before+int64(i)+1 || missed[i].Summary.ID != c.Summary.ID {
			t.Fatalf("change %d: seq %d %s, stream has seq %d %s", i, c.Seq, c.Summary.ID, missed[i].Seq, missed[i].Summary.ID)
		}
	}
	if again := s.Reconcile(truth.reconcileRows(s)); len(again) != 0 {
		t.Fatalf("a second Reconcile with the same read model emitted %d changes", len(again))
	}
	for range 1000 {
		id := fmt.Sprintf("c%03d", r.IntN(nIDs))
		was := truth[id].Status
		s.Apply(change(id), was)
	}
	check("after more changes")
}
