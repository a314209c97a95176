package persistence

import (
	"context"
	"testing"
)

func TestIsInboxAgent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	acc, _, err := s.CreateAccount(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateAccount(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	ib1, err := s.CreateInbox(ctx, acc.ID, "one", "")
	if err != nil {
		t.Fatal(err)
	}
	ib2, err := s.CreateInbox(ctx, acc.ID, "two", "")
	if err != nil {
		t.Fatal(err)
	}
	ibOther, err := s.CreateInbox(ctx, other.ID, "theirs", "")
	if err != nil {
		t.Fatal(err)
	}
	ag, _, err := s.CreateAgent(ctx, acc.ID, "Ann", "ann@example.com", []string{ib1.ID})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := s.CreateAgent(ctx, other.ID, "Bob", "bob@example.com", []string{ibOther.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		inbox, agent string
		want         bool
	}{
		{ib1.ID, ag.ID, true},
		{ib2.ID, ag.ID, false},      // same account, not a member
		{ib1.ID, foreign.ID, false}, // another account's agent
		{ib1.ID, "ag_nope", false},
	} {
		got, err := s.IsInboxAgent(ctx, c.inbox, c.agent)
		if err != nil || got != c.want {
			t.Errorf("IsInboxAgent(%s, %s) = %v, %v; want %v", c.inbox, c.agent, got, err, c.want)
		}
	}
}
