package conversation

import (
	"fmt"
	"time"
)

// Automation: auto-close, snooze, the first-response SLA and round-robin
// (docs/api.md "Automation"). Time is state here (docs/architecture.md, invariant 13): the
// snooze and SLA fields live in the summary, the next due time derives from
// the summary and the inbox's settings (NextDue), and a timer firing is a
// tick command whose decision depends only on the state, the settings and
// the time, so a late, repeated or redelivered tick is harmless.

// ActorAutomation is the actor id of the events timers and round-robin make.
const ActorAutomation = "automation"

// AutoAssign is an inbox's assignment policy.
type AutoAssign string

const (
	AutoAssignNone       AutoAssign = "none"
	AutoAssignRoundRobin AutoAssign = "round_robin"
)

// Valid reports whether a is one of the API's policies.
func (a AutoAssign) Valid() bool { return a == AutoAssignNone || a == AutoAssignRoundRobin }

// Settings are an inbox's automation settings; a zero duration is off.
type Settings struct {
	AutoCloseAfter   time.Duration
	SLAFirstResponse time.Duration
	AutoAssign       AutoAssign
}

// MaxSnooze is how far ahead snooze_until may be.
const MaxSnooze = 365 * 24 * time.Hour

// TickCommand wakes a conversation for its due times: Decide closes,
// reopens or marks the SLA breached, whichever is due at now.
type TickCommand struct{}

// SnoozeRequest sets snooze_until to Until, or clears it when Until is nil.
type SnoozeRequest struct {
	Until *time.Time
}

// Timers are the summary's automation fields after an event. An event
// carries them only when they change, and always all three, so Apply needs
// neither the settings nor the clock: replaying the journal gives the same
// state whatever the settings are by then.
type Timers struct {
	SnoozeUntil *time.Time `json:"snooze_until,omitempty"`
	SLADueAt    *time.Time `json:"sla_due_at,omitempty"`
	SLABreached bool       `json:"sla_breached,omitempty"`
}

func validateSnooze(s *State, c *UpdateCommand, now time.Time) error {
	if c.Snooze == nil || c.Snooze.Until == nil {
		return nil
	}
	pending := s.Summary.Status == StatusPending
	if c.Status != nil {
		pending = *c.Status == StatusPending
	}
	if !pending {
		return fmt.Errorf("%w: snooze_until needs status pending", ErrInvalid)
	}
	u := *c.Snooze.Until
	if !u.After(now) {
		return fmt.Errorf("%w: snooze_until must be in the future", ErrInvalid)
	}
	if u.After(now.Add(MaxSnooze)) {
		return fmt.Errorf("%w: snooze_until must be at most one year ahead", ErrInvalid)
	}
	return nil
}

// decideTick is the status change due at now: a snoozed conversation wakes,
// an idle one closes. The SLA breach is decided with the other timers in
// finishTimers.
func decideTick(s *State, st Settings, now time.Time) *Change {
	sum := &s.Summary
	var to Status
	var at time.Time // when the status change fell due
	switch {
	case sum.Status == StatusPending && sum.SnoozeUntil != nil && !now.Before(*sum.SnoozeUntil):
		to, at = StatusOpen, *sum.SnoozeUntil
	case autoCloseArmed(sum, st) && !now.Before(s.idleSince().Add(st.AutoCloseAfter)):
		to, at = StatusClosed, s.idleSince().Add(st.AutoCloseAfter)
	default:
		return &Change{}
	}
	// Timers act in the order they fell due. A tick late enough to find
	// both (the node was down through them) records an earlier breach
	// first, on its own, and leaves the status change due for the next
	// tick: closing first would clear the breach before it ever happened.
	if sla := st.SLAFirstResponse; sla > 0 && !sum.SLABreached && !sum.Addressed && sum.WaitingSince != nil &&
		sum.Status != StatusClosed && sum.WaitingSince.Add(sla).Before(at) {
		return &Change{}
	}
	return &Change{Status: &to}
}

