package persistence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
)

// followRevocations runs s.FollowRevocations until the returned stop is
// called, once it listens.
func followRevocations(tb testing.TB, s *Store) (stop func()) {
	tb.Helper()
	hub := listentest.Run(tb, s.Pool())
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = s.FollowRevocations(ctx, hub, func(Revocation) {}, func(context.Context) {
			select {
			case listening <- struct{}{}:
			default:
			}
		})
	})
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		tb.Fatal("the follower never started listening")
	}
	return func() { cancel(); wg.Wait() }
}

// TestCachedCredentialsFollowRevocations: a node that follows revocations
// answers from its cache — a key whose row vanished without a notice still
// works there (which is what proves the cache) — and forgets it at once when
// it revokes the key itself, or when another node's notice arrives.
func TestCachedCredentialsFollowRevocations(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	defer followRevocations(t, s)()
	other, err := Open(ctx, s.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	defer followRevocations(t, other)()

	acc, key, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET key_hash = 'x' WHERE id = $1`, acc.APIKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Fatalf("a cached key failed: %v", err)
	}
	if _, err := other.Authenticate(ctx, key); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("uncached on the other node: %v, want ErrUnauthorized", err)
	}

	// Revoked on the other node: it returns once both nodes acknowledged
	// the notice, so this node's cache has forgotten the key by then.
	k2, second, err := s.CreateAPIKey(ctx, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Store{s, other} {
		if _, err := n.Authenticate(ctx, second); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.DeleteAPIKey(ctx, acc.ID, k2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(ctx, second); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoking node: %v, want ErrUnauthorized at once", err)
	}
	if _, err := s.Authenticate(ctx, second); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the other node right after the revocation returned: %v, want ErrUnauthorized", err)
	}
}

func TestAPIKeysAndRevocationNotices(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	// A follower sees the notices of revocations committed by anyone.
	got := make(chan Revocation, 10)
	resynced := make(chan struct{}, 10)
	fctx, stop := context.WithCancel(ctx)
	hub := listentest.Run(t, s.Pool())
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = s.FollowRevocations(fctx, hub, func(r Revocation) { got <- r }, func(context.Context) { resynced <- struct{}{} })
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
		if r.ID == "" || r != (Revocation{ID: r.ID, AccountID: acc.ID, CredentialID: acc.APIKeyID}) {
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

// BenchmarkAuthenticate: a lookup per request (no listener, so nothing is
// cached) against the cache a following node uses.
func BenchmarkAuthenticate(b *testing.B) {
	s := newStore(b)
	b.Run("uncached", func(b *testing.B) { benchmarkAuthenticate(b, s) })
	following := followRevocations(b, s)
	b.Run("cached", func(b *testing.B) { benchmarkAuthenticate(b, s) })
	following()
}

func benchmarkAuthenticate(b *testing.B, s *Store) {
	ctx := context.Background()
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
