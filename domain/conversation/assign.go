package conversation

import "time"

// Round-robin owed (docs/api.md "Automation", "Round-robin"). The assignment
// is a second event after the contact's: the inbox actor has to name the
// agent first. So that a node dying between the two cannot leave the
// conversation unassigned, the state itself records that an assignment is
// owed (State.AssignPending): the contact's event sets it, and it is cleared
// by the event that settles it — an assignment (by round-robin or anyone),
// or a reply or close that ends the wait — or by round-robin's "nobody is
// available" answer (NobodyAvailable). While it is set, NextDue keeps the
// conversation due within AssignRetry, and a tick asks for an assignee
// again. A tick on a
// conversation that owes nothing (a settings re-arm, an SLA or auto-close
// tick, a late or repeated one) never assigns it, so a conversation that
// found nobody available stays unassigned, as the API says.

// AssignRetry is how soon after the event that owes an assignment (or after
// an attempt that got no answer) the conversation falls due to try again.
const AssignRetry = 2 * time.Second

// AssignCommand is round-robin's answer for a conversation that owes an
// assignment: AgentID is the inbox's next available agent, or "" when
// nobody is available. Without an owed assignment it decides nothing, so a
// late or repeated answer is harmless.
type AssignCommand struct {
	AgentID string
}

func decideAssign(s *State, ev *Event, c *AssignCommand) (*Event, error) {
	if !s.Exists() {
		return nil, ErrNotFound
	}
	if !s.AssignPending {
		return nil, nil
	}
	if c.AgentID == "" {
		return nil, nil // nobody is available: see NobodyAvailable
	}
	id := c.AgentID
	ev.Type = EventUpdate
	ev.ActorID = ActorAutomation
	ev.Change = &Change{AssigneeID: &id}
	return ev, nil
}

// NobodyAvailable settles an owed assignment for which round-robin found no
// available agent, and reports whether one was owed. It is not an event:
// nothing the API shows changes, and a version that changes nothing would
// reach every watcher and webhook as an update and make a draft's
// if_version stale. The actor keeps the settled state in a snapshot; should
// that be lost, the assignment is owed again on the next activation and its
// tick asks the inbox once more.
func (s *State) NobodyAvailable() bool {
	if !s.AssignPending {
		return false
	}
	s.AssignPending = false
	return true
}

// finishAssign sets ev.AssignPending when the event changes whether an
// assignment is owed. Like Timers, the event carries the outcome, so replay
// never depends on the settings of the day (after: the summary ev leaves).
func finishAssign(s *State, ev *Event, after *Summary, cmd Command) {
	want := ShouldAutoAssign(&s.Summary, after, ev, cmd.Settings) ||
		(s.AssignPending && stillOwed(after, cmd))
	if want != s.AssignPending {
		ev.AssignPending = &want
	}
}

// stillOwed reports whether an owed assignment survives an event that left
// the conversation as sum: not once someone is assigned, the wait is over,
// round-robin was turned off, or round-robin answered.
func stillOwed(sum *Summary, cmd Command) bool {
	return cmd.Assign == nil && cmd.Settings.AutoAssign == AutoAssignRoundRobin &&
		sum.AssigneeID == nil && !sum.Addressed && sum.WaitingSince != nil && sum.Status != StatusClosed
}

// NextDue is the earliest time a tick has something to do for the
// conversation at now (the time of its latest event or tick): its timers
// and, while an assignment is owed, a retry of it within AssignRetry. It is
// stored with every event in the read model, where the timer scanner finds
// it.
func (s *State) NextDue(st Settings, now time.Time) *time.Time {
	due := s.timersDue(st)
	if s.AssignPending {
		if retry := now.Add(AssignRetry); due == nil || retry.Before(*due) {
			due = &retry
		}
	}
	return due
}
