package pgtest_test

import (
	"context"
	"github.com/jackc/pgx/v5"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
	"testing"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
func TestNewDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatal(err, one)
	}
}
