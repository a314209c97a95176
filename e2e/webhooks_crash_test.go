package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/client"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// hookSink is a webhook receiver in the test process on a fixed address,
// so that it can go down (its listener closed) and come back where the
// webhook points. It verifies every delivery with the client package, the
// way an integration would, de-duplicates on webhook-id, and checks that the
// first receipts of each conversation's events come as versions 1, 2, 3...
type hookSink struct {
	name   string
	addr   string
	secret string
	mode   atomic.Value // "ok", "500", "hang" or "down"
	wake   chan struct{}

	srvMu sync.Mutex
	srv   *http.Server // nil while down

	mu       sync.Mutex
	first    map[string]hookReceipt // by webhook-id
	last     map[string]int64       // highest version received, by conversation
	order    []string
	dups     int
	badSig   int
	refused  int            // 500s answered
	timedOut int            // hung requests the deliverer gave up on
	received map[string]int // deliveries by webhook-id, duplicates included
	hold     *hookHold
}

type hookReceipt struct{ committed, received time.Time }

// hangBound is how long a hanging receiver holds a request at most: past
// the deliverer's 10 s attempt timeout (docs/api.md), so the deliverer is
// the one to give up.
const hangBound = 15 * time.Second

func newHookSink(t *testing.T, name string) *hookSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hookSink{name: name, addr: ln.Addr().String(), wake: make(chan struct{}, 1),
		first: map[string]hookReceipt{}, last: map[string]int64{}, received: map[string]int{}}
	s.serveOn(ln)
	t.Cleanup(func() { s.down() })
	return s
}

func (s *hookSink) url() string { return "http://" + s.addr + "/hook" }

func (s *hookSink) serveOn(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.serve)}
	s.srvMu.Lock()
	s.srv = srv
	s.srvMu.Unlock()
	s.mode.Store("ok")
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection: the deliverer's
// connections are refused until up.
func (s *hookSink) down() {
	s.mode.Store("down")
	s.srvMu.Lock()
	srv := s.srv
	s.srv = nil
	s.srvMu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens on the same address again, healthy.
func (s *hookSink) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("%s: listen again on %s: %v", s.name, s.addr, err)
	}
	s.serveOn(ln)
}

