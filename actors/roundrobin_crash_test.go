package actors

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/timers"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
)

// runScanner runs a timer scanner waking conversations through n, until
// the test ends (before the node stops: cleanups run last first).
func runScanner(t *testing.T, n *tnode) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := timers.New(n.store.Pool(), listentest.Run(t, n.store.Pool()), func(ctx context.Context, d timers.Due) error {
		return n.engine.Tick(ctx, d.ConversationID, d.AccountID, d.InboxID, d.Now, d.SettingsVersion)
	}, timers.Config{}, testLogger(), nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// roundRobinInbox makes the tenant's inbox round-robin over one new agent
// with the given status, and returns the agent's id.
func roundRobinInbox(t *testing.T, n *tnode, tn tenantIDs, status string) string {
	t.Helper()
	ctx := context.Background()
	ag, _, err := n.store.CreateAgent(ctx, tn.account, "Ann", "ann@example.com", []string{tn.inbox})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.UpdateAgent(ctx, tn.account, ag.ID, persistence.AgentPatch{Status: &status}); err != nil {
		t.Fatal(err)
	}
	rr := string(conversation.AutoAssignRoundRobin)
	if _, _, err := n.engine.UpdateInbox(ctx, tn.account, tn.inbox, persistence.InboxPatch{AutoAssign: &rr}); err != nil {
		t.Fatal(err)
	}
	return ag.ID
}

func (n *tnode) summary(t *testing.T, tn tenantIDs, id string) conversation.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := n.engine.command(ctx, getCmd(tn, id))
	if err != nil {
		t.Fatal(err)
	}
	return decodeSummary(t, r.Summary)
}

// TestRoundRobinOwedAcrossCrash: the node dies after the contact's event
// committed and before round-robin's assignment (the fault drops the
// attempt, then the node stops). The committed state still owes the
// assignment and is due within AssignRetry, so on the next node the
// scanner's tick activates the conversation and it is assigned — once.
func TestRoundRobinOwedAcrossCrash(t *testing.T) {
	url := newDatabase(t)
	n1 := startNode(t, url, nil, Config{})
	tn := newTenantIDs(t, n1.store, "Crash")
	agent := roundRobinInbox(t, n1, tn, persistence.AgentAvailable)
	drop := func(string) bool { return true }
	n1.deps.assignmentFault.Store(&drop)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const phone = "+14155550123"
	id := convID(tn.inbox, phone)
	r, err := n1.engine.command(ctx, inboundCmd(tn, phone, "hello?", "in_1"))
	if err != nil {
		t.Fatal(err)
	}
	if s := decodeSummary(t, r.Summary); s.AssigneeID != nil || s.Version != 1 {
		t.Fatalf("after the contact's event: assignee %v at version %d, want none at 1", s.AssigneeID, s.Version)
	}
	var due *time.Time
	if err := n1.store.Pool().QueryRow(ctx, `SELECT due_at FROM conversations WHERE id = $1`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if due == nil || due.After(time.Now().Add(conversation.AssignRetry)) {
		t.Fatalf("due_at %v after the contact's event, want within %s", due, conversation.AssignRetry)
	}
	n1.node.Stop()
	journalCheck(t, n1.store, id, 1)

	n2 := startNode(t, url, nil, Config{})
	runScanner(t, n2)
	restarted := time.Now()
	var got conversation.Summary
	poll.Until(t, 10*time.Second, "the owed assignment after the restart", func() bool {
		var v int64
		if err := n2.store.Pool().QueryRow(ctx, `SELECT version FROM conversations WHERE id = $1`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v >= 2
	})
	t.Logf("assigned %s after the restart", time.Since(restarted).Round(time.Millisecond))
	got = n2.summary(t, tn, id)
	if got.AssigneeID == nil || *got.AssigneeID != agent {
		t.Fatalf("after the restart: assignee %v, want %s", got.AssigneeID, agent)
	}
	// Later ticks (a re-arm visits every open conversation) owe nothing:
	// the journal keeps exactly the message and the one assignment.
	sla := int64(3600)
	if _, _, err := n2.engine.UpdateInbox(ctx, tn.account, tn.inbox, persistence.InboxPatch{SLAFirstResponseS: &sla}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the re-arm's tick", func() bool { return n2.summary(t, tn, id).SLADueAt != nil })
	journalCheck(t, n2.store, id, 3)
	var actor string
	if err := n2.store.Pool().QueryRow(ctx, `SELECT event->>'actor_id' FROM journal WHERE conversation_id = $1 AND version = 2`, id).Scan(&actor); err != nil {
		t.Fatal(err)
	}
	if actor != conversation.ActorAutomation {
		t.Fatalf("the assignment is by %q, want %q", actor, conversation.ActorAutomation)
	}
}

// TestRoundRobinNobodyAvailableStays: with nobody available the
// conversation stays unassigned, and no later tick — a settings re-arm, an
// SLA breach — assigns it once an agent is back.
func TestRoundRobinNobodyAvailableStays(t *testing.T) {
	url := newDatabase(t)
	n := startNode(t, url, nil, Config{})
	runScanner(t, n)
	tn := newTenantIDs(t, n.store, "Nobody")
	agent := roundRobinInbox(t, n, tn, persistence.AgentAway)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const phone = "+14155550124"
	id := convID(tn.inbox, phone)
	if _, err := n.engine.command(ctx, inboundCmd(tn, phone, "hello?", "in_1")); err != nil {
		t.Fatal(err)
	}
	// Round-robin answered "nobody": no event, and the settled state is
	// kept in a snapshot of the same version.
	if s := n.summary(t, tn, id); s.Version != 1 || s.AssigneeID != nil {
		t.Fatalf("nobody available: version %d, assignee %v; want 1, none", s.Version, s.AssigneeID)
	}
	poll.Until(t, 10*time.Second, "a snapshot that owes nothing", func() bool {
		var owed *bool
		err := n.store.Pool().QueryRow(ctx, `SELECT (convert_from(state, 'UTF8')::jsonb->'assign_pending')::bool
			FROM snapshots WHERE conversation_id = $1 AND version = 1`, id).Scan(&owed)
		return err == nil && (owed == nil || !*owed)
	})
	available := persistence.AgentAvailable
	if _, err := n.store.UpdateAgent(ctx, tn.account, agent, persistence.AgentPatch{Status: &available}); err != nil {
		t.Fatal(err)
	}
	sla := int64(1)
	if _, _, err := n.engine.UpdateInbox(ctx, tn.account, tn.inbox, persistence.InboxPatch{SLAFirstResponseS: &sla}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the SLA to breach", func() bool { return n.summary(t, tn, id).SLABreached })
	s := n.summary(t, tn, id)
	if s.AssigneeID != nil {
		t.Fatalf("assigned to %s by a later tick after nobody was available", *s.AssigneeID)
	}
	// The re-arm's tick set the SLA (2), its breach came due (3).
	journalCheck(t, n.store, id, 3)
}
