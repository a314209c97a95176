package conversation

import (
	"encoding/json"
	"testing"
	"time"
)

func assignCmd(agent string) Command {
	return Command{AccountID: acct, InboxID: inbx, Assign: &AssignCommand{AgentID: agent}}
}

// TestAssignOwed: which events make round-robin owe an assignment, which
// settle it, and that a tick or answer on a conversation that owes nothing
// decides nothing — so a conversation that found nobody available stays
// unassigned whatever ticks it later gets.
func TestAssignOwed(t *testing.T) {
	rr := Settings{AutoAssign: AutoAssignRoundRobin}
	rrSLA := Settings{AutoAssign: AutoAssignRoundRobin, SLAFirstResponse: time.Minute}
	closed, pending := StatusClosed, StatusPending
	tr := true
	type step struct {
		st  Settings
		cmd Command
		// event: whether the step must produce an event.
		event bool
		after time.Duration // decided this long after the machine's clock
	}
	cases := []struct {
		name     string
		steps    []step
		owed     bool
		assignee string // "" unassigned
	}{
		{"new conversation in a round-robin inbox owes", []step{{rr, inbound("hi"), true, 0}}, true, ""},
		{"auto_assign none owes nothing", []step{{Settings{}, inbound("hi"), true, 0}}, false, ""},
		{"round-robin's agent settles it", []step{{rr, inbound("hi"), true, 0}, {rr, assignCmd("ag_1"), true, 0}}, false, "ag_1"},
		{"nobody available settles it, unassigned", []step{{rr, inbound("hi"), true, 0}, {rr, assignCmd(""), false, 0}}, false, ""},
		{"a tick after nobody available decides nothing", []step{
			{rr, inbound("hi"), true, 0}, {rr, assignCmd(""), false, 0}, {rr, tickCmd(), false, 0}}, false, ""},
		{"an SLA tick after nobody available does not assign", []step{
			{rrSLA, inbound("hi"), true, 0}, {rrSLA, assignCmd(""), false, 0}, {rrSLA, tickCmd(), true, 2 * time.Minute}}, false, ""},
		{"a late answer after the assignment decides nothing", []step{
			{rr, inbound("hi"), true, 0}, {rr, assignCmd("ag_1"), true, 0}, {rr, assignCmd("ag_2"), false, 0}}, false, "ag_1"},
		{"an answer when nothing is owed decides nothing", []step{{Settings{}, inbound("hi"), true, 0}, {rr, assignCmd("ag_1"), false, 0}}, false, ""},
		{"a retry tick keeps it owed (the actor asks again)", []step{{rr, inbound("hi"), true, 0}, {rr, tickCmd(), false, 0}}, true, ""},
		{"a second message while owed keeps it owed", []step{{rr, inbound("hi"), true, 0}, {rr, inbound("again"), true, 0}}, true, ""},
		{"an agent's assignment settles it", []step{
			{rr, inbound("hi"), true, 0}, {rr, update(Change{AssigneeID: ptr("ag_9")}), true, 0}}, false, "ag_9"},
		{"a reply settles it", []step{{rr, inbound("hi"), true, 0}, {rr, reply("hello", KindMessage), true, 0}}, false, ""},
		{"addressed settles it", []step{{rr, inbound("hi"), true, 0}, {rr, update(Change{Addressed: &tr}), true, 0}}, false, ""},
		{"closing settles it", []step{{rr, inbound("hi"), true, 0}, {rr, update(Change{Status: &closed}), true, 0}}, false, ""},
		{"a note does not settle it", []step{{rr, inbound("hi"), true, 0}, {rr, reply("fyi", KindNote), true, 0}}, true, ""},
		{"snoozing does not settle it", []step{{rr, inbound("hi"), true, 0}, {rr, update(Change{Status: &pending}), true, 0}}, true, ""},
		{"round-robin turned off: the next tick settles it", []step{{rr, inbound("hi"), true, 0}, {Settings{}, tickCmd(), true, 0}}, false, ""},
		{"reopened by the contact owes again", []step{
			{rr, inbound("hi"), true, 0}, {rr, assignCmd(""), false, 0}, {rr, update(Change{Status: &closed}), true, 0},
			{rr, inbound("back"), true, 0}}, true, ""},
		{"a new call owes", []step{{rr, call("c1", CallRinging, 0), true, 0}}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t)
			for i, s := range tc.steps {
				ev := m.at(s.after, s.st, s.cmd)
				if ev == nil && s.cmd.Assign != nil && s.cmd.Assign.AgentID == "" {
					m.s.NobodyAvailable() // what the actor does, in its snapshot
				}
				if (ev != nil) != s.event {
					t.Fatalf("step %d: event %+v, want one: %v", i, ev, s.event)
				}
				if ev != nil && s.cmd.Assign != nil && ev.ActorID != ActorAutomation {
					t.Fatalf("step %d: round-robin's event by %q, want %q", i, ev.ActorID, ActorAutomation)
				}
			}
			if m.s.AssignPending != tc.owed {
				t.Fatalf("assign pending %v, want %v", m.s.AssignPending, tc.owed)
			}
			got := ""
			if m.s.Summary.AssigneeID != nil {
				got = *m.s.Summary.AssigneeID
			}
			if got != tc.assignee {
				t.Fatalf("assignee %q, want %q", got, tc.assignee)
			}
		})
	}
}

