package persistence

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

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
	ctx := context.Background()
	s := benchStore(b)
	w := NewWriter(s.Pool(), cfg, nil)
	run := rand.Text()[:8] // conversation ids unique across runs on a shared database
	var next atomic.Int64
	b.SetParallelism(64) // 64 × GOMAXPROCS concurrent conversations
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conv := fmt.Sprintf("cv_bench_%s_%d", run, next.Add(1))
		epoch, _, err := s.ClaimEpoch(ctx, conv)
		if err != nil {
			b.Error(err)
			return
		}
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
