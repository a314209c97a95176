package persistence

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func recordNotices() (*notices, chan time.Time) {
	sent := make(chan time.Time, 16)
	return newNotices(50*time.Millisecond, func() { sent <- time.Now() }), sent
}

// Commits further apart than the window each carry their own notice.
func TestNoticesSpacedCommitsCarryTheirOwn(t *testing.T) {
	n, sent := recordNotices()
	t0 := time.Now()
	for i := range 3 {
		if !n.claim(t0.Add(time.Duration(i) * 60 * time.Millisecond)) {
			t.Fatalf("commit %d, 60 ms after the last notice, carries none", i)
		}
	}
	n.close()
	if len(sent) != 0 {
		t.Fatalf("%d notices sent apart from the commits, want 0", len(sent))
	}
}

// A burst inside the window: the first commit carries the notice, the
// rest share one sent at the window's end — not before it.
func TestNoticesBurstSharesOneAtTheWindowsEnd(t *testing.T) {
	n, sent := recordNotices()
	start := time.Now()
	if !n.claim(start) {
		t.Fatal("the first commit carries no notice")
	}
	for range 5 {
		if n.claim(time.Now()) {
			t.Fatal("a commit inside the window carries a notice")
		}
		n.owe(time.Now())
	}
	var at time.Time
	select {
	case at = <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the owed notice never went out")
	}
	if at.Sub(start) < 50*time.Millisecond {
		t.Fatalf("the owed notice went out %v after the first, inside the window", at.Sub(start))
	}
	// Nothing else was pending: closing sends nothing more.
	n.close()
	if len(sent) != 0 {
		t.Fatalf("%d more notices, want one for the whole burst", len(sent))
	}
	n.owe(time.Now())
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.trailing != nil {
		t.Fatal("a notice scheduled after close")
	}
}

// A notice still owed when the writer closes goes out at once.
func TestNoticesCloseSendsWhatIsOwed(t *testing.T) {
	n, sent := recordNotices()
	n.every = time.Hour
	n.claim(time.Now())
	n.owe(time.Now())
	n.close()
	if len(sent) != 1 {
		t.Fatalf("%d notices sent on close, want the 1 owed", len(sent))
	}
}

// A window of zero (NoticeEvery negative) is a notice after every commit.
func TestNoticesOff(t *testing.T) {
	n := newNotices(0, func() { t.Error("a notice sent apart from a commit") })
	now := time.Now()
	for range 3 {
		if !n.claim(now) {
			t.Fatal("a commit without its notice")
		}
	}
}

// Through PostgreSQL: the first commit carries its notice; the next, inside
// the window, is owed one, which arrives at the window's end.
func TestWriterOwedNoticeArrives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	conn := listenOn(t, s, "journal_appended")
	const window = 300 * time.Millisecond
	w := NewWriter(s.Pool(), WriterConfig{NoticeEvery: window}, nil)
	defer w.Close(ctx)
	epoch := claim(t, s, "cv_owed")
	if err := w.Append(ctx, testAppend("cv_owed", epoch, 1, message(1, "first"))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
		t.Fatalf("the first commit's notice: %v", err)
	}
	first := time.Now()
	if err := w.Append(ctx, testAppend("cv_owed", epoch, 2, message(2, "second"))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
		t.Fatalf("the owed notice: %v", err)
	}
	if d := time.Since(first); d < window/2 {
		t.Fatalf("the owed notice came %v after the first, inside the %v window", d, window)
	}
}

// A commit whose wake-up fails is still answered as committed, and its
// journal notice is sent again (the trailing notice) rather than left to
// the consumers' next poll. The fault: a notice statement that fails the
// first time it runs (a sequence is not rolled back with its transaction).
func TestWriterFailedWakeUpIsSentAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	conn := listenOn(t, s, "journal_appended")
	if _, err := s.Pool().Exec(ctx, `CREATE SEQUENCE wake_fault`); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(s.Pool(), WriterConfig{NoticeEvery: -1}, nil)
	defer w.Close(ctx)
	w.notifyJournal = `SELECT pg_notify('journal_appended', '')
		WHERE (CASE WHEN nextval('wake_fault') = 1 THEN 'an injected fault' ELSE '1' END)::int = 1`
	epoch := claim(t, s, "cv_wake")
	if err := w.Append(ctx, testAppend("cv_wake", epoch, 1, message(1, "first"))); err != nil {
		t.Fatalf("append whose wake-up fails: %v", err)
	}
	if got := journalVersions(t, s, "cv_wake"); len(got) != 1 {
		t.Fatalf("journal after the commit: %v, want version 1", got)
	}
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if _, err := conn.Conn().WaitForNotification(wait); err != nil {
		t.Fatalf("no journal notice after the failed one: %v", err)
	}
	if n := testutil.ToFloat64(w.m.wakeFailures); n != 1 {
		t.Fatalf("wake-up failures counted: %v, want 1", n)
	}
	// The writer goes on: the failed wake-up's connection was given back clean.
	if err := w.Append(ctx, testAppend("cv_wake", epoch, 2, message(2, "second"))); err != nil {
		t.Fatalf("append after the failed wake-up: %v", err)
	}
	if _, err := conn.Conn().WaitForNotification(wait); err != nil {
		t.Fatalf("the next commit's notice: %v", err)
	}
}

// close waits for a trailing notice its timer is sending: a closed writer
// holds no connection and owes nothing on its way.
func TestNoticesCloseWaitsForASendInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	n := newNotices(time.Millisecond, func() { close(entered); <-release })
	n.claim(time.Now())
	n.owe(time.Now())
	<-entered
	closed := make(chan struct{})
	go func() { n.close(); close(closed) }()
	// Asserting that something does not happen takes a bound.
	select {
	case <-closed:
		t.Fatal("close returned while a notice was being sent")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
}
