package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

func claim(t testing.TB, s *Store, conv string) int64 {
	t.Helper()
	a, err := s.Activate(context.Background(), conv)
	if err != nil {
		t.Fatal(err)
	}
	return a.Epoch
}

func journalVersions(t testing.TB, s *Store, conv string) []int64 {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT version FROM journal WHERE conversation_id = $1 ORDER BY version`, conv)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestWriterConcurrentAppendsAreContiguousAndBatched(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	reg := prometheus.NewRegistry()
	w := NewWriter(s.Pool(), WriterConfig{}, reg)
	const convs, events = 64, 30
	var wg sync.WaitGroup
	errs := make(chan error, convs)
	for c := range convs {
		conv := fmt.Sprintf("cv_c%d", c)
		epoch := claim(t, s, conv)
		wg.Go(func() {
			// Like an actor: each append awaits its commit before the next.
			for v := int64(1); v <= events; v++ {
				if err := w.Append(ctx, testAppend(conv, epoch, v, message(v, "hi"))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for c := range convs {
		conv := fmt.Sprintf("cv_c%d", c)
		vs := journalVersions(t, s, conv)
		if len(vs) != events {
			t.Fatalf("%s: %d journal rows", conv, len(vs))
		}
		for i, v := range vs {
			if v != int64(i+1) {
				t.Fatalf("%s: versions not contiguous: %v", conv, vs)
			}
		}
		sum, err := s.GetSummary(ctx, conv)
		if err != nil || sum.Version != events || len(sum.Tags) != 2 {
			t.Fatalf("%s read model: %+v %v", conv, sum, err)
		}
		if a, err := s.Activate(ctx, conv); err != nil || a.Head != events {
			t.Fatalf("%s head version %d %v", conv, a.Head, err)
		}
	}
	st := w.Stats()
	if st.Appends != convs*events || st.Batches >= st.Appends {
		t.Fatalf("stats %+v", st)
	}
	// 64 writers at once must share transactions: batches grow with load.
	if st.LargestBatch < 8 {
		t.Fatalf("largest batch %d under 64 concurrent writers", st.LargestBatch)
	}
	t.Logf("stats: %+v, mean batch %.1f", st, float64(st.Appends)/float64(st.Batches))
	if n := testutil.ToFloat64(w.m.results.WithLabelValues(resultOK)); n != convs*events {
		t.Fatalf("appends_total{ok} = %v", n)
	}
	if n := testutil.ToFloat64(w.m.pending); n != 0 {
		t.Fatalf("commit_pending = %v after close", n)
	}
	if n, err := testutil.GatherAndCount(reg, "switchboard_commit_batch_size", "switchboard_commit_duration_seconds", "switchboard_commit_pending", "switchboard_appends_total"); err != nil || n != 4 {
		t.Fatalf("metrics registered: %d %v", n, err)
	}
}

func TestWriterFencing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)

	old := claim(t, s, "cv_f")
	if err := w.Append(ctx, testAppend("cv_f", old, 1, message(1, "one"))); err != nil {
		t.Fatal(err)
	}
	// A second activation claims the conversation: the first is fenced.
	newer := claim(t, s, "cv_f")
	if newer != old+1 {
		t.Fatalf("epochs %d then %d", old, newer)
	}
	err := w.Append(ctx, testAppend("cv_f", old, 2, message(2, "forked"), IdempotencyKey{"client:cv_f", "k-old"}))
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("stale activation append: %v, want ErrFenced", err)
	}
	// Nothing of it was written.
	if vs := journalVersions(t, s, "cv_f"); len(vs) != 1 {
		t.Fatalf("journal after fenced append: %v", vs)
	}
	if _, err := s.GetItemAt(ctx, "cv_f", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("item of fenced append: %v", err)
	}
	if _, _, found, _ := s.LookupIdempotency(ctx, "client:cv_f", "k-old"); found {
		t.Fatal("key of fenced append stored")
	}
	if sum, _ := s.GetSummary(ctx, "cv_f"); sum.Version != 1 {
		t.Fatalf("read model moved by fenced append: %d", sum.Version)
	}
	// The live activation continues from the committed head; a version gap
	// or a repeated version is fenced as well.
	if err := w.Append(ctx, testAppend("cv_f", newer, 2, message(2, "two"))); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{2, 4} {
		if err := w.Append(ctx, testAppend("cv_f", newer, v, nil)); !errors.Is(err, ErrFenced) {
			t.Fatalf("append v%d at head 2: %v", v, err)
		}
	}
	// A conversation never claimed has no head: fenced.
	if err := w.Append(ctx, testAppend("cv_unclaimed", 1, 1, nil)); !errors.Is(err, ErrFenced) {
		t.Fatalf("unclaimed: %v", err)
	}
	if it, err := s.GetItemAt(ctx, "cv_f", 2); err != nil || it.Body != "two" {
		t.Fatalf("item 2: %+v %v", it, err)
	}
}

// awaitEnqueued makes the test wait for n accepted appends.
func withEnqueueSignal(w *Writer, n int) <-chan struct{} {
	ch := make(chan struct{}, n)
	w.enqueued = ch
	return ch
}

func TestWriterBatchOutcomesAreIndividual(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// The batch is flushed exactly when its 4 appends are pending (the
	// window never elapses), so all four share one transaction.
	w := NewWriter(s.Pool(), WriterConfig{MaxBatch: 4, Window: time.Hour}, nil)
	defer w.Close(ctx)
	key := IdempotencyKey{"ext:ib_t", "sms-1"}

	ea, eb, ec, ed := claim(t, s, "cv_a"), claim(t, s, "cv_b"), claim(t, s, "cv_c"), claim(t, s, "cv_d")
	claim(t, s, "cv_c") // cv_c's activation ec is stale
	seed := NewWriter(s.Pool(), WriterConfig{}, nil)
	if err := seed.Append(ctx, testAppend("cv_a", ea, 1, message(1, "first"), key)); err != nil {
		t.Fatal(err)
	}
	if err := seed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	before := w.Stats().Batches

	appends := []Append{
		testAppend("cv_a", ea, 2, message(2, "redelivered"), key),                                                          // duplicate
		testAppend("cv_b", eb, 1, message(1, "b"), IdempotencyKey{"ext:ib_t", "sms-2"}),                                    // ok
		testAppend("cv_c", ec, 1, message(1, "c")),                                                                         // fenced
		testAppend("cv_d", ed, 1, message(1, "d"), IdempotencyKey{"client:cv_d", "x"}, IdempotencyKey{"client:cv_d", "x"}), // ok, key given twice
	}
	errs := make([]error, len(appends))
	var wg sync.WaitGroup
	for i, a := range appends {
		wg.Go(func() { errs[i] = w.Append(ctx, a) })
	}
	wg.Wait()
	if got := w.Stats().Batches - before; got != 1 {
		t.Fatalf("%d batches, want 1", got)
	}
	if !errors.Is(errs[0], ErrDuplicate) || errs[1] != nil || !errors.Is(errs[2], ErrFenced) || errs[3] != nil {
		t.Fatalf("outcomes: %v", errs)
	}
	if vs := journalVersions(t, s, "cv_a"); len(vs) != 1 {
		t.Fatalf("duplicate wrote to the journal: %v", vs)
	}
	if _, err := s.GetItemAt(ctx, "cv_a", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("duplicate wrote an item: %v", err)
	}
	if sum, _ := s.GetSummary(ctx, "cv_a"); sum.Version != 1 {
		t.Fatalf("duplicate moved the read model: %d", sum.Version)
	}
	if a, _ := s.Activate(ctx, "cv_a"); a.Head != 1 {
		t.Fatalf("duplicate moved the head: %d", a.Head)
	}
	if vs := journalVersions(t, s, "cv_c"); len(vs) != 0 {
		t.Fatalf("fenced wrote to the journal: %v", vs)
	}
	for _, c := range []string{"cv_b", "cv_d"} {
		if vs := journalVersions(t, s, c); len(vs) != 1 {
			t.Fatalf("%s journal: %v", c, vs)
		}
	}
	if conv, v, found, err := s.LookupIdempotency(ctx, "ext:ib_t", "sms-2"); err != nil || !found || conv != "cv_b" || v != 1 {
		t.Fatalf("key of cv_b: %s %d %v %v", conv, v, found, err)
	}
	if conv, v, found, err := s.LookupIdempotency(ctx, key.Scope, key.Key); err != nil || !found || conv != "cv_a" || v != 1 {
		t.Fatalf("original key: %s %d %v %v", conv, v, found, err)
	}
}

func TestWriterDefersSameConversationAndSameKey(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{MaxBatch: 2, Window: time.Millisecond}, nil)
	defer w.Close(ctx)
	e1, e2 := claim(t, s, "cv_x"), claim(t, s, "cv_y")
	// Two deliveries of one version of cv_x, and two conversations claiming
	// one key: each pair can never share a batch, and the second of each
	// pair must lose once the first has committed.
	key := IdempotencyKey{"ext:ib_t", "same"}
	appends := []Append{
		testAppend("cv_x", e1, 1, nil),
		testAppend("cv_x", e1, 1, nil),
		testAppend("cv_y", e2, 1, nil, key),
		testAppend("cv_z", claim(t, s, "cv_z"), 1, nil, key),
	}
	errs := make([]error, len(appends))
	var wg sync.WaitGroup
	for i, a := range appends {
		wg.Go(func() { errs[i] = w.Append(ctx, a) })
	}
	wg.Wait()
	var ok, fenced, dup int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrFenced):
			fenced++
		case errors.Is(err, ErrDuplicate):
			dup++
		default:
			t.Fatal(err)
		}
	}
	if ok != 2 || fenced != 1 || dup != 1 {
		t.Fatalf("outcomes %v", errs)
	}
	if vs := journalVersions(t, s, "cv_x"); len(vs) != 1 {
		t.Fatalf("cv_x journal %v", vs)
	}
}

func TestWriterCloseFlushesPending(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// Neither the size nor the window would ever flush: only Close does.
	w := NewWriter(s.Pool(), WriterConfig{MaxBatch: 1000, Window: time.Hour}, nil)
	const n = 10
	accepted := withEnqueueSignal(w, n)
	errs := make(chan error, n)
	for i := range n {
		conv := fmt.Sprintf("cv_close%d", i)
		epoch := claim(t, s, conv)
		go func() { errs <- w.Append(ctx, testAppend(conv, epoch, 1, nil)) }()
	}
	for range n {
		<-accepted
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM journal").Scan(&rows); err != nil || rows != n {
		t.Fatalf("journal rows after close: %d %v", rows, err)
	}
	if err := w.Append(ctx, testAppend("cv_late", 1, 1, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestWriterCanceledBeforeFlushIsNotWritten(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{MaxBatch: 1000, Window: time.Hour}, nil)
	accepted := withEnqueueSignal(w, 1)
	cctx, cancel := context.WithCancel(ctx)
	epoch := claim(t, s, "cv_cancel")
	res := make(chan error, 1)
	go func() { res <- w.Append(cctx, testAppend("cv_cancel", epoch, 1, nil)) }()
	<-accepted
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled append: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if vs := journalVersions(t, s, "cv_cancel"); len(vs) != 0 {
		t.Fatalf("append canceled before its batch was built was written: %v", vs)
	}
	if n := testutil.ToFloat64(w.m.results.WithLabelValues(resultCanceled)); n != 1 {
		t.Fatalf("appends_total{canceled} = %v", n)
	}
}

func TestWriterWholeBatchFailure(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	pool, err := pgxpool.New(ctx, s.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(pool, WriterConfig{}, nil)
	defer w.Close(ctx)
	epoch := claim(t, s, "cv_down")
	pool.Close() // the database becomes unreachable for this writer
	err = w.Append(ctx, testAppend("cv_down", epoch, 1, nil))
	if err == nil || errors.Is(err, ErrFenced) || errors.Is(err, ErrDuplicate) {
		t.Fatalf("append on a dead pool: %v, want a wrapped database error", err)
	}
}

// listenOn holds a pooled connection that LISTENs on channel until the test ends.
func listenOn(t *testing.T, s *Store, channel string) *pgxpool.Conn {
	t.Helper()
	conn, err := s.Pool().Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	if _, err := conn.Exec(context.Background(), "LISTEN "+channel); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestWriterNotifiesJournalAppended(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	conn := listenOn(t, s, "journal_appended")
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	if err := w.Append(ctx, testAppend("cv_n", claim(t, s, "cv_n"), 1, message(1, "hello"))); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Conn().WaitForNotification(ctx)
	if err != nil || n.Channel != "journal_appended" {
		t.Fatalf("notification: %+v %v", n, err)
	}
	// The journal row carries what the indexer needs.
	var evType, body string
	if err := s.Pool().QueryRow(ctx, `SELECT event_type, event->'item'->>'body' FROM journal WHERE conversation_id = 'cv_n'`).
		Scan(&evType, &body); err != nil || evType != string(conversation.EventInbound) || body != "hello" {
		t.Fatalf("journal row: %s %s %v", evType, body, err)
	}
}

// The journal row is the whole event, summary included, as the webhooks
// read it, though the writer sends the summary once, beside the event; an
// event without a summary stays without one.
func TestJournalEventIsTheWholeEvent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	for _, withSummary := range []bool{true, false} {
		conv := fmt.Sprintf("cv_whole_%t", withSummary)
		a := testAppend(conv, claim(t, s, conv), 1, message(1, `say "hi"`))
		if withSummary {
			a.Event.Summary = &a.Summary
		}
		if err := w.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(&a.Event)
		if err != nil {
			t.Fatal(err)
		}
		var same, hasSummary bool
		if err := s.Pool().QueryRow(ctx, `SELECT event = $2::jsonb, event ? 'summary' FROM journal WHERE conversation_id = $1`,
			conv, string(want)).Scan(&same, &hasSummary); err != nil {
			t.Fatal(err)
		}
		if !same || hasSummary != withSummary {
			var got string
			_ = s.Pool().QueryRow(ctx, `SELECT event::text FROM journal WHERE conversation_id = $1`, conv).Scan(&got)
			t.Fatalf("with summary %t: journal event\n%s\nwant\n%s", withSummary, got, want)
		}
	}
}

func TestAppendValidation(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	bad := []Append{
		testAppend("", 1, 1, nil),
		func() Append { a := testAppend("cv_v", 1, 2, nil); a.Summary.Version = 1; return a }(),
		testAppend("cv_v", 1, 0, nil),
		testAppend("cv_v", 1, 1, message(2, "future seq")),
		testAppend("cv_v", 1, 1, nil, IdempotencyKey{"", "k"}),
	}
	for i, a := range bad {
		if err := w.Append(ctx, a); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad append %d: %v", i, err)
		}
	}
}

func TestSnapshotAndJournalTail(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	epoch := claim(t, s, "cv_s")
	for v := int64(1); v <= 30; v++ {
		if err := w.Append(ctx, testAppend("cv_s", epoch, v, message(v, fmt.Sprint("m", v)))); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := s.Activate(ctx, "cv_s"); err != nil || a.Snapshot != nil || len(a.Events) != 30 {
		t.Fatalf("activation before any snapshot: snapshot %q, %d events, %v", a.Snapshot, len(a.Events), err)
	}
	w.SaveSnapshot("cv_s", 25, []byte(`{"v":25}`))
	// Close writes the pending snapshot.
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A late, older snapshot (a stale activation passivating) is ignored.
	late := NewWriter(s.Pool(), WriterConfig{}, nil)
	late.SaveSnapshot("cv_s", 20, []byte(`{"v":20}`))
	if err := late.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s.JournalRowsRead.Store(0)
	a, err := s.Activate(ctx, "cv_s")
	if err != nil || a.SnapshotVersion != 25 || string(a.Snapshot) != `{"v":25}` || a.Head != 30 {
		t.Fatalf("snapshot: %d %s head %d %v", a.SnapshotVersion, a.Snapshot, a.Head, err)
	}
	evs := a.Events
	if len(evs) != 5 || evs[0].Version != 26 || evs[4].Version != 30 || evs[4].Item == nil || evs[4].Item.Body != "m30" {
		t.Fatalf("tail: %+v", evs)
	}
	if n := s.JournalRowsRead.Load(); n != 5 {
		t.Fatalf("journal rows read for the tail: %d, want 5", n)
	}
}

func TestListItemsPagingWithCallUpdatedInPlace(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	epoch := claim(t, s, "cv_i")
	call := func(seq int64, state conversation.CallState) *conversation.Item {
		return &conversation.Item{ID: "call_1", Seq: seq, Direction: conversation.Inbound, Kind: conversation.KindCall,
			Channel: conversation.ChannelVoice, CallID: "c1", State: state}
	}
	for v := int64(1); v <= 7; v++ {
		it := message(v, fmt.Sprint("m", v))
		if v == 3 {
			it = call(3, conversation.CallRinging)
		}
		if err := w.Append(ctx, testAppend("cv_i", epoch, v, it)); err != nil {
			t.Fatal(err)
		}
	}
	// Version 8 changes the call first appended at seq 3.
	a := testAppend("cv_i", epoch, 8, call(3, conversation.CallCompleted))
	a.Event.Type = conversation.EventCall
	if err := w.Append(ctx, a); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	var before int64
	pages := 0
	for {
		items, next, err := s.ListItems(ctx, "cv_i", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range items {
			seqs = append(seqs, it.Seq)
			if it.Seq == 3 && (it.Kind != conversation.KindCall || it.State != conversation.CallCompleted) {
				t.Fatalf("call item not updated in place: %+v", it)
			}
		}
		if next == nil {
			break
		}
		before = *next
	}
	if fmt.Sprint(seqs) != "[7 6 5 4 3 2 1]" || pages != 3 {
		t.Fatalf("paged seqs %v in %d pages", seqs, pages)
	}
	if items, next, err := s.ListItems(ctx, "cv_i", 0, 7); err != nil || len(items) != 7 || next != nil {
		t.Fatalf("exact page: %d items, next %v, %v", len(items), next, err)
	}
	if it, err := s.GetItemAt(ctx, "cv_i", 3); err != nil || it.State != conversation.CallCompleted {
		t.Fatalf("item at 3: %+v %v", it, err)
	}
}

// A new activation claiming the conversation while an append of the old one
// is in flight: the append commits only if it was ordered before the claim,
// which the claim then reports as the head version. No fork either way.
func TestWriterFencingRacesClaim(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w.Close(ctx)
	for i := range 40 {
		conv := fmt.Sprintf("cv_race%d", i)
		old := claim(t, s, conv)
		var appendErr, claimErr error
		var claimedVersion int64
		var wg sync.WaitGroup
		wg.Go(func() { appendErr = w.Append(ctx, testAppend(conv, old, 1, nil)) })
		wg.Go(func() {
			var a Activation
			a, claimErr = s.Activate(ctx, conv)
			claimedVersion = a.Head
		})
		wg.Wait()
		if claimErr != nil {
			t.Fatal(claimErr)
		}
		switch {
		case appendErr == nil && claimedVersion == 1:
		case errors.Is(appendErr, ErrFenced) && claimedVersion == 0:
		default:
			t.Fatalf("%s: append %v, claim saw version %d", conv, appendErr, claimedVersion)
		}
		if vs := journalVersions(t, s, conv); int64(len(vs)) != claimedVersion {
			t.Fatalf("%s: journal %v, claim saw version %d", conv, vs, claimedVersion)
		}
	}
}

// Two writers (two nodes) committing the same key for different
// conversations at once: exactly one wins, the other is a duplicate — the
// loser's batch is re-run after the unique violation, not failed.
func TestWritersOnTwoNodesRaceForOneKey(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w1 := NewWriter(s.Pool(), WriterConfig{}, nil)
	w2 := NewWriter(s.Pool(), WriterConfig{}, nil)
	defer w1.Close(ctx)
	defer w2.Close(ctx)
	for i := range 30 {
		key := IdempotencyKey{"ext:ib_t", fmt.Sprint("race-", i)}
		c1, c2 := fmt.Sprintf("cv_k%d_a", i), fmt.Sprintf("cv_k%d_b", i)
		e1, e2 := claim(t, s, c1), claim(t, s, c2)
		var err1, err2 error
		var wg sync.WaitGroup
		wg.Go(func() { err1 = w1.Append(ctx, testAppend(c1, e1, 1, nil, key)) })
		wg.Go(func() { err2 = w2.Append(ctx, testAppend(c2, e2, 1, nil, key)) })
		wg.Wait()
		ok1, ok2 := err1 == nil, err2 == nil
		if ok1 == ok2 || (!ok1 && !errors.Is(err1, ErrDuplicate)) || (!ok2 && !errors.Is(err2, ErrDuplicate)) {
			t.Fatalf("race %d: %v / %v", i, err1, err2)
		}
	}
	t.Logf("batches re-run after a key conflict: %d", w1.Stats().Retries+w2.Stats().Retries)
}
