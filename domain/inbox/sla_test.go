package inbox

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

func slaDue(min int, breached bool) opt {
	return func(s *conversation.Summary) {
		d := t0.Add(time.Duration(min) * time.Minute)
		s.SLADueAt, s.SLABreached, s.Addressed = &d, breached, false
	}
}

func TestSLADueSortAndBreachedCount(t *testing.T) {
	s := New("in1", "e1", Config{})
	mustApply(t, s, mk("a", conversation.StatusOpen, 1, 1, slaDue(30, false)))
	mustApply(t, s, mk("b", conversation.StatusNew, 2, 1, slaDue(10, true)))
	mustApply(t, s, mk("c", conversation.StatusOpen, 3, 1)) // no SLA: last
	mustApply(t, s, mk("d", conversation.StatusPending, 4, 1, slaDue(20, false)))
	mustApply(t, s, mk("e", conversation.StatusClosed, 5, 1, slaDue(5, true)))

	p, err := s.List(Filter{}, SortSLADue, 2, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("first page %v, want [b d]", got)
	}
	p, err = s.List(Filter{}, SortSLADue, 2, p.NextCursor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p); !slices.Equal(got, []string{"a", "c"}) || p.NextCursor != "" {
		t.Fatalf("second page %v (next %q), want [a c] and the end", got, p.NextCursor)
	}
	if c := s.Counts(""); c.SLABreached != 1 {
		t.Fatalf("sla_breached %d, want 1 (the closed one does not count)", c.SLABreached)
	}
	// Addressing the breached one takes it out of the count and to the end.
	mustApply(t, s, mk("b", conversation.StatusOpen, 6, 2))
	if c := s.Counts(""); c.SLABreached != 0 {
		t.Fatalf("sla_breached %d after addressing, want 0", c.SLABreached)
	}
	p, _ = s.List(Filter{}, SortSLADue, 10, "", nil)
	if got := ids(p); !slices.Equal(got, []string{"d", "a", "b", "c"}) {
		t.Fatalf("order %v, want [d a b c]", got)
	}
}
