package persistence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore returns a migrated, open store on a fresh database.
func newStore(t testing.TB) *Store {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestMigrateIsIdempotentAndRaceSafe(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	// Two "nodes" racing on a fresh database, then a third run on a migrated one.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = Migrate(ctx, url) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := Migrate(ctx, url); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, table := range []string{"journal", "conversations", "items", "conversation_heads", "idempotency_keys", "snapshots"} {
		var n int
		if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("table %s: %v", table, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAccountsInboxesAgentsAuth(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	acc, key, err := s.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "sk_") || len(key) < 3+52 {
		t.Fatalf("api key %q: want sk_ prefix and a 256-bit body", key)
	}
	other, otherKey, err := s.CreateAccount(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateAccount(ctx, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty account name: %v", err)
	}

	p, err := s.Authenticate(ctx, key)
	if err != nil || p.AccountID != acc.ID || p.AgentID != "" {
		t.Fatalf("authenticate key: %+v %v", p, err)
	}
	if p, err := s.Authenticate(ctx, otherKey); err != nil || p.AccountID != other.ID {
		t.Fatalf("authenticate other key: %+v %v", p, err)
	}

	in1, err := s.CreateInbox(ctx, acc.ID, "Support", "+15550001000")
	if err != nil {
		t.Fatal(err)
	}
	in2, err := s.CreateInbox(ctx, acc.ID, "Sales", "")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := s.CreateInbox(ctx, other.ID, "Theirs", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInbox(ctx, "acc_nope", "X", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inbox in unknown account: %v", err)
	}
	got, err := s.GetInbox(ctx, in1.ID)
	if err != nil || got != in1 {
		t.Fatalf("get inbox: %+v %v, want %+v", got, err, in1)
	}
	if _, err := s.GetInbox(ctx, "ib_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get unknown inbox: %v", err)
	}
	list, err := s.ListInboxes(ctx, acc.ID)
	if err != nil || len(list) != 2 || list[0].ID != in1.ID || list[1].ID != in2.ID {
		t.Fatalf("list inboxes: %+v %v", list, err)
	}

	// An inbox of another account makes the whole creation fail: no agent row.
	if _, _, err := s.CreateAgent(ctx, acc.ID, "Mallory", "m@example.com", []string{in1.ID, foreign.ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("agent with foreign inbox: %v", err)
	}
	if _, _, err := s.CreateAgent(ctx, acc.ID, "Mallory", "m@example.com", []string{"ib_nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("agent with unknown inbox: %v", err)
	}
	var agents int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM agents").Scan(&agents); err != nil || agents != 0 {
		t.Fatalf("agents after failed creations: %d %v", agents, err)
	}

	ag, token, err := s.CreateAgent(ctx, acc.ID, "Ann", "ann@example.com", []string{in1.ID, in1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "at_") || len(ag.InboxIDs) != 1 || ag.InboxIDs[0] != in1.ID {
		t.Fatalf("agent %+v token %q", ag, token)
	}
	p, err = s.Authenticate(ctx, token)
	if err != nil || p.AccountID != acc.ID || p.AgentID != ag.ID || len(p.InboxIDs) != 1 || p.InboxIDs[0] != in1.ID {
		t.Fatalf("authenticate agent: %+v %v", p, err)
	}
	if !p.CanUseInbox(acc.ID, in1.ID) || p.CanUseInbox(acc.ID, in2.ID) || p.CanUseInbox(other.ID, foreign.ID) {
		t.Fatalf("agent inbox access wrong: %+v", p)
	}
	// Cached answer is a copy: mutating it must not leak into the next one.
	p.InboxIDs[0] = "tampered"
	if p2, _ := s.Authenticate(ctx, token); p2.InboxIDs[0] != in1.ID {
		t.Fatalf("cache returned shared slice: %+v", p2)
	}

	for _, bad := range []string{"", "sk_", "garbage", key + "x", token[:len(token)-1] + "a", "at_" + strings.Repeat("a", 52)} {
		if bad == token {
			continue
		}
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("authenticate %q: %v, want ErrUnauthorized", bad, err)
		}
	}

	// Secrets are stored hashed: neither they nor their bodies appear anywhere.
	rows, err := s.Pool().Query(ctx, `SELECT t::text FROM api_keys t UNION ALL SELECT t::text FROM agent_tokens t
		UNION ALL SELECT encode(key_hash, 'escape') FROM api_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{key, token, otherKey} {
			if strings.Contains(row, secret[3:]) {
				t.Fatalf("secret stored in clear: %s", row)
			}
		}
	}
}

// testAppend builds an append of conversation conv at version v.
func testAppend(conv string, epoch, v int64, item *conversation.Item, keys ...IdempotencyKey) Append {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(v) * time.Second)
	sum := conversation.Summary{
		ID: conv, AccountID: "acc_t", InboxID: "ib_t",
		Contact: conversation.Contact{ID: "ct_" + conv, Handle: conv},
		Status:  conversation.StatusOpen, Channel: conversation.ChannelChat,
		Tags: []string{"vip", "t" + fmt.Sprint(v%3)}, LastActivityAt: at, Version: v,
	}
	ev := conversation.Event{Type: conversation.EventInbound, Version: v, At: at, Item: item}
	if item != nil {
		sum.LastMessage = &conversation.LastMessage{ID: item.ID, Seq: item.Seq, Direction: item.Direction, Kind: item.Kind, Body: item.Body, CreatedAt: at}
	}
	return Append{Epoch: epoch, Event: ev, Summary: sum, ContactKey: "handle:" + conv, Item: item, Keys: keys}
}

func message(seq int64, body string) *conversation.Item {
	return &conversation.Item{ID: fmt.Sprintf("msg_%d", seq), Seq: seq, Direction: conversation.Inbound,
		Kind: conversation.KindMessage, Channel: conversation.ChannelChat, Body: body,
		CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func TestReadModelVersionGuard(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	sum := testAppend("cv_guard", 1, 5, nil).Summary
	if ok, err := s.ApplySummary(ctx, sum, "handle:cv_guard"); err != nil || !ok {
		t.Fatalf("apply v5: %v %v", ok, err)
	}
	older := sum
	older.Version, older.Status = 3, conversation.StatusClosed
	if ok, err := s.ApplySummary(ctx, older, "handle:cv_guard"); err != nil || ok {
		t.Fatalf("apply v3 after v5: applied=%v %v", ok, err)
	}
	if ok, err := s.ApplySummary(ctx, sum, "handle:cv_guard"); err != nil || ok {
		t.Fatalf("re-apply v5: applied=%v %v", ok, err)
	}
	got, err := s.GetSummary(ctx, "cv_guard")
	if err != nil || got.Version != 5 || got.Status != conversation.StatusOpen {
		t.Fatalf("summary after stale apply: %+v %v", got, err)
	}
	acc, inbox, err := s.ConversationRef(ctx, "cv_guard")
	if err != nil || acc != "acc_t" || inbox != "ib_t" {
		t.Fatalf("ref: %s %s %v", acc, inbox, err)
	}
	if _, _, err := s.ConversationRef(ctx, "cv_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ref of unknown: %v", err)
	}
	if _, err := s.GetSummary(ctx, "cv_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("summary of unknown: %v", err)
	}

	// The writer's batch upsert applies the same guard: an append of a lower
	// version commits its journal row but leaves the newer read-model row.
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	newer := testAppend("cv_w", 1, 1, nil).Summary
	newer.Version = 9
	if _, err := s.ApplySummary(ctx, newer, "handle:cv_w"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Activate(ctx, "cv_w")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, testAppend("cv_w", a.Epoch, 1, nil)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSummary(ctx, "cv_w"); got.Version != 9 {
		t.Fatalf("writer overwrote newer read model: version %d", got.Version)
	}
}

func TestLoadInbox(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		sum := testAppend(fmt.Sprintf("cv_%d", i), 1, 1, nil).Summary
		sum.InboxID = "ib_load"
		sum.LastActivityAt = base.Add(time.Duration(i) * time.Minute)
		if i%2 == 0 {
			sum.Status = conversation.StatusClosed
		}
		if _, err := s.ApplySummary(ctx, sum, "handle:"+sum.ID); err != nil {
			t.Fatal(err)
		}
	}
	active, closed, total, err := s.LoadInbox(ctx, "ib_load", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 5 || total != 5 || len(closed) != 2 || closed[0].ID != "cv_8" || closed[1].ID != "cv_6" {
		t.Fatalf("active %d, closed %+v, total %d", len(active), closed, total)
	}
	for _, a := range active {
		if a.Status == conversation.StatusClosed || a.InboxID != "ib_load" {
			t.Fatalf("active contains %+v", a)
		}
	}
	if a, c, n, err := s.LoadInbox(ctx, "ib_empty", 10); err != nil || len(a)+len(c)+n != 0 {
		t.Fatalf("empty inbox: %v %v %d %v", a, c, n, err)
	}

	// Reconciling reads, of the conversations not closed or held, those
	// newer than held: cv_1 and cv_4 are held at their version; cv_9 is
	// held older; cv_2 is closed and held older; cv_6 is closed and not
	// held; cv_x is of another inbox.
	other := testAppend("cv_x", 1, 1, nil).Summary
	other.InboxID, other.Status = "ib_other", conversation.StatusClosed
	if _, err := s.ApplySummary(ctx, other, "handle:cv_x"); err != nil {
		t.Fatal(err)
	}
	held := map[string]int64{"cv_1": 1, "cv_2": 0, "cv_4": 1, "cv_9": 0, "cv_x": 0}
	rows, total, err := s.InboxChanges(ctx, "ib_load", held)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.ID)
	}
	slices.Sort(got)
	if want := []string{"cv_2", "cv_3", "cv_5", "cv_7", "cv_9"}; !slices.Equal(got, want) || total != 5 {
		t.Fatalf("InboxChanges: rows %v, closed %d; want %v, closed 5", got, total, want)
	}
}
