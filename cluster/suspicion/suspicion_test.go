package suspicion

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestSilentMemberIsSuspectedOnceAndRecoversOnAnswer(t *testing.T) {
	d := New(time.Second, time.Second)
	d.Watch([]string{"a", "b"}, at(0))
	if got := d.Check(at(1000)); len(got) != 0 {
		t.Fatalf("suspected at exactly the period: %v", got)
	}
	d.Answered("a", at(900))
	got := d.Check(at(1001))
	if !slices.Equal(got, []string{"b"}) {
		t.Fatalf("at 1001 ms suspected %v, want [b]", got)
	}
	if got := d.Check(at(1500)); len(got) != 0 {
		t.Fatalf("b suspected again before answering, or a too early: %v", got)
	}
	if !d.Answered("b", at(1600)) {
		t.Fatal("b's answer did not report its recovery")
	}
	if d.Answered("b", at(1700)) {
		t.Fatal("a second answer reported a recovery")
	}
	// b answered at 1,700: silent again only after 2,700.
	if got := d.Check(at(2700)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("at 2700 ms suspected %v, want [a] (silent since 900)", got)
	}
	if got := d.Check(at(2701)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("at 2701 ms suspected %v, want [b]", got)
	}
}

func TestAnOlderAnswerDoesNotMoveTheLastOneBack(t *testing.T) {
	d := New(time.Second, time.Second)
	d.Watch([]string{"a"}, at(0))
	d.Answered("a", at(800))
	d.Answered("a", at(300)) // received out of order
	if got := d.Check(at(1700)); len(got) != 0 {
		t.Fatalf("suspected %v although a answered at 800 ms", got)
	}
}

func TestWatchGivesNewMembersAPeriodAndForgetsTheGone(t *testing.T) {
	d := New(time.Second, time.Second)
	d.Watch([]string{"a"}, at(0))
	d.Watch([]string{"a", "b"}, at(900)) // b joins
	if got := d.Check(at(1500)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("suspected %v, want [a] (b joined at 900 ms)", got)
	}
	d.Watch([]string{"b"}, at(1600)) // a leaves, suspected
	if d.Answered("a", at(1700)) {
		t.Fatal("an answer from a member that left reported a recovery")
	}
	if got := d.Check(at(1901)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("suspected %v, want [b]", got)
	}
	d.Watch([]string{"a", "b"}, at(2000)) // a rejoins: a fresh period, not its old silence
	if got := d.Check(at(2500)); len(got) != 0 {
		t.Fatalf("suspected %v right after a rejoined", got)
	}
	// Forgotten, not still marked: a rejoined member silent again is
	// suspected again (b still is, so is not returned twice).
	if got := d.Check(at(3001)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("suspected %v, want [a]", got)
	}
}

// A check that comes late (the checker's own process stalled) does not read
// the stall as the members' silence; silence after it counts again.
func TestTheCheckersOwnStallIsNotSilence(t *testing.T) {
	d := New(time.Second, 250*time.Millisecond)
	d.Watch([]string{"a"}, at(0))
	for _, ms := range []int{250, 500, 750} {
		d.Answered("a", at(ms-50))
		if got := d.Check(at(ms)); len(got) != 0 {
			t.Fatalf("suspected %v at %d ms", got, ms)
		}
	}
	// Stalled from 750 to 3,000 ms, 2 s late: a is silent for 2.3 s by the
	// clock, for 300 ms of the checker's own time.
	var suspectedAt int
	for ms := 3000; ms <= 5000 && suspectedAt == 0; ms += 250 {
		if got := d.Check(at(ms)); slices.Equal(got, []string{"a"}) {
			suspectedAt = ms
		}
	}
	if suspectedAt != 3750 {
		t.Fatalf("a suspected at %d ms, want 3,750 (1,050 ms of silence outside the stall)", suspectedAt)
	}
}
