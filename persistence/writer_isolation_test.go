package persistence

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWriterIsolatesAppendsRefusedForTheirData puts two appends PostgreSQL
// refuses for their own values — a NUL in a message body (22P05 on the
// jsonb cast) and a contact key too long for the read model's unique index
// (54000) — into one batch with six good appends of other accounts. The
// good ones commit once, with no retry and no error; each bad one alone is
// answered ErrInvalid, with text about its own append only, and nothing of
// it is written.
func TestWriterIsolatesAppendsRefusedForTheirData(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const good = 6
	// All eight appends are pending before the batch is built: it is
	// flushed exactly when the eighth arrives.
	w := NewWriter(s.Pool(), WriterConfig{MaxBatch: good + 2, Window: time.Hour}, nil)
	defer w.Close(ctx)

	type tc struct {
		a   Append
		bad bool
	}
	var cases []tc
	for i := range good {
		conv := fmt.Sprintf("cv_good%d", i)
		a := testAppend(conv, claim(t, s, conv), 1, message(1, "hello"), IdempotencyKey{"ext:ib_good", conv})
		a.Summary.AccountID = fmt.Sprintf("acc_good%d", i)
		cases = append(cases, tc{a: a})
	}
	nul := testAppend("cv_nul", claim(t, s, "cv_nul"), 1, message(1, "hi\x00there"))
	nul.Summary.AccountID = "acc_bad"
	long := testAppend("cv_long", claim(t, s, "cv_long"), 1, message(1, "fine body"))
	long.Summary.AccountID = "acc_bad"
	// Random text does not compress below the btree's ~2.7 kB row limit.
	var key strings.Builder
	for range 400 {
		key.WriteString(rand.Text())
	}
	long.ContactKey = "email:" + key.String()
	// The bad ones in the middle: every split has good appends beside them.
	cases = append(cases[:3], append([]tc{{a: nul, bad: true}, {a: long, bad: true}}, cases[3:]...)...)

	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { errs[i] = w.Append(ctx, c.a) })
	}
	wg.Wait()

	for i, c := range cases {
		id := c.a.Summary.ID
		switch {
		case c.bad && !errors.Is(errs[i], ErrInvalid):
			t.Errorf("%s: %v, want ErrInvalid", id, errs[i])
		case c.bad:
			msg := errs[i].Error()
			if strings.Contains(msg, "ERROR") || strings.Contains(msg, "batch") || strings.Contains(msg, "cv_good") {
				t.Errorf("%s: the refusal leaks the database's or another append's text: %q", id, msg)
			}
			if vs := journalVersions(t, s, id); len(vs) != 0 {
				t.Errorf("%s: refused append wrote journal rows %v", id, vs)
			}
			if a, _ := s.Activate(ctx, id); a.Head != 0 {
				t.Errorf("%s: refused append moved the head to %d", id, a.Head)
			}
		case errs[i] != nil:
			t.Errorf("%s: %v, want committed", id, errs[i])
		default:
			if vs := journalVersions(t, s, id); len(vs) != 1 || vs[0] != 1 {
				t.Errorf("%s: journal %v, want [1]", id, vs)
			}
			if sum, err := s.GetSummary(ctx, id); err != nil || sum.Version != 1 || sum.AccountID != c.a.Summary.AccountID {
				t.Errorf("%s: read model %+v %v", id, sum, err)
			}
			if conv, _, found, err := s.LookupIdempotency(ctx, "ext:ib_good", id); err != nil || !found || conv != id {
				t.Errorf("%s: idempotency key %s %v %v", id, conv, found, err)
			}
		}
	}
	st := w.Stats()
	if st.Retries != 0 {
		t.Errorf("%d batch retries, want 0: nothing here is resolved by a re-run", st.Retries)
	}
	if st.Refused != 2 || st.Splits == 0 {
		t.Errorf("refused %d (want 2), splits %d (want some)", st.Refused, st.Splits)
	}
	var rows int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM journal").Scan(&rows); err != nil || rows != good {
		t.Errorf("journal rows %d %v, want %d: each good append committed once", rows, err, good)
	}
	t.Logf("stats %+v", st)
}

// TestWriterSplitKeepsOtherOutcomes: in a batch split around a refused
// append, a duplicate and a fenced append beside it keep their own answers.
func TestWriterSplitKeepsOtherOutcomes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{MaxBatch: 4, Window: time.Hour}, nil)
	defer w.Close(ctx)
	key := IdempotencyKey{"ext:ib_t", "seen"}
	ea := claim(t, s, "cv_a")
	seed := NewWriter(s.Pool(), WriterConfig{}, nil)
	if err := seed.Append(ctx, testAppend("cv_a", ea, 1, nil, key)); err != nil {
		t.Fatal(err)
	}
	if err := seed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ec := claim(t, s, "cv_c")
	claim(t, s, "cv_c") // ec is stale
	appends := []Append{
		testAppend("cv_a", ea, 2, nil, key),                            // duplicate
		testAppend("cv_b", claim(t, s, "cv_b"), 1, message(1, "\x00")), // refused
		testAppend("cv_c", ec, 1, nil),                                 // fenced
		testAppend("cv_d", claim(t, s, "cv_d"), 1, nil),                // ok
	}
	errs := make([]error, len(appends))
	var wg sync.WaitGroup
	for i, a := range appends {
		wg.Go(func() { errs[i] = w.Append(ctx, a) })
	}
	wg.Wait()
	if !errors.Is(errs[0], ErrDuplicate) || !errors.Is(errs[1], ErrInvalid) || !errors.Is(errs[2], ErrFenced) || errs[3] != nil {
		t.Fatalf("outcomes: %v", errs)
	}
	if st := w.Stats(); st.Retries != 0 || st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWriterSnapshotsOffThePath: SaveSnapshot returns at once, the newest of
// several snapshots of one conversation wins, an older one never replaces
// a stored newer one, and Close writes what is pending.
func TestWriterSnapshotsOffThePath(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	seed := NewWriter(s.Pool(), WriterConfig{}, nil)
	seed.SaveSnapshot("cv_old", 9, []byte("nine"))
	if err := seed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	for v := int64(1); v <= 5; v++ {
		if !w.SaveSnapshot("cv_s", v, []byte(fmt.Sprint("v", v))) {
			t.Fatal("snapshot refused by an open writer")
		}
	}
	w.SaveSnapshot("cv_old", 3, []byte("three"))
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Activate(ctx, "cv_s"); err != nil || a.SnapshotVersion != 5 || string(a.Snapshot) != "v5" {
		t.Fatalf("snapshot cv_s: %d %q %v", a.SnapshotVersion, a.Snapshot, err)
	}
	if a, err := s.Activate(ctx, "cv_old"); err != nil || a.SnapshotVersion != 9 || string(a.Snapshot) != "nine" {
		t.Fatalf("an older snapshot replaced a newer one: %d %q %v", a.SnapshotVersion, a.Snapshot, err)
	}
	if w.SaveSnapshot("cv_s", 6, nil) {
		t.Fatal("a closed writer took a snapshot")
	}
}
