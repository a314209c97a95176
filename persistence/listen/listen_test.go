package listen

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// start runs a hub on a fresh database and returns it with a pool for
// sending notices; adjust, if any, changes the hub before it runs.
func start(t *testing.T, adjust ...func(*Hub)) (*Hub, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h := New(pool.Config().ConnConfig, nil)
	h.retry = 10 * time.Millisecond
	for _, f := range adjust {
		f(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, pool
}

// next waits for the subscription's next non-empty Notices.
func next(t *testing.T, s *Subscription) Notices {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if n := s.Take(); !n.Empty() {
			return n
		}
		select {
		case <-s.Ready():
		case <-timeout:
			t.Fatalf("no notices on %s within 10s", s.channel)
		}
	}
}

// listened waits until s's channel is listened to, which its subscriber
// learns as a Missed.
func listened(t *testing.T, s *Subscription) {
	t.Helper()
	n := next(t, s)
	if !n.Missed || !n.Listening {
		t.Fatalf("first notices on %s: %+v, want missed while listening", s.channel, n)
	}
}

func notify(t *testing.T, pool *pgxpool.Pool, channel, payload string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		t.Fatal(err)
	}
}

func TestNoticesReachTheirChannelsSubscribersInOrder(t *testing.T) {
	h, pool := start(t)
	a1, a2, b := h.Subscribe("a"), h.Subscribe("a"), h.Subscribe("b")
	defer a1.Close()
	defer a2.Close()
	defer b.Close()
	for _, s := range []*Subscription{a1, a2, b} {
		listened(t, s)
	}
	notify(t, pool, "a", "1")
	notify(t, pool, "a", "2")
	notify(t, pool, "b", "3")
	for _, s := range []*Subscription{a1, a2} {
		var got []string
		for len(got) < 2 {
			n := next(t, s)
			if n.Missed {
				t.Fatalf("%+v: nothing was missed", n)
			}
			got = append(got, n.Payloads...)
		}
		if fmt.Sprint(got) != "[1 2]" {
			t.Fatalf("channel a got %v, want [1 2]", got)
		}
	}
	// b's first notice is its own: a's were not delivered to it.
	if n := next(t, b); fmt.Sprint(n.Payloads) != "[3]" {
		t.Fatalf("channel b got %+v, want [3]", n)
	}
}

// A subscriber that joins a channel already listened to learns it at once.
func TestLaterSubscriberOfAListenedChannelIsTold(t *testing.T) {
	h, pool := start(t)
	first := h.Subscribe("a")
	defer first.Close()
	listened(t, first)
	second := h.Subscribe("a")
	defer second.Close()
	if n := second.Take(); !n.Missed || !n.Listening {
		t.Fatalf("second subscriber of a listened channel: %+v, want missed while listening", n)
	}
	notify(t, pool, "a", "x")
	for _, s := range []*Subscription{first, second} {
		if n := next(t, s); fmt.Sprint(n.Payloads) != "[x]" {
			t.Fatalf("got %+v, want [x]", n)
		}
	}
}

// A session holds one backend, whatever the number of channels.
func TestOneSessionListensToEveryChannel(t *testing.T) {
	h, pool := start(t)
	for _, ch := range []string{"a", "b", "c"} {
		s := h.Subscribe(ch)
		defer s.Close()
		listened(t, s)
	}
	var sessions int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, ApplicationName).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 {
		t.Fatalf("%d sessions listen, want 1", sessions)
	}
}