func (s *hookSink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *hookSink) serve(w http.ResponseWriter, req *http.Request) {
	defer s.signal()
	// Reading the body first lets the server notice the deliverer hang
	// up: it watches the connection only once the body is consumed.
	body, err := io.ReadAll(req.Body)
	now := time.Now()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	switch s.mode.Load().(string) {
	case "500":
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case "hang":
		select {
		case <-req.Context().Done():
			// Going down closes hung connections too: only a hang that
			// is still a hang counts as the deliverer's timeout.
			if s.mode.Load() == "hang" {
				s.mu.Lock()
				s.timedOut++
				s.mu.Unlock()
			}
		case <-time.After(hangBound):
		}
		// Never an answer: the connection closes without one.
		panic(http.ErrAbortHandler)
	}
	verr := client.VerifyWebhook(s.secret, req.Header, body, 5*time.Minute)
	var ev client.WebhookEvent
	if verr == nil {
		verr = json.Unmarshal(body, &ev)
	}
	if verr != nil || ev.ID != req.Header.Get("webhook-id") || ev.ConversationID == "" {
		s.mu.Lock()
		s.badSig++
		s.mu.Unlock()
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if hold := s.receive(ev, now); hold != nil {
		// Processed, and the answer held until the deliverer is dead: it
		// never learns, and must send the event again.
		hold.caught <- ev.ID
		<-hold.release
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(http.StatusNoContent)
}

// hookHold catches one delivery: the receiver processes it and holds its
// answer until release is closed.
type hookHold struct {
	caught  chan string
	release chan struct{}
}

// receive records a verified delivery, and returns the armed hold if this
// is the one to hold (a first receipt).
func (s *hookSink) receive(ev client.WebhookEvent, now time.Time) *hookHold {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.received[ev.ID]++; s.received[ev.ID] > 1 {
		s.dups++
		return nil
	}
	s.first[ev.ID] = hookReceipt{committed: ev.CreatedAt, received: now}
	if ev.Version != s.last[ev.ConversationID]+1 {
		s.order = append(s.order, fmt.Sprintf("%s: version %d after %d", ev.ConversationID, ev.Version, s.last[ev.ConversationID]))
	}
	s.last[ev.ConversationID] = max(s.last[ev.ConversationID], ev.Version)
	hold := s.hold
	s.hold = nil
	return hold
}

func (s *hookSink) stat(f func() int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

// has reports whether every one of ids arrived.
func (s *hookSink) has(ids []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.first[id]; !ok {
			return false
		}
	}
	return true
}

// check fails t unless s received exactly the events ids (after
// de-duplication), every delivery verified, in version order.
func (s *hookSink) check(t *testing.T, ids []string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	missing := 0
	for _, id := range ids {
		if _, ok := s.first[id]; !ok {
			if missing++; missing <= 5 {
				t.Errorf("%s: event %s never arrived", s.name, id)
			}
		}
	}
	if len(s.first) != len(ids) {
		t.Errorf("%s: %d distinct events, the journal has %d (%d missing)", s.name, len(s.first), len(ids), missing)
	}
	if s.badSig > 0 {
		t.Errorf("%s: %d deliveries failed verification", s.name, s.badSig)
	}
	if len(s.order) > 0 {
		t.Errorf("%s: %d out of order, first: %v", s.name, len(s.order), s.order[:min(5, len(s.order))])
	}
	t.Logf("%s: %d events, %d duplicates, %d answered 500, %d timed out", s.name, len(s.first), s.dups, s.refused, s.timedOut)
}

// hookLoad drives REST traffic at the node of the moment: requests that
// fail because the node was SIGKILLed wait for the restarted one, and the
// conversation's round is abandoned (what committed is in the journal,
// which is what the receivers are checked against).
type hookLoad struct {
	key, inbox string
	base       atomic.Pointer[string]
	killed     atomic.Bool
	ready      chan struct{} // closed once the restarted node is up
	http       *http.Client

	mu       sync.Mutex
	failures []string
	sent     int
}

func (l *hookLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

// do sends one request; ok is false when the round of this conversation
// must be abandoned (the node died under it, or a failure was recorded).
func (l *hookLoad) do(want int, method, path string, body any) (obj, bool) {
	raw, err := json.Marshal(body)
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return nil, false
	}
	req, err := http.NewRequest(method, *l.base.Load()+path, bytes.NewReader(raw))
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return nil, false
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := l.http.Do(req)
	var m obj
	status := 0
	if err == nil {
		status = res.StatusCode
		err = json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
	}
	if err == nil && status == want {
		l.mu.Lock()
		l.sent++
		l.mu.Unlock()
		return m, true
	}
	if l.killed.Load() && (err != nil || status >= 500) {
		<-l.ready
		return nil, false
	}
	l.fail("%s %s: status %d (want %d), err %v: %v", method, path, status, want, err, m)
	return nil, false
}

// round sends one round of every kind of event to each of n conversations
// from 8 clients: inbound, reply, note, two delivery reports, a call event
// and a tag update (7 events). halfway is closed when half of the
// conversations are done.
func (l *hookLoad) round(round, n int, halfway chan<- struct{}) {
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				l.conversation(round, i)
				if done.Add(1) == int64(n/2) && halfway != nil {
					close(halfway)
				}
			}
		})
	}
	wg.Wait()
}

func (l *hookLoad) conversation(round, i int) {
	c := obj{"phone": fmt.Sprintf("+1415888%04d", i)}
	in, ok := l.do(201, "POST", "/v1/inboxes/"+l.inbox+"/messages", obj{"contact": c, "body": fmt.Sprintf("hello %d", round)})
	if !ok {
		return
	}
	conv, _ := in["conversation_id"].(string)
	rep, ok := l.do(201, "POST", "/v1/conversations/"+conv+"/messages", obj{"body": "reply"})
	if !ok {
		return
	}
	repID, _ := rep["id"].(string)
	steps := []struct {
		status       int
		method, path string
		body         obj
	}{
		{201, "POST", "/v1/conversations/" + conv + "/messages", obj{"body": "note", "kind": "note"}},
		{200, "POST", "/v1/conversations/" + conv + "/messages/" + repID + "/status", obj{"status": "sent"}},
		{200, "POST", "/v1/conversations/" + conv + "/messages/" + repID + "/status", obj{"status": "delivered"}},
		{200, "POST", "/v1/inboxes/" + l.inbox + "/calls", obj{"contact": c, "call_id": fmt.Sprintf("call-%d-%d", i, round), "state": "ringing"}},
		{200, "PATCH", "/v1/conversations/" + conv, obj{"tags_add": []string{fmt.Sprintf("r%d", round)}}},
	}
	for _, s := range steps {
		if _, ok := l.do(s.status, s.method, s.path, s.body); !ok {
			return
		}
	}
}

