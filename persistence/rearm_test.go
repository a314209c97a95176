package persistence

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// settingsInbox makes an inbox that auto-closes after a day and returns
// it with the version of those settings.
func settingsInbox(t *testing.T, s *Store) (Inbox, int64) {
	t.Helper()
	ctx := context.Background()
	acc, _, err := s.CreateAccount(ctx, "Rearm")
	if err != nil {
		t.Fatal(err)
	}
	ib, err := s.CreateInbox(ctx, acc.ID, "Rearm inbox", "+14155550100")
	if err != nil {
		t.Fatal(err)
	}
	day := int64(24 * 3600)
	_, st, _, err := s.UpdateInbox(ctx, acc.ID, ib.ID, InboxPatch{AutoCloseAfterS: &day})
	if err != nil {
		t.Fatal(err)
	}
	return ib, st.Version
}

// dueAt is a conversation's stored due time.
func dueAt(t *testing.T, s *Store, id string) time.Time {
	t.Helper()
	var due time.Time
	if err := s.Pool().QueryRow(context.Background(), `SELECT due_at FROM conversations WHERE id = $1`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	return due
}

// A due time decided under an inbox's settings older than the ones it has
// when it is written is stored as now, so that the tick that follows
// decides again under the new settings; one decided under the current
// settings is stored as decided. For the writer's appends and for SetDue.
func TestDueDecidedUnderOldSettings(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	ib, v1 := settingsInbox(t, s)
	later := time.Now().Add(24 * time.Hour).Truncate(time.Microsecond)
	appendDue := func(id string, settingsVersion int64) {
		t.Helper()
		a := testAppend(id, claim(t, s, id), 1, nil)
		a.Summary.AccountID, a.Summary.InboxID = ib.AccountID, ib.ID
		a.DueAt, a.SettingsVersion = &later, settingsVersion
		if err := w.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	appendDue("cv_before", v1)
	if got := dueAt(t, s, "cv_before"); !got.Equal(later) {
		t.Fatalf("decided under the current settings: due %v, want %v", got, later)
	}

	hour := int64(3600)
	_, st, _, err := s.UpdateInbox(ctx, ib.AccountID, ib.ID, InboxPatch{AutoCloseAfterS: &hour})
	if err != nil {
		t.Fatal(err)
	}
	v2 := st.Version
	appendDue("cv_stale", v1)
	appendDue("cv_fresh", v2)
	now := time.Now()
	if got := dueAt(t, s, "cv_stale"); got.After(now) {
		t.Fatalf("append decided under settings %d of %d: due %v, want now", v1, v2, got)
	}
	if got := dueAt(t, s, "cv_fresh"); !got.Equal(later) {
		t.Fatalf("append decided under the current settings: due %v, want %v", got, later)
	}

	for _, c := range []struct {
		id              string
		settingsVersion int64
		stale           bool
	}{{"cv_before", v1, true}, {"cv_fresh", v2, false}} {
		if err := s.SetDue(ctx, c.id, 1, &later, c.settingsVersion); err != nil {
			t.Fatal(err)
		}
		if got := dueAt(t, s, c.id); c.stale && got.After(time.Now()) || !c.stale && !got.Equal(later) {
			t.Fatalf("SetDue of %s under settings %d of %d: due %v", c.id, c.settingsVersion, v2, got)
		}
	}
}

// A transaction that began before the settings changed may write a due
// time decided under the old ones without seeing the change (its statement
// started before it). RearmInbox waits for it to end, so the row it writes
// is re-armed too: here a conversation it creates, which no earlier scan
// could have found.
func TestRearmWaitsForRunningTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newStore(t)
	ib, v1 := settingsInbox(t, s)

	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	sum := testAppend("cv_inflight", 1, 1, nil).Summary
	sum.AccountID, sum.InboxID = ib.AccountID, ib.ID
	if _, err := tx.Exec(ctx, `INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed,
			channel, tags, last_activity_at, summary, due_at)
		VALUES ($1, $2, $3, 'handle:x', 1, 'open', true, 'chat', '{}', now(), '{}', now() + interval '1 day')`,
		sum.ID, sum.AccountID, sum.InboxID); err != nil {
		t.Fatal(err)
	}

	hour := int64(3600)
	if _, st, _, err := s.UpdateInbox(ctx, ib.AccountID, ib.ID, InboxPatch{AutoCloseAfterS: &hour}); err != nil || st.Version <= v1 {
		t.Fatalf("settings change: version %d, %v", st.Version, err)
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.RearmInbox(ctx, ib.ID, 100)
		done <- result{n, err}
	}()
	// Its polling of the running transactions shows in pg_stat_activity.
	poll.Until(t, 20*time.Second, "RearmInbox to wait for the open transaction", func() bool {
		var n int
		err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE '%virtualxid = ANY%' AND query NOT LIKE '%pg_stat_activity%'`).Scan(&n)
		return err == nil && n > 0
	})
	select {
	case r := <-done:
		t.Fatalf("RearmInbox returned (%d, %v) while a transaction it must wait for was open", r.n, r.err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n != 1 {
		t.Fatalf("RearmInbox: %d re-armed, %v; want 1", r.n, r.err)
	}
	if got := dueAt(t, s, "cv_inflight"); got.After(time.Now()) {
		t.Fatalf("the conversation the running transaction wrote is due %v, want now", got)
	}
}

// A row another transaction holds while the inbox is re-armed belongs to a
// transaction that began after the settings changed (RearmInbox waited for
// the earlier ones), which stores its due time itself; the re-arm skips it
// rather than waiting, since waiting took row locks in a cycle with the
// writer's batches and with concurrent re-arms, and PostgreSQL failed one
// side of each (seen as 503s on parallel settings changes).
func TestRearmSkipsRowsHeldByLaterTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newStore(t)
	ib, _ := settingsInbox(t, s)
	ids := []string{"cv_a", "cv_b", "cv_c"}
	for _, id := range ids {
		if _, err := s.Pool().Exec(ctx, `INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed,
			channel, tags, last_activity_at, summary, due_at)
		VALUES ($1, $2, $3, 'handle:' || $1, 1, 'open', true, 'chat', '{}', now(), '{}', now() + interval '1 day')`,
			id, ib.AccountID, ib.ID); err != nil {
			t.Fatal(err)
		}
	}
	hour := int64(3600)
	if _, _, _, err := s.UpdateInbox(ctx, ib.AccountID, ib.ID, InboxPatch{AutoCloseAfterS: &hour}); err != nil {
		t.Fatal(err)
	}
	// A transaction of after the change holds cv_b, as an append would.
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE conversations SET version = version + 1 WHERE id = 'cv_b'`); err != nil {
		t.Fatal(err)
	}
	// Waiting for cv_b would end at the context's deadline.
	n, err := s.rearmBatches(ctx, ib.ID, 2)
	if err != nil || n != 2 {
		t.Fatalf("re-arm beside a held row: %d re-armed, %v; want 2 (cv_a and cv_c)", n, err)
	}
	for _, id := range []string{"cv_a", "cv_c"} {
		if got := dueAt(t, s, id); got.After(time.Now()) {
			t.Errorf("%s due %v, want now", id, got)
		}
	}
	// The holder goes on to another re-armed row without a deadlock.
	if _, err := tx.Exec(ctx, `UPDATE conversations SET version = version + 1 WHERE id = 'cv_a'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