// A channel subscribed while the session waits is listened to without a
// reconnection; one left by its last subscriber is no longer delivered.
func TestChannelsFollowSubscriptions(t *testing.T) {
	h, pool := start(t)
	a := h.Subscribe("a")
	defer a.Close()
	listened(t, a)
	late := h.Subscribe("late")
	listened(t, late)
	notify(t, pool, "late", "x")
	if n := next(t, late); fmt.Sprint(n.Payloads) != "[x]" || n.Missed {
		t.Fatalf("late subscriber got %+v, want [x]", n)
	}
	late.Close()
	notify(t, pool, "late", "y")
	notify(t, pool, "a", "z")
	if n := next(t, a); fmt.Sprint(n.Payloads) != "[z]" || n.Missed {
		t.Fatalf("a got %+v after the session changed its channels, want [z] and nothing missed", n)
	}
	if n := late.Take(); !n.Empty() {
		t.Fatalf("a closed subscription received %+v", n)
	}
}

// A lost session is reported at once (not listening, notices missed), and
// again when a new one listens; notices flow after it.
func TestLostSessionIsReportedAndReplaced(t *testing.T) {
	reconnect := make(chan struct{})
	h, pool := start(t, func(h *Hub) {
		connect, sessions := h.connect, 0
		h.connect = func(ctx context.Context) (*pgx.Conn, error) {
			if sessions++; sessions > 1 {
				select {
				case <-reconnect:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return connect(ctx)
		}
	})
	s := h.Subscribe("a")
	defer s.Close()
	listened(t, s)
	var killed int
	if err := pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, ApplicationName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d sessions (%v), want 1", killed, err)
	}
	if n := next(t, s); !n.Missed || n.Listening {
		t.Fatalf("after the session's loss: %+v, want missed and not listening", n)
	}
	if s.Listening() {
		t.Fatal("listening without a session")
	}
	close(reconnect)
	listened(t, s)
	notify(t, pool, "a", "after")
	if n := next(t, s); fmt.Sprint(n.Payloads) != "[after]" || n.Missed {
		t.Fatalf("got %+v after the new session, want [after]", n)
	}
}

// A subscriber that does not keep up loses payloads, not the hub's time:
// it is told it missed some, and the others are unaffected.
func TestSlowSubscriberIsToldItMissedNotices(t *testing.T) {
	h, pool := start(t)
	slow, other := h.Subscribe("a"), h.Subscribe("b")
	defer slow.Close()
	defer other.Close()
	listened(t, slow)
	listened(t, other)
	const sent = maxPending + 100
	if _, err := pool.Exec(context.Background(), `SELECT pg_notify('a', g::text) FROM generate_series(1, $1) g`, sent); err != nil {
		t.Fatal(err)
	}
	notify(t, pool, "b", "done")
	if n := next(t, other); fmt.Sprint(n.Payloads) != "[done]" {
		t.Fatalf("other channel got %+v", n)
	}
	// b's notice was sent after a's, so a's have all been delivered.
	n := slow.Take()
	if !n.Missed || len(n.Payloads) >= sent || n.Payloads[len(n.Payloads)-1] != strconv.Itoa(sent) {
		t.Fatalf("slow subscriber: missed %v, %d payloads ending %q; want missed and the latest kept", n.Missed, len(n.Payloads), n.Payloads[len(n.Payloads)-1])
	}
	notify(t, pool, "a", "again")
	if n := next(t, slow); fmt.Sprint(n.Payloads) != "[again]" || n.Missed {
		t.Fatalf("after catching up got %+v, want [again]", n)
	}
}

func TestWaitReturnsWhatArrivesOrNothingAfterItsTime(t *testing.T) {
	h, pool := start(t)
	s := h.Subscribe("a")
	defer s.Close()
	listened(t, s)
	if n := s.Wait(context.Background(), 20*time.Millisecond); !n.Empty() || !n.Listening {
		t.Fatalf("nothing sent, got %+v", n)
	}
	done := make(chan Notices, 1)
	go func() { done <- s.Wait(context.Background(), time.Minute) }()
	notify(t, pool, "a", "p")
	if n := <-done; fmt.Sprint(n.Payloads) != "[p]" {
		t.Fatalf("got %+v, want [p]", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := s.Wait(ctx, time.Minute); !n.Empty() {
		t.Fatalf("ended context: got %+v", n)
	}
}
