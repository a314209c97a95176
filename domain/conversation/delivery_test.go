package conversation

import (
	"errors"
	"testing"
)

func TestAdvance(t *testing.T) {
	const (
		P = DeliveryPending
		Q = DeliveryQueued
		S = DeliverySent
		D = DeliveryDelivered
		F = DeliveryFailed
		U = DeliveryUndelivered
	)
	cases := []struct {
		cur, next, want DeliveryStatus
		changed         bool
	}{
		{P, Q, Q, true}, {P, S, S, true}, {P, D, D, true}, {P, F, F, true}, {P, U, U, true},
		{Q, S, S, true}, {Q, D, D, true}, {Q, F, F, true}, {Q, Q, Q, false},
		{S, Q, S, false}, {S, S, S, false}, {S, D, D, true}, {S, U, U, true},
		// Final statuses stay.
		{D, S, D, false}, {D, F, D, false}, {D, D, D, false},
		{F, Q, F, false}, {F, D, F, false}, {F, U, F, false},
		{U, F, U, false}, {U, S, U, false},
		// pending cannot be reported, nor anything unknown.
		{Q, P, Q, false}, {S, "bounced", S, false},
		// An item stored before statuses existed counts as pending.
		{"", S, S, true},
	}
	for _, c := range cases {
		got, changed := Advance(c.cur, c.next)
		if got != c.want || changed != c.changed {
			t.Errorf("Advance(%q, %q) = %q, %v; want %q, %v", c.cur, c.next, got, changed, c.want, c.changed)
		}
	}
}

func status(cur *Item, s DeliveryStatus) Command {
	id := ""
	if cur != nil {
		id = cur.ID
	}
	return Command{AccountID: acct, InboxID: inbx, Status: &StatusCommand{MessageID: id, Status: s, Current: cur}}
}

func TestDeliveryStatusUpdatesItemInPlace(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hi"))
	rep := m.run(reply("hello there", KindMessage)).Item
	if rep.Status != DeliveryPending {
		t.Fatalf("new outbound message status %q, want pending", rep.Status)
	}
	note := m.run(reply("internal", KindNote)).Item
	if note.Status != "" {
		t.Fatalf("a note has no delivery status, got %q", note.Status)
	}
	before := m.s.Summary

	// delivered before sent, sent twice, queued after delivered: one event
	// per real change, and the item ends at the furthest status.
	cur := rep
	events := 0
	for _, s := range []DeliveryStatus{DeliveryQueued, DeliveryDelivered, DeliverySent, DeliverySent, DeliveryQueued, DeliveryFailed} {
		ev, err := m.decide(status(cur, s))
		if err != nil {
			t.Fatalf("report %s: %v", s, err)
		}
		if ev == nil {
			continue
		}
		events++
		if ev.Type != EventMessageStatus || ev.Item.Seq != rep.Seq || ev.Item.ID != rep.ID || ev.Item.Status != s {
			t.Fatalf("report %s: event %+v item %+v", s, ev, ev.Item)
		}
		m.apply(ev)
		cur = ev.Item
	}
	if events != 2 || cur.Status != DeliveryDelivered {
		t.Fatalf("%d events, status %q; want 2 events (queued, delivered) ending delivered", events, cur.Status)
	}
	after := m.s.Summary
	if after.Version != before.Version+2 || !after.LastActivityAt.Equal(before.LastActivityAt) || after.LastMessage.ID != before.LastMessage.ID {
		t.Fatalf("a status change bumps the version only: before %+v after %+v", before, after)
	}

	// Errors: a note, an inbound message, a missing item, a bad status.
	in := &Item{ID: "x", Direction: Inbound, Kind: KindMessage}
	for name, cmd := range map[string]Command{
		"note": status(note, DeliverySent), "inbound": status(in, DeliverySent), "missing": status(nil, DeliverySent),
	} {
		if _, err := m.decide(cmd); !errors.Is(err, ErrMessageNotFound) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err %v, want ErrMessageNotFound", name, err)
		}
	}
	if _, err := m.decide(status(cur, DeliveryPending)); !errors.Is(err, ErrInvalid) {
		t.Errorf("reporting pending: err %v, want ErrInvalid", err)
	}
	// A report naming another id than the loaded item is not that item.
	wrong := status(cur, DeliverySent)
	wrong.Status.MessageID = "other"
	if _, err := m.decide(wrong); !errors.Is(err, ErrMessageNotFound) {
		t.Errorf("mismatched id: err %v", err)
	}
}

func TestDeliveryStatusKeepsErrorDetails(t *testing.T) {
	m := newMachine(t)
	m.run(inbound("hi"))
	rep := m.run(reply("hello", KindMessage)).Item
	cmd := status(rep, DeliveryUndelivered)
	cmd.Status.ErrorCode, cmd.Status.ProviderMessageID = "30003", "SM123"
	ev := m.run(cmd)
	if ev.Item.ErrorCode != "30003" || ev.Item.ProviderMessageID != "SM123" || ev.Item.Status != DeliveryUndelivered {
		t.Fatalf("item %+v", ev.Item)
	}
}
