// Package pgtest gives tests a real PostgreSQL: one throwaway server per test
// binary (started on first use from the machine's binaries, fsync off) and a
// fresh database per test.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-dev/switchboard/persistence/localpg"
)

var (
	once    sync.Once
	server  *localpg.Server
	dir     string
	errOnce error
	counter atomic.Int64
)

// Main runs the tests of a package and stops the shared server afterwards.
// Use it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.Stop()
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Server returns the shared server, starting it on first use.
func Server(t testing.TB) *localpg.Server {
	t.Helper()
	once.Do(func() {
		dir, errOnce = os.MkdirTemp("", "switchboard-pgtest-")
		if errOnce != nil {
			return
		}
		server, errOnce = localpg.Start(context.Background(), localpg.Options{Dir: dir, Fast: true})
	})
	if errOnce != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", errOnce)
	}
	return server
}

var nonWord = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates an empty database for the calling test and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Server(t)
	name := nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%s", counter.Add(1), name)
	url, err := s.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return url
}