// TestAssignNextDue: while an assignment is owed the conversation is due
// within AssignRetry of its latest event or tick; its other timers still
// count when sooner, and once settled only they do.
func TestAssignNextDue(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rr := Settings{AutoAssign: AutoAssignRoundRobin, AutoCloseAfter: time.Hour}
	sum := Summary{Status: StatusNew, LastActivityAt: base, WaitingSince: &base}
	owed := &State{Summary: sum, AssignPending: true}
	if got := owed.NextDue(rr, base); got == nil || !got.Equal(base.Add(AssignRetry)) {
		t.Fatalf("owed: due %v, want %v", got, base.Add(AssignRetry))
	}
	later := base.Add(10 * time.Second)
	if got := owed.NextDue(rr, later); got == nil || !got.Equal(later.Add(AssignRetry)) {
		t.Fatalf("owed, retried at +10s: due %v, want %v", got, later.Add(AssignRetry))
	}
	soon := Settings{AutoAssign: AutoAssignRoundRobin, AutoCloseAfter: time.Second}
	if got := owed.NextDue(soon, base); got == nil || !got.Equal(base.Add(time.Second)) {
		t.Fatalf("owed with auto-close in 1 s: due %v, want the auto-close", got)
	}
	settled := &State{Summary: sum}
	if got := settled.NextDue(rr, base); got == nil || !got.Equal(base.Add(time.Hour)) {
		t.Fatalf("settled: due %v, want the auto-close at +1h", got)
	}
	if got := (&State{Summary: sum}).NextDue(Settings{AutoAssign: AutoAssignRoundRobin}, base); got != nil {
		t.Fatalf("settled, no timers: due %v, want none", got)
	}
}

// TestAssignOwedReplays: the owed flag comes from the events alone, so a
// journal replayed under other settings (or through JSON, as the actor
// loads it) restores it.
func TestAssignOwedReplays(t *testing.T) {
	rr := Settings{AutoAssign: AutoAssignRoundRobin}
	m := newMachine(t)
	var evs []*Event
	evs = append(evs, m.at(0, rr, inbound("hi")))
	evs = append(evs, m.at(0, rr, reply("fyi", KindNote)))
	replay := func(n int) *State {
		st := &State{}
		for _, ev := range evs[:n] {
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var back Event
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			Apply(st, &back)
		}
		return st
	}
	if st := replay(2); !st.AssignPending {
		t.Fatal("replayed journal lost the owed assignment")
	}
	// Through a snapshot, owed and settled.
	for _, nobody := range []bool{false, true} {
		st := replay(2)
		if nobody && !st.NobodyAvailable() {
			t.Fatal("NobodyAvailable settled nothing on a state that owed an assignment")
		}
		raw, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var snap State
		if err := json.Unmarshal(raw, &snap); err != nil || snap.AssignPending == nobody {
			t.Fatalf("snapshot %s: assign pending %v, want %v (err %v)", raw, snap.AssignPending, !nobody, err)
		}
	}
	// Journals written before "nobody available" left the journal hold it
	// as an event that changes nothing but the flag; they replay settled.
	settled := false
	evs = append(evs, &Event{Type: EventUpdate, Version: 3, At: m.now, ActorID: ActorAutomation, Change: &Change{}, AssignPending: &settled})
	if st := replay(3); st.AssignPending || st.Version() != 3 {
		t.Fatalf("an old journal's nobody-available event replays as owed %v at version %d", st.AssignPending, st.Version())
	}
}

// TestNobodyAvailableMakesNoEvent: round-robin's "nobody is available"
// changes nothing the API shows, so it is no event (no version, no update,
// no webhook); the owed assignment is settled all the same.
func TestNobodyAvailableMakesNoEvent(t *testing.T) {
	rr := Settings{AutoAssign: AutoAssignRoundRobin}
	m := newMachine(t)
	m.at(0, rr, inbound("hi"))
	if ev := m.at(0, rr, assignCmd("")); ev != nil {
		t.Fatalf("nobody available made an event: %+v", ev)
	}
	if m.s.Version() != 1 || !m.s.NobodyAvailable() || m.s.AssignPending || m.s.NobodyAvailable() {
		t.Fatalf("version %d, still owed %v", m.s.Version(), m.s.AssignPending)
	}
}
