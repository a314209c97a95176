package actors

import (
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/domain/conversation"
)

// summaryFields carries s to the inbox as fields (SummaryChanged.summary).
// Within a node the message itself is handed over, so it shares nothing
// with s.
func summaryFields(s *conversation.Summary) *actorpb.SummaryFields {
	f := &actorpb.SummaryFields{
		Id: s.ID, AccountId: s.AccountID, InboxId: s.InboxID,
		Contact: &actorpb.SummaryContact{Id: s.Contact.ID, Phone: s.Contact.Phone, Email: s.Contact.Email,
			Handle: s.Contact.Handle, Name: s.Contact.Name, OptedOut: s.Contact.OptedOut},
		Status: string(s.Status), Addressed: s.Addressed, Tags: slices.Clone(s.Tags),
		Channel: string(s.Channel), LastActivityAt: nanos(s.LastActivityAt), WaitingSince: nanosOf(s.WaitingSince),
		UnreadCount: s.UnreadCount, Version: s.Version, SnoozeUntil: nanosOf(s.SnoozeUntil),
		SlaDueAt: nanosOf(s.SLADueAt), SlaBreached: s.SLABreached,
	}
	if s.AssigneeID != nil {
		a := *s.AssigneeID
		f.AssigneeId = &a
	}
	if m := s.LastMessage; m != nil {
		f.LastMessage = &actorpb.SummaryLastMessage{Id: m.ID, Seq: m.Seq, Direction: string(m.Direction),
			Kind: string(m.Kind), Body: m.Body, CreatedAt: nanos(m.CreatedAt)}
	}
	if c := s.ActiveCall; c != nil {
		f.ActiveCall = &actorpb.SummaryActiveCall{CallId: c.CallID, State: string(c.State)}
	}
	return f
}

// summaryOf is summaryFields' inverse. The summary shares nothing with f;
// its Tags are never nil (an empty list arrives from another node as nil).
func summaryOf(f *actorpb.SummaryFields) conversation.Summary {
	s := conversation.Summary{
		ID: f.Id, AccountID: f.AccountId, InboxID: f.InboxId,
		Status: conversation.Status(f.Status), Addressed: f.Addressed, Tags: append([]string{}, f.Tags...),
		Channel: conversation.Channel(f.Channel), LastActivityAt: timeOf(f.LastActivityAt), WaitingSince: timePtr(f.WaitingSince),
		UnreadCount: f.UnreadCount, Version: f.Version, SnoozeUntil: timePtr(f.SnoozeUntil),
		SLADueAt: timePtr(f.SlaDueAt), SLABreached: f.SlaBreached,
	}
	if f.AssigneeId != nil {
		a := *f.AssigneeId
		s.AssigneeID = &a
	}
	if c := f.Contact; c != nil {
		s.Contact = conversation.Contact{ID: c.Id, Phone: c.Phone, Email: c.Email, Handle: c.Handle, Name: c.Name, OptedOut: c.OptedOut}
	}
	if m := f.LastMessage; m != nil {
		s.LastMessage = &conversation.LastMessage{ID: m.Id, Seq: m.Seq, Direction: conversation.Direction(m.Direction),
			Kind: conversation.ItemKind(m.Kind), Body: m.Body, CreatedAt: timeOf(m.CreatedAt)}
	}
	if c := f.ActiveCall; c != nil {
		s.ActiveCall = &conversation.ActiveCall{CallID: c.CallId, State: conversation.CallState(c.State)}
	}
	return s
}

// Times cross as Unix nanoseconds in UTC, 0 for the zero time (whose
// nanoseconds do not fit an int64); summaries hold UTC times.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosOf(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return nanos(*t)
}

func timeOf(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func timePtr(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := timeOf(n)
	return &t
}
