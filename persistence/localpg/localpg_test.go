package localpg

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

// TestMain doubles as the child of TestServerStopsWhenItsOwnerDies: with
// LOCALPG_TEST_OWNER set, the test binary starts a server there, prints the
// server's pid and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("LOCALPG_TEST_OWNER"); dir != "" {
		s, err := Start(context.Background(), Options{Dir: dir, Fast: true})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(s.cmd.Process.Pid)
		select {}
	}
	os.Exit(m.Run())
}

func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "switchboard-localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func mustStart(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOneServerPerDirectory(t *testing.T) {
	dir := testDir(t)
	s := mustStart(t, dir)
	if _, err := Start(context.Background(), Options{Dir: dir, Fast: true}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second start on one directory: %v, want refused", err)
	}
	s.Stop()
	mustStart(t, dir).Stop() // the lock is free again
}

// A server whose owner died without stopping it (started by hand here,
// without the parent-death signal) is stopped by the next start, which
// then succeeds on the same data.
func TestStartStopsAnOrphanedServer(t *testing.T) {
	dir := testDir(t)
	s := mustStart(t, dir)
	conn, err := pgx.Connect(context.Background(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	s.Stop()

	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := serverCredential()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "pgdata")
	orphan := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", dir)
	orphan.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- orphan.Wait() }()
	t.Cleanup(func() { _ = orphan.Process.Kill() })
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	poll.Until(t, time.Minute, "the hand-started server to accept connections", func() bool {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			c.Close(context.Background())
		}
		return err == nil
	})

	s = mustStart(t, dir)
	defer s.Stop()
	select {
	case <-exited:
	default:
		t.Fatal("the orphaned server still runs beside the new one")
	}
	conn, err = pgx.Connect(context.Background(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var x int
	if err := conn.QueryRow(context.Background(), "SELECT x FROM kept").Scan(&x); err != nil || x != 7 {
		t.Fatalf("data after the orphan's shutdown: %d, %v", x, err)
	}
}

// A process that dies by SIGKILL takes its server down with it, so the
// next start on the directory succeeds.
func TestServerStopsWhenItsOwnerDies(t *testing.T) {
	dir := testDir(t)
	owner := exec.Command(os.Args[0], "-test.run=^$")
	owner.Env = append(os.Environ(), "LOCALPG_TEST_OWNER="+dir)
	out, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	owner.Stderr = os.Stderr
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Process.Kill(); _ = owner.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("owner: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("owner said %q", line)
	}
	data := filepath.Join(dir, "pgdata")
	if !runsOn(pid, data) {
		t.Fatalf("owner's server %d does not run on %s", pid, data)
	}
	if err := owner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = owner.Wait()
	poll.Until(t, time.Minute, "the owner's server to stop", func() bool { return !runsOn(pid, data) })
	mustStart(t, dir).Stop()
}
