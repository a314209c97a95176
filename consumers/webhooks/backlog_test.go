package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/internal/poll"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// hookReceiver is a real receiver: it answers 503 while failing is set,
// and otherwise verifies the signature, de-duplicates on webhook-id and
// notes each conversation's versions in the order they first arrive.
type hookReceiver struct {
	t       *testing.T
	srv     *httptest.Server
	secret  string
	failing atomic.Bool

	// refuse answers 500 to the events of these conversations only, and
	// refusedConv counts those answers per conversation.
	refuse      map[string]bool
	refusedConv map[string]int
	// refuseAt answers 500 to one version of these conversations.
	refuseAt map[string]int64

	// hang holds the answers to these conversations' events until the
	// test ends; hung counts the requests held.
	hang map[string]bool
	hung atomic.Int32
	// delay is how long every answer takes: a slow receiver.
	delay time.Duration

	mu       sync.Mutex
	seen     map[string]bool
	last     map[string]int64
	order    []string
	dups     int
	badSig   int
	refused  int
	received int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, seen: map[string]bool{}, last: map[string]int64{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	time.Sleep(r.delay)
	if len(r.hang) > 0 {
		var p Payload
		if json.Unmarshal(body, &p) == nil && r.hang[p.ConversationID] {
			r.hung.Add(1)
			<-r.t.Context().Done()
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing.Load() {
		r.refused++
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var p Payload
	if json.Unmarshal(body, &p) != nil || Verify(r.secret, req.Header, body, time.Now(), 5*time.Minute) != nil ||
		req.Header.Get("webhook-id") != p.ID {
		r.badSig++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if r.refuse[p.ConversationID] || r.refuseAt[p.ConversationID] == p.Version {
		r.refused++
		if r.refusedConv == nil {
			r.refusedConv = map[string]int{}
		}
		r.refusedConv[p.ConversationID]++
		http.Error(w, "not this one", http.StatusInternalServerError)
		return
	}
	if r.seen[p.ID] {
		r.dups++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.seen[p.ID] = true
	r.received++
	// The webhook takes every type, so each version of a conversation is
	// an event: the first receipts must come as 1, 2, 3, ...
	if p.Version != r.last[p.ConversationID]+1 {
		r.order = append(r.order, fmt.Sprintf("%s: version %d after %d", p.ConversationID, p.Version, r.last[p.ConversationID]))
	}
	r.last[p.ConversationID] = max(r.last[p.ConversationID], p.Version)
	w.WriteHeader(http.StatusNoContent)
}

// convNames names n conversations prefix_0, prefix_1, ...
func convNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s_%d", prefix, i)
	}
	return out
}

// setOf is a receiver's set of conversations (refuse, hang).
func setOf(convs ...string) map[string]bool {
	out := make(map[string]bool, len(convs))
	for _, c := range convs {
		out[c] = true
	}
	return out
}

func (r *hookReceiver) counts() (received, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received, r.refused
}

// backlogEnv is a migrated database with one account and a running
// deliverer.
type backlogEnv struct {
	t    *testing.T
	pool *pgxpool.Pool
	reg  *prometheus.Registry
	d    *Deliverer

	sealer  *Sealer
	webhook string // the id of the account's webhook
	cfg     Config // the deliverer's
}

func newBacklogEnv(t *testing.T, rcv *hookReceiver) *backlogEnv {
	return newBacklogEnvWith(t, rcv, func(*Config) {})
}

// newBacklogEnvWith is newBacklogEnv with the deliverer's Config adjusted
// by tune before it starts.
func newBacklogEnvWith(t *testing.T, rcv *hookReceiver, tune func(*Config)) *backlogEnv {
	ctx := context.Background()
	pool, sealer, hook, secret := newHookDB(t, "Backlog", rcv.srv.URL+"/hook")
	rcv.secret = secret
	e := &backlogEnv{t: t, pool: pool, reg: prometheus.NewRegistry()}
	// Quick retries and circuits, so that the receiver's recovery is
	// noticed at once; the rest are production defaults.
	cfg := Config{AllowPrivate: true, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		CircuitMin: 20 * time.Millisecond, CircuitMax: 100 * time.Millisecond, DispatchInterval: 50 * time.Millisecond,
		LockRetry: 50 * time.Millisecond, Timeout: 5 * time.Second}
	tune(&cfg)
	e.cfg = cfg
	e.d = New(pool, listentest.Run(t, pool), sealer, cfg, nil, e.reg)
	e.sealer, e.webhook = sealer, hook.ID
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.d.Run(runCtx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// commit appends events to the journal in transactions of up to 64 rows,
// round robin over the conversations conv_000, conv_001, ..., as the
// group-commit writer does.
func (e *backlogEnv) commit(convs int, from, to int64) {
	e.t.Helper()
	names := make([]string, convs)
	for c := range names {
		names[c] = fmt.Sprintf("conv_%03d", c)
	}
	e.commitTo(names, from, to)
}

// commitTo is commit for the conversations named.
func (e *backlogEnv) commitTo(convs []string, from, to int64) {
	e.t.Helper()
	ctx := context.Background()
	var batch [][]any
	flush := func() {
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			for _, args := range batch {
				if _, err := tx.Exec(ctx, `INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event)
VALUES ($1, $2, 'acc_1', 'inb_1', $3, $4::jsonb)`, args...); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "NOTIFY "+journal.Channel)
			return err
		})
		if err != nil {
			e.t.Fatalf("commit: %v", err)
		}
		batch = batch[:0]
	}
	for v := from; v <= to; v++ {
		for _, conv := range convs {
			ev := conversation.Event{Type: conversation.EventInbound, Version: v, At: time.Now(),
				Item: &conversation.Item{ID: fmt.Sprintf("msg_%s_%d", conv, v), Seq: v, Direction: conversation.Inbound,
					Kind: conversation.KindMessage, Channel: conversation.ChannelSMS, Body: "hello", CreatedAt: time.Now()}}
			raw, err := json.Marshal(ev)
			if err != nil {
				e.t.Fatal(err)
			}
			batch = append(batch, []any{conv, v, string(ev.Type), string(raw)})
			if len(batch) == 64 {
				flush()
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

// secondWebhook adds a webhook of acc_1 to a receiver of its own; it gets
// the events committed from then on.
func (e *backlogEnv) secondWebhook() *hookReceiver {
	e.t.Helper()
	rcv := newHookReceiver(e.t)
	_, secret, err := NewEndpoints(e.pool, e.sealer, Config{}).Create(context.Background(), "acc_1", rcv.srv.URL+"/hook", Types, "second")
	if err != nil {
		e.t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.secret = secret
	rcv.mu.Unlock()
	return rcv
}

// waitReceived waits until r has had n distinct deliveries.
func (r *hookReceiver) waitReceived(n int, what string) {
	r.t.Helper()
	poll.Until(r.t, time.Minute, what, func() bool {
		got, _ := r.counts()
		return got == n
	})
}

func (e *backlogEnv) pending() int {
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// A receiver that refuses everything while a burst comes in leaves every
// queue behind, its lanes without their in-memory view (their heads come
// back through retries). Once it recovers, the backlog drains — with more
// of the burst arriving meanwhile — every event exactly once after
// de-duplication, in version order per conversation, and the lanes refill
// from the database in shared reads instead of one recording per event.
func TestBacklogDrainsAfterReceiverRecovers(t *testing.T) {
	for _, tc := range []struct {
		name          string
		conversations int
		during, after int64 // events per conversation while refused, then while draining
	}{
		// The shape: a few thousand events over ~100 conversations.
		{"100 conversations", 100, 24, 8},
		// Queues longer than a lane holds: refills that find more than
		// they asked for, several per lane.
		{"long queues", 8, 400, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newHookReceiver(t)
			rcv.failing.Store(true)
			e := newBacklogEnv(t, rcv)
			e.commit(tc.conversations, 1, tc.during)
			backlog := tc.conversations * int(tc.during)
			poll.Until(t, time.Minute, "the burst fanned out and refused", func() bool {
				_, refused := rcv.counts()
				return testutil.ToFloat64(e.d.m.fannedOut) >= float64(backlog) && refused >= tc.conversations
			})
			if got, _ := rcv.counts(); got != 0 {
				t.Fatalf("%d events arrived while the receiver refused them", got)
			}

			start := time.Now()
			rcv.failing.Store(false)
			e.commit(tc.conversations, tc.during+1, tc.during+tc.after)
			total := tc.conversations * int(tc.during+tc.after)
			poll.Until(t, 2*time.Minute, "the backlog drained", func() bool {
				got, _ := rcv.counts()
				return got >= total
			})
			elapsed := time.Since(start)
			poll.Until(t, 30*time.Second, "every outcome recorded", func() bool { return e.pending() == 0 })

			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.seen) != total {
				t.Errorf("%d distinct events, want %d", len(rcv.seen), total)
			}
			for c := range tc.conversations {
				if conv := fmt.Sprintf("conv_%03d", c); rcv.last[conv] != tc.during+tc.after {
					t.Errorf("%s: last version %d, want %d", conv, rcv.last[conv], tc.during+tc.after)
				}
			}
			if len(rcv.order) > 0 {
				t.Errorf("out of order: %v", rcv.order[:min(5, len(rcv.order))])
			}
			if rcv.badSig > 0 {
				t.Errorf("%d deliveries failed signature verification", rcv.badSig)
			}
			reads, refilled := testutil.ToFloat64(e.d.m.refills), testutil.ToFloat64(e.d.m.refilled)
			if refilled < float64(backlog)/2 || refilled < 4*reads {
				t.Errorf("lanes refilled %.0f deliveries in %.0f reads: the backlog did not drain from memory in batches", refilled, reads)
			}
			t.Logf("drained %d events (%d backlog) in %v: %.0f events/s; %d duplicates; %.0f refill reads brought back %.0f deliveries",
				total, backlog, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), rcv.dups, reads, refilled)
		})
	}
}

// TestGatherFansOutCommitsTogether: commits trickling in one every 20 ms
// are fanned out a Gather at a time (one journal read and one transaction
// per round), plus the first and the last, and every event still arrives
// once, in order.
func TestGatherFansOutCommitsTogether(t *testing.T) {
	rcv := newHookReceiver(t)
	const gather = 250 * time.Millisecond
	e := newBacklogEnvWith(t, rcv, func(c *Config) { c.Gather = gather })
	const commits = 50
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for v := int64(1); v <= commits; v++ {
		<-tick.C
		e.commit(1, v, v)
	}
	poll.Until(t, 30*time.Second, "every event delivered", func() bool {
		got, _ := rcv.counts()
		return got >= commits
	})
	elapsed := time.Since(start)
	rounds := testutil.ToFloat64(e.d.m.fanOuts)
	t.Logf("%d commits over %v fanned out in %.0f rounds", commits, elapsed.Round(time.Millisecond), rounds)
	if most := float64(elapsed/gather) + 2; rounds > most {
		t.Fatalf("%.0f fan-out rounds for %d commits over %v, want at most %.0f (one per Gather)", rounds, commits, elapsed, most)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.order) > 0 || rcv.last["conv_000"] != commits {
		t.Fatalf("out of order or incomplete: last %d, %v", rcv.last["conv_000"], rcv.order)
	}
}

// TestFailingConversationsHoldBackOnlyTheirRetries: a receiver that answers
// 500 to some conversations' events opens the endpoint's circuit, which
// holds back retries — but another conversation's events still arrive at
// once, not after the cooldown (an hour here); their success closes it.
func TestFailingConversationsHoldBackOnlyTheirRetries(t *testing.T) {
	rcv := newHookReceiver(t)
	failing := convNames("bad", 6)
	rcv.refuse = setOf(failing...)
	e := newBacklogEnvWith(t, rcv, func(c *Config) { c.CircuitMin, c.CircuitMax = time.Hour, time.Hour })
	e.commitTo(failing, 1, 1)
	poll.Until(t, time.Minute, "the circuit opened", func() bool { return e.d.Stats().OpenCircs == 1 })

	for v := int64(1); v <= 3; v++ {
		e.commitTo([]string{"good"}, v, v)
		poll.Until(t, 30*time.Second, fmt.Sprintf("good's version %d arrived behind an open circuit", v), func() bool {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			return rcv.last["good"] == v
		})
	}
	// The failing conversations' events are still pending, not lost.
	var pending int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries
		WHERE status = 'pending' AND conversation_id LIKE 'bad_%'`).Scan(&pending); err != nil || pending != len(failing) {
		t.Fatalf("failing conversations' deliveries pending: %d %v, want %d", pending, err, len(failing))
	}
}

// TestRetryHorizonRunsFromTheFirstAttempt: deliveries that wait behind a
// failing one of their conversation get their whole retry horizon once
// their turn comes, not what is left of it since they were queued.
func TestRetryHorizonRunsFromTheFirstAttempt(t *testing.T) {
	rcv := newHookReceiver(t)
	rcv.refuse = map[string]bool{"down": true}
	const horizon = 1500 * time.Millisecond
	e := newBacklogEnvWith(t, rcv, func(c *Config) {
		c.Horizon = horizon
		c.CircuitThreshold = 1 << 20 // no circuit: this is about each delivery's retries
	})
	e.commitTo([]string{"down"}, 1, 3)
	poll.Until(t, time.Minute, "all three failed for good", func() bool {
		var failed int
		err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'`).Scan(&failed)
		return err == nil && failed == 3
	})
	rows, err := e.pool.Query(context.Background(), `SELECT version, attempts,
		extract(epoch FROM (now() - first_attempt_at)) FROM webhook_deliveries ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var version int64
		var attempts int
		var since float64
		if err := rows.Scan(&version, &attempts, &since); err != nil {
			t.Fatal(err)
		}
		// Retries 20 ms doubling to 200 ms over 1.5 s: several each. Had
		// the horizon run from the queueing, versions 2 and 3 would have
		// failed at their first or second attempt.
		if attempts < 4 {
			t.Errorf("version %d failed after %d attempts", version, attempts)
		}
		if since <= 0 {
			t.Errorf("version %d has no first attempt time", version)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRetriesGoOnWhileTheReceiverDeliversOthers: once the receiver has
// delivered something lately, other conversations' failures do not open
// the circuit again: a conversation whose event failed once gets its retry
// on its own schedule, not after the cooldown (an hour here), though the
// failing conversations went on failing more than the threshold meanwhile.
func TestRetriesGoOnWhileTheReceiverDeliversOthers(t *testing.T) {
	rcv := newHookReceiver(t)
	failing := convNames("bad", 6)
	rcv.refuse = setOf(append(failing, "flaky")...)
	refusedOf := func(conv string) int {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.refusedConv[conv]
	}
	e := newBacklogEnvWith(t, rcv, func(c *Config) { c.CircuitMin, c.CircuitMax = time.Hour, time.Hour })
	e.commitTo(failing, 1, 1)
	poll.Until(t, time.Minute, "the circuit opened", func() bool { return e.d.Stats().OpenCircs == 1 })
	e.commitTo([]string{"good"}, 1, 1) // a first attempt, delivered: the receiver is up
	poll.Until(t, 30*time.Second, "good's event arrived", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.last["good"] == 1
	})
	// The failing conversations fail again, more than the threshold (5).
	before := refusedOf("bad_0")
	poll.Until(t, 30*time.Second, "the failing conversations retried", func() bool { return refusedOf("bad_0") >= before+6 })
	e.commitTo([]string{"flaky"}, 1, 1)
	poll.Until(t, 30*time.Second, "flaky's first attempt refused", func() bool { return refusedOf("flaky") >= 1 })
	rcv.mu.Lock()
	delete(rcv.refuse, "flaky")
	rcv.mu.Unlock()
	poll.Until(t, 30*time.Second, "flaky's retry arrived while the others kept failing", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.last["flaky"] == 1
	})
	if n := e.d.Stats().OpenCircs; n != 0 {
		t.Fatalf("%d circuits open while the receiver delivers", n)
	}
}

// TestHangingConversationsDoNotHoldTheSlots: a receiver that never answers
// for more conversations than there are workers and endpoint slots holds
// those attempts until their timeout (an hour here); the other
// conversations' deliveries go on meanwhile, through the slots the slow
// attempts gave up.
func TestHangingConversationsDoNotHoldTheSlots(t *testing.T) {
	rcv := newHookReceiver(t)
	hanging := convNames("hang", 6)
	rcv.hang = setOf(hanging...)
	e := newBacklogEnvWith(t, rcv, func(c *Config) {
		c.Workers, c.MaxPerEndpoint, c.MaxSlowPerEndpoint = 4, 2, 8
		c.SlowAfter, c.Timeout = 50*time.Millisecond, time.Hour
	})
	e.commitTo(hanging, 1, 1)
	poll.Until(t, time.Minute, "every hanging conversation's attempt is held", func() bool {
		return rcv.hung.Load() == int32(len(hanging))
	})
	for v := int64(1); v <= 3; v++ {
		e.commitTo([]string{"good_0", "good_1"}, v, v)
		poll.Until(t, 30*time.Second, fmt.Sprintf("version %d of the others arrived", v), func() bool {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			return rcv.last["good_0"] == v && rcv.last["good_1"] == v
		})
	}
	if n := testutil.ToFloat64(e.d.m.slowAttempts); n < float64(len(hanging)) {
		t.Errorf("slow attempts counted: %v, want at least %d", n, len(hanging))
	}
}

// TestSlowEndpointDoesNotQueueOthersBehindIt: an endpoint whose receiver
// answers slowly, though within SlowAfter, with more conversations pending
// than there are workers, holds every worker from one delivery to the
// next. Another endpoint's deliveries, written after that backlog, still
// get the next free slots: they have all arrived while most of the slow
// backlog is still to be sent, where before they waited for all of it.
func TestSlowEndpointDoesNotQueueOthersBehindIt(t *testing.T) {
	slow := newHookReceiver(t)
	slow.delay = 40 * time.Millisecond
	e := newBacklogEnvWith(t, slow, func(c *Config) {
		c.Workers, c.MaxPerEndpoint, c.SlowAfter = 4, 4, time.Hour
	})
	e.commitTo(convNames("slow", 40), 1, 3)
	poll.Until(t, time.Minute, "the slow endpoint's backlog under way", func() bool {
		n, _ := slow.counts()
		return n > 0
	})
	fast := e.secondWebhook()
	e.commitTo(convNames("fast", 10), 1, 2)
	fast.waitReceived(20, "every event at the fast endpoint")
	// 140 deliveries to the slow endpoint in all, 120 of them written
	// before the fast endpoint's.
	n, _ := slow.counts()
	if n > 60 {
		t.Fatalf("the fast endpoint's 20 deliveries waited for %d of the slow one's", n)
	}
	t.Logf("the fast endpoint had its 20 deliveries after %d of the slow one's 140", n)
	fast.mu.Lock()
	defer fast.mu.Unlock()
	if fast.dups != 0 || len(fast.order) != 0 || fast.badSig != 0 {
		t.Fatalf("fast receiver: %d duplicates, order %v, %d bad signatures", fast.dups, fast.order, fast.badSig)
	}
}

// TestEveryEndpointGetsASlot: an endpoint whose receiver holds every
// worker and never answers (nothing is slow: SlowAfter is an hour) leaves
// another endpoint with nothing running a slot of its own: its deliveries
// all arrive, one after the other, while the workers stay held.
func TestEveryEndpointGetsASlot(t *testing.T) {
	held := newHookReceiver(t)
	hanging := convNames("hang", 4)
	held.hang = setOf(hanging...)
	e := newBacklogEnvWith(t, held, func(c *Config) {
		c.Workers, c.MaxPerEndpoint, c.SlowAfter, c.Timeout = 2, 2, time.Hour, time.Hour
	})
	e.commitTo(hanging, 1, 1)
	poll.Until(t, time.Minute, "both workers held", func() bool { return held.hung.Load() == 2 })
	fast := e.secondWebhook()
	e.commitTo(convNames("fast", 5), 1, 2)
	fast.waitReceived(10, "every event at the other endpoint")
	// A head that only the dispatcher finds (an earlier leader's, a retry)
	// goes too, while every worker is still held.
	var hook string
	if err := e.pool.QueryRow(context.Background(), `SELECT id FROM webhooks WHERE description = 'second'`).Scan(&hook); err != nil {
		t.Fatal(err)
	}
	id := EventID("orphan_0", 1)
	body := fmt.Sprintf(`{"id":%q,"type":"message.created","conversation_id":"orphan_0","version":1,"data":{}}`, id)
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO webhook_deliveries (webhook_id, event_id, account_id, conversation_id, version, type,
	payload, committed_at, next_attempt_at) VALUES ($1, $2, 'acc_1', 'orphan_0', 1, 'message.created', $3, now(), now())`, hook, id, body); err != nil {
		t.Fatal(err)
	}
	fast.waitReceived(11, "the head only the dispatcher finds")
	if n := held.hung.Load(); n != 2 {
		t.Fatalf("%d attempts held, want the 2 workers' only", n)
	}
}

// TestWebhookDeletedDuringFanOut: a webhook whose delete commits while the
// fan-out's insert writes deliveries for it neither fails the fan-out (the
// foreign key of its rows) nor holds back the other webhooks' deliveries.
// The test holds the fan-out at its queue locks, begins the delete, lets
// the insert run into the delete's row lock, and then commits the delete.
func TestWebhookDeletedDuringFanOut(t *testing.T) {
	ctx := context.Background()
	rcv := newHookReceiver(t)
	e := newBacklogEnv(t, rcv)
	doomed, _, err := NewEndpoints(e.pool, e.sealer, Config{}).Create(ctx, "acc_1", newHookReceiver(t).srv.URL+"/hook", Types, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	begin := func() pgx.Tx {
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		return tx
	}
	waitingOn := func(what, event, query string) {
		poll.Until(t, time.Minute, what, func() bool {
			var n int
			if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND wait_event = $1 AND query LIKE $2`, event, "%"+query+"%").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n > 0
		})
	}
	var queue pairs
	queue.add(doomed.ID, "c1")
	held := begin()
	if _, err := held.Exec(ctx, lockQueuesSQL, lockClass, queue.keys()); err != nil {
		t.Fatal(err)
	}
	e.commitTo([]string{"c1"}, 1, 1)
	waitingOn("the fan-out to wait for its queue lock", "advisory", "pg_advisory_xact_lock")
	del := begin()
	if _, err := del.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, doomed.ID); err != nil {
		t.Fatal(err)
	}
	if err := held.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitingOn("the fan-out's insert to wait for the delete", "transactionid", "INSERT INTO webhook_deliveries")
	if err := del.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.commitTo([]string{"c1"}, 2, 2)
	poll.Until(t, time.Minute, "both versions delivered to the remaining webhook", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.last["c1"] == 2
	})
	if n := testutil.ToFloat64(e.d.m.fanOutErrors); n != 0 {
		t.Fatalf("%v fan-outs failed", n)
	}
	var left int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, doomed.ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d deliveries of the deleted webhook", left)
	}
}

// TestSlowAttemptsAreBounded: past MaxSlowPerEndpoint, a slow attempt keeps
// its slot, so an endpoint that hangs on everything is not sent an
// unbounded number of requests at once.
func TestSlowAttemptsAreBounded(t *testing.T) {
	rcv := newHookReceiver(t)
	convs := convNames("hang", 12)
	rcv.hang = setOf(convs...)
	e := newBacklogEnvWith(t, rcv, func(c *Config) {
		c.Workers, c.MaxPerEndpoint, c.MaxSlowPerEndpoint = 8, 2, 3
		c.SlowAfter, c.Timeout = 50*time.Millisecond, time.Hour
	})
	e.commitTo(convs, 1, 1)
	// 3 slow and 2 in their slots: 5 held, and no more however long.
	poll.Until(t, time.Minute, "five attempts held", func() bool { return rcv.hung.Load() == 5 })
	poll.Until(t, time.Minute, "three of them slow", func() bool { return testutil.ToFloat64(e.d.m.slowAttempts) == 3 })
	e.d.mu.Lock()
	running, slow := e.d.running, e.d.slow
	e.d.mu.Unlock()
	if running != 2 || slow != 3 || rcv.hung.Load() != 5 {
		t.Fatalf("running %d, slow %d, requests held %d; want 2, 3, 5", running, slow, rcv.hung.Load())
	}
}

// TestOpenCircuitKeepsEveryDeliverysRetries: a receiver that refuses
// everything opens the circuit (for an hour here), yet each delivery still
// gets its first retry at once and, once its backoff reaches RetryMax,
// an attempt at least that often: the contract's spacing holds however
// many conversations fail. Only the retries in between wait for the probe.
func TestOpenCircuitKeepsEveryDeliverysRetries(t *testing.T) {
	rcv := newHookReceiver(t)
	convs := convNames("down", 12)
	rcv.refuse = setOf(convs...)
	e := newBacklogEnvWith(t, rcv, func(c *Config) { c.CircuitMin, c.CircuitMax = time.Hour, time.Hour })
	e.commitTo(convs, 1, 1)
	poll.Until(t, time.Minute, "the circuit opened", func() bool { return e.d.Stats().OpenCircs == 1 })
	poll.Until(t, time.Minute, "every delivery retried past its held attempts", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for _, c := range convs {
			if rcv.refusedConv[c] < 6 {
				return false
			}
		}
		return true
	})
	if n := e.d.Stats().OpenCircs; n != 1 {
		t.Fatalf("%d circuits open, want the one still open", n)
	}
}

// TestDeliveriesListShowsTheOpenCircuit: while an endpoint's circuit is
// open, a delivery whose next attempt it holds back (a retry past the
// first) is listed with the circuit's end as its next attempt, not the
// earlier time its backoff stored; once a delivery succeeds and the
// circuit closes, the backoff's time again.
func TestDeliveriesListShowsTheOpenCircuit(t *testing.T) {
	rcv := newHookReceiver(t)
	convs := convNames("down", 6)
	rcv.refuse = setOf(convs...)
	// Retries spaced up to an hour apart are never overdue here: the
	// circuit holds every one past the first.
	e := newBacklogEnvWith(t, rcv, func(c *Config) { c.CircuitMin, c.CircuitMax, c.RetryMax = time.Hour, time.Hour, time.Hour })
	ctx := context.Background()
	start := time.Now()
	e.commitTo(convs, 1, 1)
	poll.Until(t, time.Minute, "the circuit opened", func() bool { return e.d.Stats().OpenCircs == 1 })
	poll.Until(t, time.Minute, "held retries listed at the circuit's end, an hour on", e.retriesListed(func(next time.Time) bool {
		return next.After(start.Add(59 * time.Minute))
	}))
	var stored time.Time
	if err := e.pool.QueryRow(ctx, `SELECT max(next_attempt_at) FROM webhook_deliveries WHERE webhook_id = $1 AND attempts >= 2`, e.webhook).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored.After(start.Add(time.Minute)) {
		t.Fatalf("the stored backoff reaches %s: the listing's hour would not show the circuit", stored)
	}

	// A delivery that succeeds (a first attempt goes through an open
	// circuit) closes it: the list shows the backoff's times again.
	e.commitTo([]string{"up"}, 1, 1)
	poll.Until(t, time.Minute, "the circuit closed", func() bool { return e.d.Stats().OpenCircs == 0 })
	poll.Until(t, time.Minute, "held retries listed at their backoff again", e.retriesListed(func(next time.Time) bool {
		return next.Before(start.Add(time.Minute))
	}))
}

// TestDeliveriesListShowsOverdueRetries: a retry whose backoff is at
// RetryMax is overdue at once and goes through an open circuit (held), so
// the list shows its own time, not the circuit's end.
func TestDeliveriesListShowsOverdueRetries(t *testing.T) {
	rcv := newHookReceiver(t)
	convs := convNames("down", 6)
	rcv.refuse = setOf(convs...)
	e := newBacklogEnvWith(t, rcv, func(c *Config) {
		c.CircuitMin, c.CircuitMax, c.RetryMin, c.RetryMax = time.Hour, time.Hour, 100*time.Millisecond, 100*time.Millisecond
	})
	ctx := context.Background()
	start := time.Now()
	e.commitTo(convs, 1, 1)
	poll.Until(t, time.Minute, "the circuit open and written for the list", func() bool {
		var open *time.Time
		err := e.pool.QueryRow(ctx, `SELECT circuit_open_until FROM webhooks WHERE id = $1`, e.webhook).Scan(&open)
		return err == nil && open != nil && open.After(start.Add(59*time.Minute)) && e.d.Stats().OpenCircs == 1
	})
	poll.Until(t, time.Minute, "overdue retries listed at their own time", e.retriesListed(func(next time.Time) bool {
		return next.Before(start.Add(time.Minute))
	}))
}

// retriesListed returns a condition on the pending deliveries past their
// first retry, as the API lists them: there are some, and want holds for
// the next attempt of each.
func (e *backlogEnv) retriesListed(want func(next time.Time) bool) func() bool {
	ep := NewEndpoints(e.pool, e.sealer, e.cfg)
	return func() bool {
		page, err := ep.Deliveries(context.Background(), "acc_1", e.webhook, "pending", 100, "")
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		for _, d := range page.Deliveries {
			if d.Attempts < 2 {
				continue
			}
			n++
			if d.NextAttemptAt == nil || !want(*d.NextAttemptAt) {
				return false
			}
		}
		return n > 0
	}
}

// TestNewLeaderClearsCircuits: circuits live in the leader's memory, so a
// new leader starts with every circuit closed and clears what an earlier
// one wrote for the deliveries list.
func TestNewLeaderClearsCircuits(t *testing.T) {
	ctx := context.Background()
	pool, sealer, hook, _ := newHookDB(t, "Circuits", "http://127.0.0.1:1/hook")
	if _, err := pool.Exec(ctx, `UPDATE webhooks SET circuit_open_until = now() + interval '1 hour' WHERE id = $1`, hook.ID); err != nil {
		t.Fatal(err)
	}
	d := New(pool, listentest.Run(t, pool), sealer, Config{AllowPrivate: true}, nil, prometheus.NewRegistry())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	poll.Until(t, time.Minute, "the earlier leader's circuit cleared", func() bool {
		var open *time.Time
		err := pool.QueryRow(ctx, `SELECT circuit_open_until FROM webhooks WHERE id = $1`, hook.ID).Scan(&open)
		return err == nil && open == nil
	})
}

// TestRetriedDeliveryHoldsBackNoLaterEvent: a delivery that failed for good
// and is retried through the API is sent out of its queue's order; the
// conversation's later events do not wait behind it while it fails again
// (for its fresh 24 h horizon, were they to).
func TestRetriedDeliveryHoldsBackNoLaterEvent(t *testing.T) {
	rcv := newHookReceiver(t)
	rcv.refuseAt = map[string]int64{"stuck": 2}
	e := newBacklogEnv(t, rcv)
	ctx := context.Background()
	e.commitTo([]string{"stuck"}, 1, 3)
	var v2 string
	poll.Until(t, time.Minute, "version 2 attempted", func() bool {
		err := e.pool.QueryRow(ctx, `SELECT event_id FROM webhook_deliveries WHERE conversation_id = 'stuck' AND version = 2 AND attempts > 0`).Scan(&v2)
		return err == nil
	})
	// Its horizon runs out at its next attempt (a day is long to wait).
	if _, err := e.pool.Exec(ctx, `UPDATE webhook_deliveries SET first_attempt_at = now() - interval '2 days' WHERE event_id = $1`, v2); err != nil {
		t.Fatal(err)
	}
	last := func() int64 {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.last["stuck"]
	}
	poll.Until(t, time.Minute, "version 3 delivered once 2 failed for good", func() bool { return last() == 3 })
	if err := NewEndpoints(e.pool, e.sealer, Config{}).Retry(ctx, "acc_1", e.webhook, v2); err != nil {
		t.Fatal(err)
	}
	e.commitTo([]string{"stuck"}, 4, 5)
	poll.Until(t, 30*time.Second, "versions 4 and 5 delivered while the retried 2 fails again", func() bool { return last() == 5 })
	poll.Until(t, 30*time.Second, "their outcomes recorded", func() bool {
		var n int
		err := e.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries
			WHERE conversation_id = 'stuck' AND version IN (4, 5) AND status = 'delivered'`).Scan(&n)
		return err == nil && n == 2
	})
	var status string
	var attempts int
	if err := e.pool.QueryRow(ctx, `SELECT status, attempts FROM webhook_deliveries WHERE event_id = $1`, v2).Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != "pending" {
		t.Fatalf("the retried delivery is %s, want pending (still failing, still retried)", status)
	}
	// A later event of the conversation is a head at once, not queued
	// behind the retried one.
	var queued int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries
		WHERE conversation_id = 'stuck' AND status = 'pending' AND next_attempt_at IS NULL`).Scan(&queued); err != nil || queued != 0 {
		t.Fatalf("%d deliveries queued behind the retried one (%v)", queued, err)
	}
}

// TestRetriedDeliveryStartsOver: a delivery retried through the API starts
// over (attempts and horizon), so an open circuit lets its first attempt
// and first retry through at once, as for a new event.
func TestRetriedDeliveryStartsOver(t *testing.T) {
	rcv := newHookReceiver(t)
	convs := convNames("down", 6)
	rcv.refuse = setOf(convs...)
	e := newBacklogEnvWith(t, rcv, func(c *Config) {
		c.CircuitMin, c.CircuitMax, c.RetryMax = time.Hour, time.Hour, time.Hour
	})
	ctx := context.Background()
	e.commitTo(convs, 1, 1)
	poll.Until(t, time.Minute, "the circuit opened", func() bool { return e.d.Stats().OpenCircs == 1 })
	refused := func() int {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.refusedConv["down_0"]
	}
	// Its first retry recorded: from here the open circuit holds it.
	poll.Until(t, time.Minute, "down_0's first retry recorded", func() bool {
		var attempts int
		err := e.pool.QueryRow(ctx, `SELECT attempts FROM webhook_deliveries WHERE conversation_id = 'down_0'`).Scan(&attempts)
		return err == nil && attempts >= 2
	})
	// It fails for good (as after its horizon), then is retried.
	var event string
	if err := e.pool.QueryRow(ctx, `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL
		WHERE conversation_id = 'down_0' RETURNING event_id`).Scan(&event); err != nil {
		t.Fatal(err)
	}
	before := refused()
	if err := NewEndpoints(e.pool, e.sealer, Config{}).Retry(ctx, "acc_1", e.webhook, event); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the retried delivery's first attempt and first retry, through the open circuit", func() bool {
		return refused() >= before+2
	})
	if n := e.d.Stats().OpenCircs; n != 1 {
		t.Fatalf("%d circuits open, want the one still open", n)
	}
}

// TestDueReadTakesAnyAttemptCount: the dispatcher's read computes each
// held retry's backoff from its attempts; a count far past the backoff's
// maximum (a short RetryMax over a 24 h horizon) must not overflow it.
func TestDueReadTakesAnyAttemptCount(t *testing.T) {
	rcv := newHookReceiver(t)
	rcv.refuse = map[string]bool{"many": true}
	e := newBacklogEnvWith(t, rcv, func(c *Config) { c.RetryMax = time.Hour })
	ctx := context.Background()
	e.commitTo([]string{"many"}, 1, 1)
	poll.Until(t, time.Minute, "the delivery attempted", func() bool {
		var n int
		return e.pool.QueryRow(ctx, `SELECT attempts FROM webhook_deliveries`).Scan(&n) == nil && n > 0
	})
	if _, err := e.pool.Exec(ctx, `UPDATE webhook_deliveries SET attempts = 100000, next_attempt_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	rows, err := e.pool.Query(ctx, dueSQL, []string{}, 10, 10, []string{e.webhook}, time.Hour.Seconds(), 0.02)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 1 {
		t.Fatalf("due read: %d rows, %v; want the overdue retry", n, err)
	}
}
