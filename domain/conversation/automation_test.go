package conversation

import (
	"errors"
	"testing"
	"time"
)

// at runs cmd with the inbox settings st at the machine's clock + d,
// applying the event if there is one; it returns the event (nil: none).
func (m *machine) at(d time.Duration, st Settings, cmd Command) *Event {
	m.t.Helper()
	cmd.Settings = st
	ev, err := Decide(m.s, cmd, m.now.Add(d), m.newID)
	if err != nil {
		m.t.Fatalf("Decide at +%s: %v", d, err)
	}
	if ev != nil {
		m.apply(ev)
	}
	return ev
}

func tickCmd() Command {
	return Command{AccountID: acct, InboxID: inbx, Tick: &TickCommand{}}
}

func snooze(status *Status, until time.Time) Command {
	return Command{AccountID: acct, InboxID: inbx, Update: &UpdateCommand{
		Change: Change{Status: status}, Snooze: &SnoozeRequest{Until: &until}}}
}

func TestTickDecides(t *testing.T) {
	autoClose := Settings{AutoCloseAfter: 2 * time.Second}
	sla := Settings{SLAFirstResponse: 2 * time.Second}
	pending := StatusPending
	cases := []struct {
		name  string
		st    Settings
		setup func(m *machine)
		tick  time.Duration // after the last setup event
		want  func(t *testing.T, ev *Event, s *Summary)
	}{
		{"auto-close before due: nothing", autoClose, nil, 1900 * time.Millisecond, func(t *testing.T, ev *Event, s *Summary) {
			if ev != nil || s.Status != StatusNew {
				t.Fatalf("event %+v, status %s: want none, new", ev, s.Status)
			}
		}},
		{"auto-close at due: closed by automation", autoClose, nil, 2 * time.Second, func(t *testing.T, ev *Event, s *Summary) {
			if ev == nil || s.Status != StatusClosed || ev.ActorID != ActorAutomation || ev.Type != EventUpdate {
				t.Fatalf("event %+v, status %s: want an automation update closing it", ev, s.Status)
			}
		}},
		{"auto-close off: nothing", Settings{}, nil, time.Hour, func(t *testing.T, ev *Event, s *Summary) {
			if ev != nil {
				t.Fatalf("event %+v with auto-close off", ev)
			}
		}},
		{"auto-close skips pending", autoClose, func(m *machine) { m.at(0, autoClose, update(Change{Status: &pending})) },
			time.Hour, func(t *testing.T, ev *Event, s *Summary) {
				if ev != nil || s.Status != StatusPending {
					t.Fatalf("event %+v, status %s: want none, pending", ev, s.Status)
				}
			}},
		{"new inbound moves the deadline", autoClose, func(m *machine) {
			m.now = m.now.Add(1500 * time.Millisecond)
			m.at(0, autoClose, inbound("again"))
		}, 1500 * time.Millisecond, func(t *testing.T, ev *Event, s *Summary) {
			if ev != nil || s.Status == StatusClosed {
				t.Fatalf("closed 1.5 s after the latest activity: %+v", ev)
			}
		}},
		{"snooze wakes on time", Settings{}, func(m *machine) {
			m.at(0, Settings{}, snooze(&pending, m.now.Add(2*time.Second)))
		}, 2 * time.Second, func(t *testing.T, ev *Event, s *Summary) {
			if ev == nil || s.Status != StatusOpen || s.SnoozeUntil != nil || ev.ActorID != ActorAutomation {
				t.Fatalf("event %+v, status %s, snooze %v: want open by automation, no snooze", ev, s.Status, s.SnoozeUntil)
			}
		}},
		{"snooze not yet due", Settings{}, func(m *machine) {
			m.at(0, Settings{}, snooze(&pending, m.now.Add(2*time.Second)))
		}, time.Second, func(t *testing.T, ev *Event, s *Summary) {
			if ev != nil || s.Status != StatusPending || s.SnoozeUntil == nil {
				t.Fatalf("event %+v, status %s: want still snoozed", ev, s.Status)
			}
		}},
		{"inbound ends the snooze at once", Settings{}, func(m *machine) {
			m.at(0, Settings{}, snooze(&pending, m.now.Add(time.Hour)))
			m.at(time.Second, Settings{}, inbound("hello?"))
		}, 2 * time.Second, func(t *testing.T, ev *Event, s *Summary) {
			if s.Status != StatusOpen || s.SnoozeUntil != nil {
				t.Fatalf("status %s, snooze %v: want open, no snooze", s.Status, s.SnoozeUntil)
			}
		}},
		{"SLA breaches on time", sla, nil, 2 * time.Second, func(t *testing.T, ev *Event, s *Summary) {
			if ev == nil || !s.SLABreached || s.SLADueAt == nil || ev.ActorID != ActorAutomation {
				t.Fatalf("event %+v, summary %+v: want breached by automation", ev, s)
			}
		}},
		{"SLA not yet due", sla, nil, 1900 * time.Millisecond, func(t *testing.T, ev *Event, s *Summary) {
			if ev != nil || s.SLABreached {
				t.Fatalf("breached early: %+v", ev)
			}
		}},
		{"SLA cleared by a reply", sla, func(m *machine) { m.at(time.Second, sla, reply("on it", KindMessage)) },
			time.Hour, func(t *testing.T, ev *Event, s *Summary) {
				if ev != nil || s.SLABreached || s.SLADueAt != nil {
					t.Fatalf("event %+v, summary %+v: want no SLA", ev, s)
				}
			}},
		{"SLA does not breach a closed conversation", sla, func(m *machine) {
			closed := StatusClosed
			m.at(0, sla, update(Change{Status: &closed}))
		}, time.Hour, func(t *testing.T, ev *Event, s *Summary) {
			if s.SLABreached {
				t.Fatalf("closed conversation breached: %+v", ev)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t)
			m.at(0, tc.st, inbound("hi"))
			if tc.setup != nil {
				tc.setup(m)
			}
			last := m.s.Summary.LastActivityAt
			if last.After(m.now) {
				m.now = last
			}
			ev := m.at(tc.tick, tc.st, tickCmd())
			tc.want(t, ev, &m.s.Summary)
			// A repeated tick at the same time is harmless: nothing more.
			if again := m.at(tc.tick, tc.st, tickCmd()); again != nil {
				t.Fatalf("second tick made another event: %+v", again)
			}
		})
	}
}

