package persistence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAPIKeysAndRevocationNotices(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	// A follower sees the notices of revocations committed by anyone.
	got := make(chan Revocation, 10)
	resynced := make(chan struct{}, 10)
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = s.FollowRevocations(fctx, func(r Revocation) { got <- r }, func(context.Context) { resynced <- struct{}{} })
	})
	defer func() { stop(); wg.Wait() }()
	select {
	case <-resynced: // listening now
	case <-time.After(10 * time.Second):
		t.Fatal("the follower never started listening")
	}

	acc, first, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, first)
	if err != nil || p.CredentialID != acc.APIKeyID || p.AccountID != acc.ID {
		t.Fatalf("first key: %+v %v, want credential %s", p, err, acc.APIKeyID)
	}
	k2, second, err := s.CreateAPIKey(ctx, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListAPIKeys(ctx, acc.ID)
	if err != nil || len(keys) != 2 || keys[0].ID != acc.APIKeyID || keys[1].ID != k2.ID {
		t.Fatalf("keys %+v %v", keys, err)
	}
	other, _, err := s.CreateAccount(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAPIKey(ctx, other.ID, acc.APIKeyID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting another account's key: %v, want ErrNotFound", err)
	}
	if err := s.DeleteAPIKey(ctx, acc.ID, acc.APIKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, first); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("deleted key authenticates: %v", err)
	}
	if live, err := s.CredentialLive(ctx, acc.APIKeyID); err != nil || live {
		t.Fatalf("deleted key live=%v %v", live, err)
	}
	if _, err := s.Authenticate(ctx, second); err != nil {
		t.Fatalf("the other key stopped working: %v", err)
	}
	select {
	case r := <-got:
		if r != (Revocation{AccountID: acc.ID, CredentialID: acc.APIKeyID}) {
			t.Fatalf("notice %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice of the deleted key")
	}
}

func TestAgentTokensAndDeletion(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	acc, _, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.CreateInbox(ctx, acc.ID, "Support", "")
	if err != nil {
		t.Fatal(err)
	}
	ann, tok1, err := s.CreateAgent(ctx, acc.ID, "Ann", "ann@example.com", []string{in.ID})
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := s.CreateAgent(ctx, acc.ID, "Bob", "bob@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := s.CreateAgentToken(ctx, acc.ID, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	p1, err1 := s.Authenticate(ctx, tok1)
	p2, err2 := s.Authenticate(ctx, tok2)
	if err1 != nil || err2 != nil || p1.AgentID != ann.ID || p2.AgentID != ann.ID || p1.CredentialID == p2.CredentialID {
		t.Fatalf("two tokens of one agent: %+v %v / %+v %v", p1, err1, p2, err2)
	}
	if all, err := s.ListAgents(ctx, acc.ID, ""); err != nil || len(all) != 2 || all[0].ID != ann.ID || all[1].ID != bob.ID {
		t.Fatalf("agents %+v %v", all, err)
	}
	if one, err := s.ListAgents(ctx, acc.ID, bob.ID); err != nil || len(one) != 1 || one[0].ID != bob.ID {
		t.Fatalf("only bob: %+v %v", one, err)
	}

	other, _, err := s.CreateAccount(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"token":  func() error { _, err := s.CreateAgentToken(ctx, other.ID, ann.ID); return err }(),
		"revoke": s.RevokeAgentTokens(ctx, other.ID, ann.ID),
		"delete": s.DeleteAgent(ctx, other.ID, ann.ID),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s across accounts: %v, want ErrNotFound", name, err)
		}
	}

	if err := s.RevokeAgentTokens(ctx, acc.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{tok1, tok2} {
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("revoked token authenticates: %v", err)
		}
	}
	tok3, err := s.CreateAgentToken(ctx, acc.ID, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := s.Authenticate(ctx, tok3)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, acc.ID, ann.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok3); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("deleted agent's token authenticates: %v", err)
	}
	if live, err := s.CredentialLive(ctx, p3.CredentialID); err != nil || live {
		t.Fatalf("deleted agent's token live=%v %v", live, err)
	}
	if all, err := s.ListAgents(ctx, acc.ID, ""); err != nil || len(all) != 1 || all[0].ID != bob.ID {
		t.Fatalf("agents after delete %+v %v", all, err)
	}
	var members int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM agent_inboxes WHERE agent_id = $1`, ann.ID).Scan(&members); err != nil || members != 0 {
		t.Fatalf("deleted agent keeps %d inbox memberships (%v)", members, err)
	}
	if _, err := s.CreateAgentToken(ctx, acc.ID, ann.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token for a deleted agent: %v", err)
	}
	if err := s.DeleteAgent(ctx, acc.ID, ann.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

// BenchmarkAuthenticate is the cost of not caching credentials: one lookup
// per request.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	acc, key, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		b.Fatal(err)
	}
	in, err := s.CreateInbox(ctx, acc.ID, "Support", "")
	if err != nil {
		b.Fatal(err)
	}
	_, token, err := s.CreateAgent(ctx, acc.ID, "Ann", "ann@example.com", []string{in.ID})
	if err != nil {
		b.Fatal(err)
	}
	for name, secret := range map[string]string{"api key": key, "agent token": token} {
		b.Run(name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Authenticate(ctx, secret); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
