package persistence

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-dev/switchboard/persistence/pgparams"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// benchStore opens the benchmark database: $SWITCHBOARD_BENCH_DATABASE_URL
// when set (use a server with fsync on to measure durable commits — the
// test server runs with fsync off, which flatters single commits), else a
// fresh database on the test server.
func benchStore(b *testing.B) *Store {
	b.Helper()
	url := os.Getenv("SWITCHBOARD_BENCH_DATABASE_URL")
	if url == "" {
		url = pgtest.NewDatabase(b)
	}
	ctx := context.Background()
	if err := Migrate(ctx, url); err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// benchAppends drives the writer like many conversation actors: each
// goroutine owns a conversation and awaits every commit before the next.
func benchAppends(b *testing.B, cfg WriterConfig) {
	benchAppendsWith(b, cfg, appendStatement)
}

func benchAppendsWith(b *testing.B, cfg WriterConfig, stmt batchStatement) {
	ctx := context.Background()
	s := benchStore(b)
	w := NewWriter(s.Pool(), cfg, nil)
	w.stmt = stmt
	run := rand.Text()[:8] // conversation ids unique across runs on a shared database
	var next atomic.Int64
	b.SetParallelism(64) // 64 × GOMAXPROCS concurrent conversations
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conv := fmt.Sprintf("cv_bench_%s_%d", run, next.Add(1))
		a, err := s.Activate(ctx, conv)
		if err != nil {
			b.Error(err)
			return
		}
		epoch := a.Epoch
		for v := int64(1); pb.Next(); v++ {
			if err := w.Append(ctx, testAppend(conv, epoch, v, message(v, "benchmark message body of a typical length"))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	st := w.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Batches), "appends/batch")
	}
}

// BenchmarkAppendSingleCommit: one transaction per append, up to 8 at once
// over the pool — what conversation actors opening their own transactions
// would do.
func BenchmarkAppendSingleCommit(b *testing.B) {
	benchAppends(b, WriterConfig{MaxBatch: 1, Committers: 8})
}

// BenchmarkAppendGroupCommit: the same load through the group-commit writer
// with its defaults.
func BenchmarkAppendGroupCommit(b *testing.B) {
	benchAppends(b, WriterConfig{})
}

// BenchmarkAppendJournalOnly is the floor the group-commit statement is
// measured against: the same writer, batching and transaction (BEGIN,
// statement, NOTIFY, COMMIT in one round trip), but a statement that only
// inserts the journal row — no fencing head, read model, item or keys. Run
// it beside BenchmarkAppendGroupCommit: the gap is what the real statement
// costs.
func BenchmarkAppendJournalOnly(b *testing.B) {
	benchAppendsWith(b, WriterConfig{}, journalOnlyStatement)
}

var journalOnlyStatement = batchStatement{
	name: "switchboard_bench_journal_only",
	sql: `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[])
		WITH ORDINALITY AS t(conv, version, account_id, inbox_id, event_type, event, summary, with_summary, idx)
),
journal_rows AS (
	INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event)
	SELECT conv, version, account_id, inbox_id, event_type,
		CASE WHEN with_summary THEN event::jsonb || jsonb_build_object('summary', summary::jsonb) ELSE event::jsonb END
	FROM input
)
SELECT idx, true FROM input`,
	encode: func(p *pgparams.Params, batch []*request) {
		col := func(oid uint32, f func(r *request)) {
			p.Array(oid)
			for _, r := range batch {
				f(r)
			}
			p.End()
		}
		col(pgparams.TextOID, func(r *request) { p.Text(r.a.Summary.ID) })
		col(pgparams.Int8OID, func(r *request) { p.Int8(r.a.Event.Version) })
		col(pgparams.TextOID, func(r *request) { p.Text(r.a.Summary.AccountID) })
		col(pgparams.TextOID, func(r *request) { p.Text(r.a.Summary.InboxID) })
		col(pgparams.TextOID, func(r *request) { p.Text(string(r.a.Event.Type)) })
		col(pgparams.TextOID, func(r *request) { p.Bytes(r.event) })
		col(pgparams.TextOID, func(r *request) { p.Bytes(r.sum) })
		col(pgparams.BoolOID, func(r *request) { p.Bool(r.withSummary) })
	},
}