func TestSLADueFollowsWaiting(t *testing.T) {
	sla := Settings{SLAFirstResponse: 30 * time.Second}
	m := newMachine(t)
	m.at(0, sla, inbound("hi"))
	s := &m.s.Summary
	if s.SLADueAt == nil || !s.SLADueAt.Equal(s.WaitingSince.Add(30*time.Second)) {
		t.Fatalf("sla_due_at %v, waiting_since %v: want waiting + 30 s", s.SLADueAt, s.WaitingSince)
	}
	m.at(time.Minute, sla, tickCmd())
	if !m.s.Summary.SLABreached {
		t.Fatal("not breached after the due time")
	}
	m.at(time.Minute, sla, update(Change{Addressed: ptr(true)}))
	if s := m.s.Summary; s.SLABreached || s.SLADueAt != nil {
		t.Fatalf("addressed: breached %v, due %v: want false, null", s.SLABreached, s.SLADueAt)
	}
	// The settings change under a waiting conversation: the next tick
	// re-derives sla_due_at from the new settings.
	m.at(2*time.Minute, sla, inbound("still there?"))
	tighter := Settings{SLAFirstResponse: 5 * time.Second}
	m.at(2*time.Minute+time.Second, tighter, tickCmd())
	if s := m.s.Summary; s.SLADueAt == nil || !s.SLADueAt.Equal(s.WaitingSince.Add(5*time.Second)) || s.SLABreached {
		t.Fatalf("after a settings change: due %v, breached %v", s.SLADueAt, s.SLABreached)
	}
}

