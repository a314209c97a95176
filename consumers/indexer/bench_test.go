package indexer

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/persistence/listen/listentest"
	"github.com/switchboard-dev/switchboard/search"
	"github.com/switchboard-dev/switchboard/search/pgsearch"
	"github.com/switchboard-dev/switchboard/search/searchtest"
)

// stamp records when the backend accepted each document.
type stamp struct {
	search.Backend
	mu sync.Mutex
	at map[string]time.Time
}

func (s *stamp) Upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	bad, err := s.Backend.Upsert(ctx, docs)
	if err == nil {
		now := time.Now()
		s.mu.Lock()
		for _, d := range docs {
			if _, ok := s.at[d.ID]; !ok {
				s.at[d.ID] = now
			}
		}
		s.mu.Unlock()
	}
	return bad, err
}

func (s *stamp) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func benchEnv(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", name, v)
		}
		return n
	}
	return def
}

// BenchmarkIndexLag measures commit → accepted-by-the-backend latency with
// the PostgreSQL backend and the default configuration, while writers
// commit journal batches (with NOTIFY, like the group-commit writer) at
// INDEX_BENCH_RATE messages/s (default 1000) for INDEX_BENCH_SECONDS
// (default 5). Five writers commit concurrently, so commits interleave and
// the horizon logic is exercised. It reports p50, p99 and max lag.
//
//	go test -run '^$' -bench BenchmarkIndexLag -benchtime 1x ./consumers/indexer/
func BenchmarkIndexLag(b *testing.B) {
	rate := benchEnv(b, "INDEX_BENCH_RATE", 1000)
	seconds := benchEnv(b, "INDEX_BENCH_SECONDS", 5)
	const writers, tick = 5, 5 * time.Millisecond
	for b.Loop() {
		pool, _ := searchtest.NewPool(b)
		st := &stamp{Backend: pgsearch.New(pool), at: map[string]time.Time{}}
		ix := New(pool, listentest.Run(b, pool), st, Config{}, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = ix.Run(ctx); close(done) }()

		committed := make([]map[string]time.Time, writers)
		perTick := float64(rate) * tick.Seconds() / writers
		end := time.Now().Add(time.Duration(seconds) * time.Second)
		var wg sync.WaitGroup
		for w := range writers {
			committed[w] = map[string]time.Time{}
			wg.Go(func() {
				t := time.NewTicker(tick)
				defer t.Stop()
				seq, acc := 0, 0.0
				for time.Now().Before(end) {
					<-t.C
					acc += perTick
					n := int(acc)
					acc -= float64(n)
					if n == 0 {
						continue
					}
					rows := make([]row, n)
					for i := range rows {
						seq++
						rows[i] = message(fmt.Sprintf("w%d_%d", w, seq), fmt.Sprintf("acc_%d", seq%50), "ib", 1, fmt.Sprintf("hello lag test %d", seq))
					}
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if err := insertRows(ctx, tx, rows); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, "NOTIFY "+journal.Channel)
						return err
					})
					if err != nil {
						b.Errorf("commit: %v", err)
						return
					}
					now := time.Now()
					for _, r := range rows {
						committed[w][itemID(r.conv, 1)] = now
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for _, m := range committed {
			total += len(m)
		}
		deadline := time.Now().Add(time.Minute)
		for st.count() < total && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if st.count() < total {
			b.Fatalf("indexed %d of %d within a minute", st.count(), total)
		}
		var lags []time.Duration
		for _, m := range committed {
			for id, c := range m {
				lags = append(lags, max(0, st.at[id].Sub(c)))
			}
		}
		slices.Sort(lags)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lags[len(lags)/2]), "p50-lag-ms")
		b.ReportMetric(ms(lags[len(lags)*99/100]), "p99-lag-ms")
		b.ReportMetric(ms(lags[len(lags)-1]), "max-lag-ms")
		b.ReportMetric(float64(total)/float64(seconds), "msgs/s")
	}
}
