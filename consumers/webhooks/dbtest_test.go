package webhooks

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

// newAccountDB is a fresh migrated database holding one account, acc_1,
// with a pool onto it and a sealer for its webhooks' secrets.
func newAccountDB(t testing.TB, name string) (*pgxpool.Pool, *Sealer) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := persistence.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `INSERT INTO accounts (id, name) VALUES ('acc_1', $1)`, name); err != nil {
		t.Fatal(err)
	}
	sealer, err := NewSealer(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return pool, sealer
}

// newHookDB is newAccountDB with one webhook of acc_1, to url: the webhook
// and its secret.
func newHookDB(t testing.TB, name, url string) (*pgxpool.Pool, *Sealer, Webhook, string) {
	t.Helper()
	pool, sealer := newAccountDB(t, name)
	hook, secret, err := NewEndpoints(pool, sealer, Config{}).Create(context.Background(), "acc_1", url, Types, name)
	if err != nil {
		t.Fatal(err)
	}
	return pool, sealer, hook, secret
}