// BenchmarkAppendIdle is one conversation appending alone, each append
// awaited before the next: ns/op is an idle node's commit latency. Natural
// group commit sends a lone append at once; a fixed batching window would
// add itself to every op here.
func BenchmarkAppendIdle(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	conv := "cv_idle_" + rand.Text()[:8]
	a, err := s.Activate(ctx, conv)
	if err != nil {
		b.Fatal(err)
	}
	epoch := a.Epoch
	b.ResetTimer()
	for v := int64(1); v <= int64(b.N); v++ {
		if err := w.Append(ctx, testAppend(conv, epoch, v, message(v, "benchmark message body of a typical length"))); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendAfterIdle measures a lone durable write after 10 ms of
// idleness as a ladder from the floor to the real append, each step adding
// one layer, taken in turn so that all share the host's noise (an op is one
// of each; the metrics are their medians):
//
//   - floor: one journal row inserted and committed in one round trip;
//   - journal-only: the journal-only statement (see above), same round trip;
//   - writer-quiet: that statement through the writer, no journal notice;
//   - writer: the same with its notice (NOTIFY) in the round trip;
//   - append: the writer's real statement.
//
// Point SWITCHBOARD_BENCH_DATABASE_URL at a server with fsync on (make
// run's, for one), or nothing here is a durable commit.
//
//	go test -run '^$' -bench AppendAfterIdle -benchtime 150x ./persistence
func BenchmarkAppendAfterIdle(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	quiet := NewWriter(s.Pool(), WriterConfig{NoticeEvery: time.Hour}, nil)
	quiet.stmt = journalOnlyStatement
	journalOnly := NewWriter(s.Pool(), WriterConfig{}, nil)
	journalOnly.stmt = journalOnlyStatement
	full := NewWriter(s.Pool(), WriterConfig{}, nil)
	run := rand.Text()[:8]
	conv := "cv_after_idle_" + run
	a, err := s.Activate(ctx, conv)
	if err != nil {
		b.Fatal(err)
	}
	appendOf := func(step string, epoch, v int64) Append {
		return testAppend(conv+step, epoch, v, message(v, "benchmark message body of a typical length"))
	}
	pipeline := func(queue func(*pgx.Batch)) error {
		batch := &pgx.Batch{}
		batch.Queue("BEGIN")
		queue(batch)
		batch.Queue("COMMIT")
		return s.Pool().SendBatch(ctx, batch).Close()
	}
	steps := []struct {
		name string
		op   func(v int64) error
	}{
		{"floor", func(v int64) error {
			return pipeline(func(batch *pgx.Batch) {
				batch.Queue(`INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event)
					VALUES ($1, $2, 'acc_t', 'ib_t', 'message.inbound', $3::jsonb)`, conv+"_floor", v,
					[]byte(`{"type":"message.inbound","body":"benchmark message body of a typical length"}`))
			})
		}},
		{"journal-only", func(v int64) error {
			r, err := newRequest(ctx, appendOf("_direct", 0, v))
			if err != nil {
				return err
			}
			var p pgparams.Params
			journalOnlyStatement.encode(&p, []*request{r})
			conn, err := s.Pool().Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			st, err := journalOnly.statements(ctx, conn.Conn())
			if err != nil {
				return err
			}
			batch := &pgconn.Batch{}
			batch.ExecStatement(st.begin, nil, nil, nil)
			batch.ExecStatement(st.batch, p.Values(), p.Formats(), nil)
			batch.ExecStatement(st.commit, nil, nil, nil)
			_, err = conn.Conn().PgConn().ExecBatch(ctx, batch).ReadAll()
			return err
		}},
		{"writer-quiet", func(v int64) error { return quiet.Append(ctx, appendOf("_quiet", 0, v)) }},
		{"writer", func(v int64) error { return journalOnly.Append(ctx, appendOf("_writer", 0, v)) }},
		{"append", func(v int64) error { return full.Append(ctx, appendOf("", a.Epoch, v)) }},
	}
	lat := make([][]time.Duration, len(steps))
	b.ResetTimer()
	for v := int64(1); v <= int64(b.N); v++ {
		for i, step := range steps {
			time.Sleep(10 * time.Millisecond) // the workload: an idle node
			start := time.Now()
			if err := step.op(v); err != nil {
				b.Fatalf("%s: %v", step.name, err)
			}
			lat[i] = append(lat[i], time.Since(start))
		}
	}
	b.StopTimer()
	for i, step := range steps {
		slices.Sort(lat[i])
		b.ReportMetric(float64(lat[i][len(lat[i])/2].Microseconds()), step.name+"-p50-µs")
	}
	for _, w := range []*Writer{quiet, journalOnly, full} {
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