func autoCloseArmed(sum *Summary, st Settings) bool {
	return st.AutoCloseAfter > 0 && sum.Status != StatusClosed && sum.Status != StatusPending
}

// idleSince is when the conversation's idle time for auto-close began: its
// last activity, or its reopening if that came later.
func (s *State) idleSince() time.Time {
	if s.ReopenedAt.After(s.Summary.LastActivityAt) {
		return s.ReopenedAt
	}
	return s.Summary.LastActivityAt
}

// finishTimers sets ev.Timers to the snooze and SLA fields the state after
// ev must have under the command's settings, if they differ from what it
// would otherwise keep (after: the summary ev alone would leave).
func finishTimers(ev *Event, after *Summary, cmd Command, now time.Time) {
	var want Timers
	// Any status but pending clears the snooze.
	if after.Status == StatusPending {
		want.SnoozeUntil = cloneTime(after.SnoozeUntil)
		if cmd.Update != nil && cmd.Update.Snooze != nil {
			want.SnoozeUntil = cloneTime(cmd.Update.Snooze.Until)
		}
	}
	// The SLA runs while the conversation, not closed, waits for the team;
	// addressing or closing it (or turning the SLA off) clears both fields.
	// A breach is the due time having passed, whichever event finds it so
	// (a reopening whose wait began long ago breaches at once); one the
	// settings moved into the future (a longer SLA) is no breach.
	if sla := cmd.Settings.SLAFirstResponse; sla > 0 && !after.Addressed && after.WaitingSince != nil && after.Status != StatusClosed {
		due := after.WaitingSince.Add(sla)
		want.SLADueAt = &due
		want.SLABreached = !now.Before(due)
	}
	if !sameTime(after.SnoozeUntil, want.SnoozeUntil) || !sameTime(after.SLADueAt, want.SLADueAt) ||
		after.SLABreached != want.SLABreached {
		ev.Timers = &want
	}
}

func applyTimers(sum *Summary, t *Timers) {
	sum.SnoozeUntil, sum.SLADueAt, sum.SLABreached = cloneTime(t.SnoozeUntil), cloneTime(t.SLADueAt), t.SLABreached
}

// timersDue is the earliest time a tick has something to decide for the
// conversation's timers under these settings, nil when nothing is armed.
func (s *State) timersDue(st Settings) *time.Time {
	sum := &s.Summary
	var due *time.Time
	consider := func(t time.Time) {
		if due == nil || t.Before(*due) {
			due = &t
		}
	}
	switch {
	case sum.Status == StatusClosed:
		return nil
	case sum.Status == StatusPending && sum.SnoozeUntil != nil:
		consider(*sum.SnoozeUntil)
	case autoCloseArmed(sum, st):
		consider(s.idleSince().Add(st.AutoCloseAfter))
	}
	if sum.SLADueAt != nil && !sum.SLABreached && !sum.Addressed {
		consider(*sum.SLADueAt)
	}
	return due
}

// ShouldAutoAssign reports whether the event that turned prev into next
// makes round-robin assign the conversation: the contact reached out
// (inbound message or new call) and the conversation started waiting while
// unassigned — it is new, or it was addressed, closed or pending before.
func ShouldAutoAssign(prev, next *Summary, ev *Event, st Settings) bool {
	if st.AutoAssign != AutoAssignRoundRobin || (ev.Type != EventInbound && ev.Type != EventCall) {
		return false
	}
	if next.AssigneeID != nil || next.Addressed || next.WaitingSince == nil || next.Status == StatusClosed {
		return false
	}
	return prev.Version == 0 || prev.WaitingSince == nil || prev.Status == StatusClosed || prev.Status == StatusPending
}

func (c *Change) empty() bool {
	return c == nil || (c.Status == nil && c.Addressed == nil && c.AssigneeID == nil && c.TagsAdd == nil && c.TagsRemove == nil)
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
