package eviction

import "testing"

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		views []View // the first is self
		leave bool
		with  string
	}{
		{
			name:  "a healthy cluster",
			views: []View{{ID: "b", Members: []string{"a", "b", "c"}}, {ID: "a", Members: []string{"a", "b", "c"}}, {ID: "c", Members: []string{"a", "b", "c"}}},
		},
		{
			// The paused member comes back: the others blocked it; it
			// still lists them, or already blocked them in turn.
			name:  "paused member, blocked by both others",
			views: []View{{ID: "b", Members: []string{"a", "b", "c"}}, {ID: "a", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "c", Members: []string{"a", "c"}, Blocked: []string{"b"}}},
			leave: true, with: "a",
		},
		{
			name:  "paused member that blocked them back",
			views: []View{{ID: "b", Members: []string{"b"}, Blocked: []string{"a", "c"}}, {ID: "a", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "c", Members: []string{"a", "c"}, Blocked: []string{"b"}}},
			leave: true, with: "a",
		},
		{
			name:  "one of the majority stays",
			views: []View{{ID: "a", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "b", Members: []string{"b"}, Blocked: []string{"a", "c"}}, {ID: "c", Members: []string{"a", "c"}, Blocked: []string{"b"}}},
		},
		{
			// It blocked the others, who never noticed its pause: the
			// others stay, it leaves.
			name:  "one-sided block by the paused member, seen from the majority",
			views: []View{{ID: "a", Members: []string{"a", "b", "c"}}, {ID: "b", Members: []string{"b"}, Blocked: []string{"a", "c"}}, {ID: "c", Members: []string{"a", "b", "c"}}},
		},
		{
			name:  "one-sided block by the paused member, seen by it",
			views: []View{{ID: "b", Members: []string{"b"}, Blocked: []string{"a", "c"}}, {ID: "a", Members: []string{"a", "b", "c"}}, {ID: "c", Members: []string{"a", "b", "c"}}},
			leave: true, with: "a",
		},
		{
			// Only a dropped b; b and c still list all three. Sides of
			// two each ({a, c} and {b, c}): the greater id leaves, and
			// either restart heals it.
			name:  "lopsided, the greater id",
			views: []View{{ID: "b", Members: []string{"a", "b", "c"}}, {ID: "a", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "c", Members: []string{"a", "b", "c"}}},
			leave: true, with: "a",
		},
		{
			name:  "lopsided, the smaller id stays",
			views: []View{{ID: "a", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "b", Members: []string{"a", "b", "c"}}, {ID: "c", Members: []string{"a", "b", "c"}}},
		},
		{
			name:  "two members that blocked each other: the greater id leaves",
			views: []View{{ID: "y", Members: []string{"y"}, Blocked: []string{"x"}}, {ID: "x", Members: []string{"x"}, Blocked: []string{"y"}}},
			leave: true, with: "x",
		},
		{
			name:  "two members that blocked each other: the smaller id stays",
			views: []View{{ID: "x", Members: []string{"x"}, Blocked: []string{"y"}}, {ID: "y", Members: []string{"y"}, Blocked: []string{"x"}}},
		},
		{
			// A member restarted under a new id; the others still hold
			// its old id blocked, which concerns no one alive.
			name:  "an old id blocked",
			views: []View{{ID: "d", Members: []string{"a", "c", "d"}}, {ID: "a", Members: []string{"a", "c", "d"}, Blocked: []string{"b"}}, {ID: "c", Members: []string{"a", "c", "d"}, Blocked: []string{"b"}}},
		},
		{
			// etcd: the paused member took the others' block list in
			// their gossip, itself included, and routes to them only.
			name:  "paused member that blocked itself",
			views: []View{{ID: "b", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "a", Members: []string{"a", "c"}, Blocked: []string{"b"}}, {ID: "c", Members: []string{"a", "c"}, Blocked: []string{"b"}}},
			leave: true, with: "a",
		},
		{
			name:  "alone",
			views: []View{{ID: "a", Members: []string{"a"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with, leave := Decide(tc.views[0], tc.views[1:])
			if leave != tc.leave || with != tc.with {
				t.Fatalf("Decide = (%q, %v), want (%q, %v)", with, leave, tc.with, tc.leave)
			}
		})
	}
}

// A member routes only to members whose views route back: a member that
// stopped (its view retracted) counts for no one's side.
func TestSideCountsOnlyMembersThatRouteBack(t *testing.T) {
	// d left gracefully: a blocked it, its view is gone. b, paused, still
	// lists d; d must not make b's side larger than a's.
	a := View{ID: "a", Members: []string{"a", "d"}, Blocked: []string{"b", "d"}}
	b := View{ID: "b", Members: []string{"a", "b", "d"}}
	if with, leave := Decide(a, []View{b}); leave {
		t.Fatalf("a leaves for %q: b's side counted a member that no longer routes to it", with)
	}
}

// Decide alone may pick the wrong member while views disagree; the
// Detector acts only on a conflict that lasts.
func TestDetectorWaitsForALastingConflict(t *testing.T) {
	// a was paused; c has blocked it, b not yet, and a's last view (from
	// before its pause) still looks whole. Sides of two each: c, with the
	// greater id, would leave.
	c := View{ID: "c", Members: []string{"b", "c"}, Blocked: []string{"a"}}
	bBefore := View{ID: "b", Members: []string{"a", "b", "c"}}
	aBefore := View{ID: "a", Members: []string{"a", "b", "c"}}
	if _, leave := Decide(c, []View{bBefore, aBefore}); !leave {
		t.Fatal("the passing disagreement no longer makes Decide say leave; this test lost its point")
	}
	d := Detector{Rounds: 3}
	for i := range 2 {
		if _, leave := d.Observe(c, []View{bBefore, aBefore}); leave {
			t.Fatalf("left after %d observations of %d", i+1, d.Rounds)
		}
	}
	// b blocks a too: c's side is the larger, the conflict is over.
	bAfter := View{ID: "b", Members: []string{"b", "c"}, Blocked: []string{"a"}}
	if _, leave := d.Observe(c, []View{bAfter, aBefore}); leave {
		t.Fatal("c left once b agreed with it")
	}
	// a, seeing the lasting conflict, leaves on the third observation.
	da := Detector{Rounds: 3}
	for i := range 3 {
		with, leave := da.Observe(aBefore, []View{bAfter, c})
		if leave != (i == 2) || leave && with != "b" {
			t.Fatalf("observation %d: (%q, %v)", i+1, with, leave)
		}
	}
	// A conflict that ends starts the count again.
	da = Detector{Rounds: 2}
	da.Observe(aBefore, []View{bAfter, c})
	da.Observe(aBefore, []View{bBefore, {ID: "c", Members: []string{"a", "b", "c"}}})
	if _, leave := da.Observe(aBefore, []View{bAfter, c}); leave {
		t.Fatal("the count did not start again after the conflict ended")
	}
}