// committedEvents lists the journal's events as webhook event ids.
func committedEvents(t *testing.T, db *pgx.Conn) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT conversation_id, version FROM journal ORDER BY conversation_id, version`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var conv string
	var v int64
	if _, err := pgx.ForEachRow(rows, []any{&conv, &v}, func() error {
		ids = append(ids, fmt.Sprintf("evt_%s_%d", conv, v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// ticks signals every d until the test ends: the wake of a condition that
// only a REST read can check, so that it is not re-read in a tight loop.
func ticks(t *testing.T, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				select {
				case ch <- struct{}{}:
				case <-stop:
					return
				}
			}
		}
	}()
	return ch
}

// awaitReceipt waits until cond holds, re-checking on each delivery s
// receives (a fault ends only when a delivery shows it).
func awaitReceipt(t *testing.T, s *hookSink, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.UntilSignaled(t, within, what, s.wake, cond)
}

// TestWebhooksSurviveSIGKILL is the fault run of docs/api.md "Webhooks"
// against the real binary with its shipped deliverer settings (10 s
// attempt timeout, backoff from 1 s, a circuit per endpoint), over rounds
// of traffic: receiver A answers 500, and the node is SIGKILLed while a
// delivery to receiver B is in flight (B processed it, the deliverer never
// heard back) and restarted on the same database; then A hangs past the
// timeout, then its listener is closed, then it recovers. B is healthy
// throughout. Afterwards both have every committed event exactly once
// after de-duplication on webhook-id, the event caught in flight twice,
// every signature verifies, each conversation's versions arrive in order,
// and nothing is pending or failed. B having everything while A is still
// down proves it never waited for A; its lag is reported, not asserted.
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	const convs = 100
	bin := buildSwitchboard(t)
	dbURL := pgtest.NewDatabase(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := []string{"SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE=true", "SWITCHBOARD_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key)}
	srv := startSwitchboard(t, bin, dbURL, "first", env...)
	defer func() {
		if t.Failed() {
			t.Logf("node log:\n%s", srv.tail())
		}
	}()
	c := api{t: t, base: srv.base}
	tn := newTenant(t, c, "Hooks")
	k := c.with(tn.key)
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	a := newHookSink(t, "receiver A (faulty)")
	b := newHookSink(t, "receiver B (healthy)")
	hookIDs := map[*hookSink]string{}
	for _, s := range []*hookSink{a, b} {
		res := k.must(201, "POST", "/v1/webhooks", obj{"url": s.url(), "description": s.name})
		s.secret = str(t, res, "secret")
		hookIDs[s] = str(t, sub(t, res, "webhook"), "id")
	}

	l := &hookLoad{key: tn.key, inbox: tn.inbox, ready: make(chan struct{}),
		http: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	defer l.http.CloseIdleConnections()
	l.base.Store(&srv.base)
	var phases []lagPhase
	// round sends one round of traffic as a phase of B's lag report.
	round := func(n int, name string, halfway chan<- struct{}) {
		t.Helper()
		from := time.Now()
		l.round(n, convs, halfway)
		phases = append(phases, lagPhase{name: name, from: from, to: time.Now()})
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.failures) > 0 {
			t.Fatalf("round %d: %d requests failed, first: %s", n, len(l.failures), l.failures[0])
		}
	}

	round(0, "before A failed", nil)

	// A answers 500. Halfway through the round, once A has refused some
	// and a delivery to B is caught in flight, SIGKILL; restart on the
	// same database.
	a.mode.Store("500")
	halfway := make(chan struct{})
	roundDone := make(chan struct{})
	go func() {
		defer close(roundDone)
		round(1, "A answers 500, SIGKILL", halfway)
	}()
	<-halfway
	awaitReceipt(t, a, 30*time.Second, "receiver A to answer 500", func() bool { return a.stat(func() int { return a.refused }) > 0 })
	hold := &hookHold{caught: make(chan string, 1), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(hold.release) }) }
	defer release()
	b.mu.Lock()
	b.hold = hold
	b.mu.Unlock()
	var inFlight string
	select {
	case inFlight = <-hold.caught:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery to B to catch in flight")
	}
	l.killed.Store(true)
	killAt := time.Now()
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	release()
	receivedAtKill := map[*hookSink]int{a: a.stat(func() int { return len(a.first) }), b: b.stat(func() int { return len(b.first) })}
	srv = startSwitchboard(t, bin, dbURL, "restarted", env...)
	restartedAt := time.Now()
	l.base.Store(&srv.base)
	close(l.ready)
	<-roundDone
	if t.Failed() {
		t.FailNow()
	}
	k = api{t: t, base: srv.base, token: tn.key}
	var beforeKill int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM journal WHERE created_at < $1`, killAt).Scan(&beforeKill); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILL: %d events committed before it; A had %d, B %d (one of them, %s, not acknowledged); ready again after %v",
		beforeKill, receivedAtKill[a], receivedAtKill[b], inFlight, restartedAt.Sub(killAt).Round(time.Millisecond))

	// A hangs past the deliverer's timeout, until the deliverer gives up.
	a.mode.Store("hang")
	round(2, "A hangs", nil)
	awaitReceipt(t, a, 40*time.Second, "the deliverer to give up on a hung attempt", func() bool {
		return a.stat(func() int { return a.timedOut }) > 0
	})

	// A is down: its listener closed. It stays down until B has every
	// committed event — so B cannot have waited for A — and the deliverer
	// has had a connection refused.
	a.down()
	round(3, "A down", nil)
	whileDown := committedEvents(t, db)
	awaitReceipt(t, b, 60*time.Second, "receiver B to have every event while A is down", func() bool { return b.has(whileDown) })
	if a.has(whileDown) {
		t.Fatal("receiver A has every event while down: the faults did not bite")
	}
	tick := ticks(t, 100*time.Millisecond)
	poll.UntilSignaled(t, 60*time.Second, "a delivery to A refused while it is down", tick, func() bool {
		stats := k.with(testAdminToken).must(200, "GET", "/v1/admin/stats", nil)
		e, _ := stats["webhook_last_error"].(string)
		return strings.Contains(e, "connection refused")
	})

	// A recovers and catches up while traffic goes on; then one more
	// round with both healthy.
	recoverAt := time.Now()
	a.up(t)
	round(4, "A recovered, catching up", nil)
	caughtUp := committedEvents(t, db)
	awaitReceipt(t, a, 90*time.Second, "receiver A to catch up", func() bool { return a.has(caughtUp) })
	t.Logf("receiver A caught up %v after it recovered", time.Since(recoverAt).Round(time.Millisecond))
	round(5, "after A caught up", nil)

	all := committedEvents(t, db)
	if len(all) < 3000 {
		t.Fatalf("only %d events committed", len(all))
	}
	for _, s := range []*hookSink{b, a} {
		awaitReceipt(t, s, 60*time.Second, s.name+" to have every event", func() bool { return s.has(all) })
	}
	for _, s := range []*hookSink{a, b} {
		s.check(t, all)
	}
	if n := b.stat(func() int { return b.received[inFlight] }); n < 2 {
		t.Errorf("%s, caught in flight by the SIGKILL, was delivered %d times; the deliverer never heard it succeed, so it must be sent again", inFlight, n)
	}
	// Outcomes are recorded just after the receiver answered.
	for _, s := range []*hookSink{a, b} {
		poll.UntilSignaled(t, 30*time.Second, s.name+": nothing pending", tick, func() bool {
			res := k.must(200, "GET", "/v1/webhooks/"+hookIDs[s]+"/deliveries?status=pending", nil)
			return len(list(t, res, "deliveries")) == 0
		})
		res := k.must(200, "GET", "/v1/webhooks/"+hookIDs[s]+"/deliveries?status=failed", nil)
		if failed := list(t, res, "deliveries"); len(failed) > 0 {
			t.Errorf("%s: %d deliveries failed, first %v", s.name, len(failed), failed[0])
		}
	}
	l.mu.Lock()
	t.Logf("%d requests acknowledged, %d events committed", l.sent, len(all))
	l.mu.Unlock()
	logLags(t, b, phases, killAt)
}

