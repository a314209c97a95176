package timers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var testConfig = Config{MaxWait: 20 * time.Millisecond, LockRetry: 20 * time.Millisecond, RetryAfter: 50 * time.Millisecond, Batch: 3}

type env struct {
	t     *testing.T
	store *persistence.Store
	inbox persistence.Inbox
}

func newEnv(t *testing.T) *env {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := persistence.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	store, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	acc, _, err := store.CreateAccount(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	in, err := store.CreateInbox(ctx, acc.ID, "Support", "")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, inbox: in}
}

// arm writes a conversation row due at due.
func (e *env) arm(id string, due time.Time) {
	e.t.Helper()
	ctx := context.Background()
	sum := conversation.Summary{ID: id, AccountID: e.inbox.AccountID, InboxID: e.inbox.ID, Status: conversation.StatusOpen,
		Channel: conversation.ChannelSMS, LastActivityAt: time.Now(), Version: 1}
	if _, err := e.store.ApplySummary(ctx, sum, "k:"+id); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.SetDue(ctx, id, 1, &due, 0); err != nil {
		e.t.Fatal(err)
	}
}

// conversations stands in for the actors: a tick disarms the row, as a
// conversation does in the commit of the event it decides.
type conversations struct {
	e     *env
	mu    sync.Mutex
	ticks map[string][]string // conversation → scanner that ticked it
	fail  map[string]int      // conversation → ticks to fail first
}

func (c *conversations) waker(name string) Waker {
	return func(ctx context.Context, d Due) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.fail[d.ConversationID] > 0 {
			c.fail[d.ConversationID]--
			return errors.New("conversation unavailable")
		}
		if d.Now.Before(d.DueAt) || d.InboxID != c.e.inbox.ID || d.AccountID != c.e.inbox.AccountID {
			return fmt.Errorf("bad due %+v", d)
		}
		c.ticks[d.ConversationID] = append(c.ticks[d.ConversationID], name)
		return c.e.store.SetDue(ctx, d.ConversationID, 1, nil, 0)
	}
}

func (c *conversations) ticked(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ticks[id]...)
}

func run(t *testing.T, s *Scanner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func TestScannerWakesDueOnceAndHandsOver(t *testing.T) {
	e := newEnv(t)
	convs := &conversations{e: e, ticks: map[string][]string{}, fail: map[string]int{"c-flaky": 2}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := New(e.store.Pool(), listentest.Run(t, e.store.Pool()), convs.waker("a"), testConfig, log, nil)
	b := New(e.store.Pool(), listentest.Run(t, e.store.Pool()), convs.waker("b"), testConfig, log, nil)
	stopA := run(t, a)
	poll.Until(t, 5*time.Second, "a to lead", a.Active)
	run(t, b)

	// More due rows than a batch, one failing twice, one not due yet.
	for i := range 7 {
		e.arm(fmt.Sprintf("c-%d", i), time.Now().Add(-time.Minute))
	}
	e.arm("c-flaky", time.Now().Add(-time.Second))
	e.arm("c-later", time.Now().Add(time.Hour))
	for _, id := range []string{"c-0", "c-1", "c-2", "c-3", "c-4", "c-5", "c-6", "c-flaky"} {
		poll.Until(t, 5*time.Second, "tick of "+id, func() bool { return len(convs.ticked(id)) > 0 })
		if got := convs.ticked(id); len(got) != 1 || got[0] != "a" {
			t.Fatalf("%s ticked by %v, want once by the leader a", id, got)
		}
	}
	if b.Active() {
		t.Fatal("two active scanners")
	}
	if got := convs.ticked("c-later"); len(got) != 0 {
		t.Fatalf("a timer an hour ahead fired: %v", got)
	}

	// The leader stops (its session, and lock, end): b takes over.
	stopA()
	poll.Until(t, 5*time.Second, "b to take over", b.Active)
	e.arm("c-after", time.Now())
	poll.Until(t, 5*time.Second, "tick after the handover", func() bool { return len(convs.ticked("c-after")) > 0 })
	if got := convs.ticked("c-after"); got[0] != "b" {
		t.Fatalf("ticked by %v, want b", got)
	}
}

// TestScannerSleepsUntilTheNextDueTime: with the fallback poll as far
// apart as it may be (persistence.TimersHorizon), a timer fires at its due
// time, whether the scanner read it as its next due time after a poll or
// a commit announced it while the scanner slept.
func TestScannerSleepsUntilTheNextDueTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	convs := &conversations{e: e, ticks: map[string][]string{}, fail: map[string]int{}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := testConfig
	cfg.MaxWait = time.Hour // capped at the horizon
	// Read after a poll: armed before the scanner starts, written without
	// an announcement.
	e.arm("c-read", time.Now().Add(time.Hour))
	readDue := time.Now().Add(500 * time.Millisecond)
	if _, err := e.store.Pool().Exec(ctx, `UPDATE conversations SET due_at = $1 WHERE id = 'c-read'`, readDue); err != nil {
		t.Fatal(err)
	}
	s := New(e.store.Pool(), listentest.Run(t, e.store.Pool()), convs.waker("s"), cfg, log, nil)
	run(t, s)
	poll.Until(t, 5*time.Second, "the scanner to lead", s.Active)
	// A fallback poll would come only after the horizon: a tick well
	// before it shows the scanner woke for the due time itself.
	within := persistence.TimersHorizon / 2
	poll.Until(t, within, "the tick of the timer read after a poll", func() bool { return len(convs.ticked("c-read")) == 1 })
	// Announced: armed through SetDue (as a tick that decided nothing
	// does) while the scanner sleeps with nothing else due.
	announcedDue := time.Now().Add(300 * time.Millisecond)
	e.arm("c-announced", announcedDue)
	poll.Until(t, within, "the tick of the announced timer", func() bool { return len(convs.ticked("c-announced")) == 1 })
	if !time.Now().After(announcedDue) {
		t.Fatal("ticked before its due time")
	}
}