func TestSnoozeValidation(t *testing.T) {
	pending, open := StatusPending, StatusOpen
	m := newMachine(t)
	m.run(inbound("hi"))
	for name, cmd := range map[string]Command{
		"not pending":       snooze(nil, m.now.Add(time.Hour)),
		"to open":           snooze(&open, m.now.Add(time.Hour)),
		"in the past":       snooze(&pending, m.now.Add(-time.Hour)),
		"over a year ahead": snooze(&pending, m.now.Add(MaxSnooze+time.Hour)),
	} {
		if _, err := Decide(m.s, cmd, m.now, m.newID); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	until := m.now.Add(time.Hour)
	m.at(0, Settings{}, snooze(&pending, until))
	if s := m.s.Summary; s.Status != StatusPending || s.SnoozeUntil == nil || !s.SnoozeUntil.Equal(until) {
		t.Fatalf("status %s, snooze %v", s.Status, s.SnoozeUntil)
	}
	// On a pending conversation the snooze alone is accepted.
	later := until.Add(time.Hour)
	m.at(0, Settings{}, snooze(nil, later))
	if !m.s.Summary.SnoozeUntil.Equal(later) {
		t.Fatalf("snooze %v, want %v", m.s.Summary.SnoozeUntil, later)
	}
	// Any other status change clears it.
	m.at(0, Settings{}, update(Change{Status: &open}))
	if m.s.Summary.SnoozeUntil != nil {
		t.Fatalf("snooze %v after reopening", m.s.Summary.SnoozeUntil)
	}
}

func TestReplyIfVersion(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hi"))
	v := m.s.Version()
	m.run(inbound("one more thing"))
	cmd := reply("answer", KindMessage)
	cmd.Reply.IfVersion = &v
	if _, err := m.decide(cmd); !errors.Is(err, ErrConflict) {
		t.Fatalf("reply with a stale if_version: err %v, want ErrConflict", err)
	}
	cur := m.s.Version()
	cmd.Reply.IfVersion = &cur
	m.run(cmd)
}

func TestNextDue(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := base.Add(d); return &v }
	st := Settings{AutoCloseAfter: time.Hour}
	cases := []struct {
		name string
		sum  Summary
		want *time.Time
	}{
		{"open: auto-close", Summary{Status: StatusOpen, LastActivityAt: base, Addressed: true}, at(time.Hour)},
		{"closed: nothing", Summary{Status: StatusClosed, LastActivityAt: base, SLADueAt: at(time.Minute)}, nil},
		{"pending: the snooze", Summary{Status: StatusPending, LastActivityAt: base, Addressed: true, SnoozeUntil: at(2 * time.Hour)}, at(2 * time.Hour)},
		{"pending without snooze: nothing", Summary{Status: StatusPending, LastActivityAt: base, Addressed: true}, nil},
		{"SLA sooner than auto-close", Summary{Status: StatusNew, LastActivityAt: base, SLADueAt: at(time.Minute)}, at(time.Minute)},
		{"breached SLA is not armed", Summary{Status: StatusNew, LastActivityAt: base, SLADueAt: at(time.Minute), SLABreached: true}, at(time.Hour)},
	}
	for _, tc := range cases {
		if got := (&State{Summary: tc.sum}).timersDue(st); !sameTime(got, tc.want) {
			t.Errorf("%s: NextDue %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestShouldAutoAssign(t *testing.T) {
	rr := Settings{AutoAssign: AutoAssignRoundRobin}
	m := newMachine(t)
	prev := m.s.Summary
	ev := m.run(inbound("hi"))
	if !ShouldAutoAssign(&prev, &m.s.Summary, ev, rr) {
		t.Fatal("a new conversation is not auto-assigned")
	}
	if ShouldAutoAssign(&prev, &m.s.Summary, ev, Settings{}) {
		t.Fatal("auto-assigned with auto_assign none")
	}
	prev = m.s.Summary
	ev = m.run(inbound("again"))
	if ShouldAutoAssign(&prev, &m.s.Summary, ev, rr) {
		t.Fatal("a conversation already waiting is assigned again")
	}
	closed := StatusClosed
	m.run(update(Change{Status: &closed}))
	prev = m.s.Summary
	ev = m.run(inbound("reopen"))
	if !ShouldAutoAssign(&prev, &m.s.Summary, ev, rr) {
		t.Fatal("a conversation reopened by the contact is not assigned")
	}
}

// TestSLAEndsWithTheWait: a closed conversation is in no SLA (due and breach
// cleared), and a longer SLA than the one it breached undoes the breach
// while the new due time is ahead.
func TestSLAEndsWithTheWait(t *testing.T) {
	sla := Settings{SLAFirstResponse: time.Minute}
	m := newMachine(t)
	m.at(0, sla, inbound("hi"))
	waiting := *m.s.Summary.WaitingSince
	m.at(2*time.Minute, sla, tickCmd())
	if !m.s.Summary.SLABreached {
		t.Fatal("not breached a minute past due")
	}
	longer := Settings{SLAFirstResponse: time.Hour}
	m.at(3*time.Minute, longer, tickCmd())
	if s := m.s.Summary; s.SLABreached || s.SLADueAt == nil || !s.SLADueAt.Equal(waiting.Add(time.Hour)) {
		t.Fatalf("after a longer SLA: breached %v, due %v; want not breached, due %v", s.SLABreached, s.SLADueAt, waiting.Add(time.Hour))
	}
	m.at(2*time.Hour, longer, tickCmd())
	if !m.s.Summary.SLABreached {
		t.Fatal("not breached past the longer SLA's due time")
	}
	m.at(2*time.Hour, longer, update(Change{Status: ptr(StatusClosed)}))
	if s := m.s.Summary; s.SLADueAt != nil || s.SLABreached {
		t.Fatalf("closed: due %v, breached %v; want neither", s.SLADueAt, s.SLABreached)
	}
	// The contact writes again: the wait that began before goes on, and
	// its due time, passed while closed, is a breach in that same event
	// (no summary says past due and not breached).
	m.at(3*time.Hour, longer, inbound("still there?"))
	if s := m.s.Summary; s.SLADueAt == nil || !s.SLADueAt.Equal(waiting.Add(time.Hour)) || !s.SLABreached {
		t.Fatalf("reopened: due %v, breached %v; want %v, breached", s.SLADueAt, s.SLABreached, waiting.Add(time.Hour))
	}
}

// A tick that comes after both an SLA breach and an auto-close fell due (the
// node was down through both) breaches first, as its own event, and the
// close follows at the next tick; a close due before the breach simply
// closes.
func TestLateTickActsInDueOrder(t *testing.T) {
	both := Settings{AutoCloseAfter: 6 * time.Second, SLAFirstResponse: 3 * time.Second}
	m := newMachine(t)
	m.at(0, both, inbound("hi"))
	ev := m.at(10*time.Second, both, tickCmd())
	if s := m.s.Summary; ev == nil || !s.SLABreached || s.Status != StatusNew {
		t.Fatalf("first late tick: breached %v, status %s; want the breach alone", s.SLABreached, s.Status)
	}
	if due := m.s.NextDue(both, m.now.Add(10*time.Second)); due == nil || due.After(m.now.Add(10*time.Second)) {
		t.Fatalf("next due %v: the close must still be due", due)
	}
	m.at(10*time.Second, both, tickCmd())
	if s := m.s.Summary; s.Status != StatusClosed {
		t.Fatalf("second tick: status %s, want closed", s.Status)
	}

	closeFirst := Settings{AutoCloseAfter: 3 * time.Second, SLAFirstResponse: 6 * time.Second}
	m = newMachine(t)
	m.at(0, closeFirst, inbound("hi"))
	m.at(10*time.Second, closeFirst, tickCmd())
	if s := m.s.Summary; s.Status != StatusClosed || s.SLABreached {
		t.Fatalf("close due first: status %s, breached %v; want closed at once, no breach", s.Status, s.SLABreached)
	}
}

// TestReopeningRestartsTheIdleClock: a snooze that wakes, or an agent
// reopening a closed conversation, starts auto-close's idle time again:
// the conversation is not closed the moment it reopens.
func TestReopeningRestartsTheIdleClock(t *testing.T) {
	ac := Settings{AutoCloseAfter: time.Hour}
	m := newMachine(t)
	m.at(0, ac, inbound("hi"))
	until := m.now.Add(5 * time.Hour)
	m.at(time.Minute, ac, snooze(ptr(StatusPending), until))
	m.at(5*time.Hour, ac, tickCmd())
	if m.s.Summary.Status != StatusOpen {
		t.Fatalf("status %s after the snooze, want open", m.s.Summary.Status)
	}
	if due := m.s.NextDue(ac, m.now.Add(5*time.Hour)); due == nil || !due.Equal(until.Add(time.Hour)) {
		t.Fatalf("next due %v, want an hour after the wake, %v", due, until.Add(time.Hour))
	}
	if ev := m.at(5*time.Hour+time.Second, ac, tickCmd()); ev != nil {
		t.Fatalf("a tick right after the wake decided %+v", ev)
	}
	m.at(6*time.Hour, ac, tickCmd())
	if m.s.Summary.Status != StatusClosed {
		t.Fatalf("status %s an idle hour after the wake, want closed", m.s.Summary.Status)
	}
	m.at(30*time.Hour, ac, update(Change{Status: ptr(StatusOpen)}))
	if ev := m.at(30*time.Hour+time.Second, ac, tickCmd()); ev != nil || m.s.Summary.Status != StatusOpen {
		t.Fatalf("reopened by an agent, then closed at once: %+v", ev)
	}
	m.at(31*time.Hour, ac, tickCmd())
	if m.s.Summary.Status != StatusClosed {
		t.Fatalf("status %s an idle hour after the reopening, want closed", m.s.Summary.Status)
	}
}
