// Package listentest runs a notice hub for a test, as a node runs one.
package listentest

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/persistence/listen"
)

// Run starts a hub on pool's database and stops it when the test ends.
func Run(tb testing.TB, pool *pgxpool.Pool) *listen.Hub {
	tb.Helper()
	hub := listen.New(pool.Config().ConnConfig, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { hub.Run(ctx) })
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return hub
}