// lagPhase is a round of traffic: B's lag is reported for the events
// committed during it.
type lagPhase struct {
	name     string
	from, to time.Time
}

// logLags reports B's delivery lag (commit → first receipt) per phase;
// events committed before the kill and received after it waited for a new
// process and are reported on their own.
func logLags(t *testing.T, b *hookSink, phases []lagPhase, killAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const restart = "committed before the SIGKILL, received after it"
	lags := map[string][]time.Duration{}
	for _, r := range b.first {
		name := ""
		for _, p := range phases {
			if !r.committed.Before(p.from) && !r.committed.After(p.to) {
				name = p.name
			}
		}
		if r.committed.Before(killAt) && r.received.After(killAt) {
			name = restart
		}
		lags[name] = append(lags[name], r.received.Sub(r.committed))
	}
	names := []string{}
	for _, p := range phases {
		names = append(names, p.name)
	}
	for _, name := range append(names, restart) {
		ds := lags[name]
		if len(ds) == 0 {
			t.Logf("B lag, %s: no events", name)
			continue
		}
		slices.Sort(ds)
		rate := ""
		if i := slices.IndexFunc(phases, func(p lagPhase) bool { return p.name == name }); i >= 0 {
			rate = fmt.Sprintf(" (%.0f events/s committed for %v)", float64(len(ds))/phases[i].to.Sub(phases[i].from).Seconds(), phases[i].to.Sub(phases[i].from).Round(time.Millisecond))
		}
		t.Logf("B lag, %s: p50 %v p99 %v max %v over %d events%s", name,
			ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)*99/100].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds), rate)
	}
}
