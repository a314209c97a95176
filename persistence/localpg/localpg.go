// Package localpg runs a private PostgreSQL server from the machine's own
// binaries: initdb into a folder on first use, then postgres on a loopback
// port. Tests use it for a throwaway server; `make run` for the one under
// .data/. When the process runs as root the server runs as the unprivileged
// "postgres" user (or "nobody"), because postgres refuses to run as root.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a server.
type Options struct {
	// Dir holds the data directory ("pgdata") and the socket; created if missing.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// Fast turns off fsync: for throwaway test servers only.
	Fast bool
	// Log receives the server's output; nil discards it.
	Log *os.File
}

// Server is a running PostgreSQL server.
type Server struct {
	// URL connects to the "postgres" database as the superuser "postgres".
	URL  string
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan error
	lock *os.File // flock held while the server is this process's
}

// BinDir finds the directory of initdb and postgres: $PG_BINDIR, else the
// newest /usr/lib/postgresql/*/bin, else the PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("localpg: PostgreSQL server binaries not found (install the postgresql package, or set PG_BINDIR)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initializes opts.Dir if needed and starts the server, returning once
// it accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("localpg: create %s: %w", dir, err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("localpg: chown %s: %w", dir, err)
		}
		// Every parent must be traversable by the unprivileged user.
		for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(p, fi.Mode().Perm()|0o011)
			}
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			lock.Close()
		}
	}()
	data := filepath.Join(dir, "pgdata")
	if err := stopOrphan(ctx, data); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		// Byte order for every comparison (the C collation: ids are
		// compared everywhere, and strcoll would slow each index), but
		// Unicode character classes, so that full-text search folds "CAFÉ"
		// to "café" as it folds ASCII. A system without the C.UTF-8 locale
		// gets plain C.
		var out []byte
		for _, ctype := range []string{"C.UTF-8", "C"} {
			initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
				"--auth=trust", "--encoding=UTF8", "--locale=C", "--lc-ctype="+ctype, "--no-instructions")
			initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			if out, err = initdb.CombinedOutput(); err == nil {
				break
			}
			_ = os.RemoveAll(data)
		}
		if err != nil {
			return nil, fmt.Errorf("localpg: initdb %s: %w\n%s", data, err, out)
		}
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", dir,
		"-c", "max_connections=200", "-c", "shared_buffers=256MB", "-c", "log_min_messages=warning"}
	if opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	// A server outliving this process would hold the data directory (the
	// next start fails on its postmaster.pid) and its port: when this
	// process dies, even by SIGKILL, the kernel asks the server for a fast
	// shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGINT}
	if opts.Log != nil {
		cmd.Stdout, cmd.Stderr = opts.Log, opts.Log
	}
	s := &Server{
		URL:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		Port: port, dir: dir, cmd: cmd, done: make(chan error, 1), lock: lock,
	}
	startErr := make(chan error, 1)
	go func() {
		// The parent-death signal is sent when the thread that started
		// the child exits, not the process: that thread stays with this
		// goroutine until the server has exited.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- fmt.Errorf("localpg: start postgres: %w", err)
			return
		}
		startErr <- nil
		s.done <- cmd.Wait()
	}()
	if err := <-startErr; err != nil {
		return nil, err
	}
	started = true
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// lockDir takes dir's lock file, so that two processes never run a server
// on one data directory; the kernel releases it when the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "localpg.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localpg: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("localpg: another process runs the PostgreSQL server in %s; stop it first", dir)
		}
		return nil, fmt.Errorf("localpg: lock %s: %w", dir, err)
	}
	return f, nil
}

// stopOrphan stops a server still running on data although no process holds
// the directory's lock: its owner died without stopping it (a machine
// without the parent-death signal, or a server started by hand). It gets a
// fast shutdown, as its owner would have given it; a postmaster.pid naming
// a process that is not this directory's server is left to postgres, which
// treats it as stale.
func stopOrphan(ctx context.Context, data string) error {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil // none: nothing runs there
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 || !runsOn(pid, data) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(60 * time.Second)
	for runsOn(pid, data) {
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: a PostgreSQL server left running on %s (pid %d) did not stop; stop it by hand", data, pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // another process's exit has no event to wait on
		}
	}
	return nil
}

// runsOn reports whether process pid is a postgres server on data.
func runsOn(pid int, data string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	return len(args) > 0 && filepath.Base(args[0]) == "postgres" && slices.Contains(args, data)
}

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.URL)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case exitErr := <-s.done:
			s.done <- exitErr
			return fmt.Errorf("localpg: postgres exited during start-up: %v (see the server log)", exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling a process that has no readiness event
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: postgres not ready after 60s: %w", err)
		}
	}
}

// CreateDatabase creates a database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var exists bool
		if qerr := conn.QueryRow(ctx, "SELECT true FROM pg_database WHERE datname=$1", name).Scan(&exists); qerr != nil || !exists {
			return "", fmt.Errorf("localpg: create database %s: %w", name, err)
		}
	}
	return strings.Replace(s.URL, "/postgres?", "/"+name+"?", 1), nil
}

// Stop shuts the server down (fast mode), waits for it to exit and frees
// the data directory.
func (s *Server) Stop() {
	defer s.lock.Close()
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		s.done <- <-s.done
	}
}

// serverCredential is who the server runs as: the current user, unless that
// is root, in which case "postgres" (or "nobody").
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("localpg: running as root and neither user postgres nor nobody exists")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
