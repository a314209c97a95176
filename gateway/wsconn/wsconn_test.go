package wsconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/poll"
)

func TestCorkSendsABatchInOneWrite(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c := NewCork(server, time.Second, nil)

	c.Cork()
	for _, s := range []string{"one ", "two ", "three"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing left while corked: net.Pipe is unbuffered, so a write that
	// reached it would block here, not return.
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := client.Read(buf)
		got <- string(buf[:n])
	}()
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	// One read of the peer sees the whole batch: it was one write.
	if s := <-got; s != "one two three" {
		t.Fatalf("peer read %q in one read", s)
	}

	// Uncorked, a write goes straight through.
	go func() { _, _ = c.Write([]byte("pong")) }()
	buf := make([]byte, 16)
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("uncorked write: %q %v", buf[:n], err)
	}
	if err := c.Uncork(); err != nil { // nothing held: a no-op
		t.Fatal(err)
	}
}

func TestCorkWriteTimesOutOnAPeerThatDoesNotRead(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c := NewCork(server, 20*time.Millisecond, nil)
	c.Cork()
	_, _ = c.Write([]byte("nobody reads this"))
	if err := c.Uncork(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("uncork to a stalled peer: %v, want a deadline error", err)
	}
}

// TestCorkWriteGivesASlowReaderTime: the write timeout bounds a wait
// without progress, not a whole batch: a peer that takes a large batch
// slowly, a little within every timeout, gets all of it; one that stops
// taking it part-way is given up on.
func TestCorkWriteGivesASlowReaderTime(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	const batch, chunk = 32 << 10, 2 << 10
	c := NewCork(server, 100*time.Millisecond, nil)
	// readUpTo reads n bytes, pausing after each chunk, then stops reading.
	read := make(chan int, 1)
	readUpTo := func(n int, pause time.Duration) {
		got, buf := 0, make([]byte, chunk)
		for got < n {
			m, err := client.Read(buf)
			got += m
			if err != nil {
				break
			}
			time.Sleep(pause)
		}
		read <- got
	}
	write := func() error {
		c.Cork()
		_, _ = c.Write(make([]byte, batch))
		return c.Uncork()
	}
	// 16 chunks 10 ms apart take longer than the timeout, each well within it.
	go readUpTo(batch, 10*time.Millisecond)
	if err := write(); err != nil {
		t.Fatalf("a batch to a slow reader: %v", err)
	}
	if n := <-read; n != batch {
		t.Fatalf("the slow reader got %d of %d bytes", n, batch)
	}
	go readUpTo(batch/2, 0)
	if err := write(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a batch to a reader that stopped half-way: %v, want a deadline error", err)
	}
	<-read
}

func TestCorkReadsPendingBytesFirst(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	c := NewCork(server, time.Second, []byte("early "))
	go func() {
		_, _ = client.Write([]byte("late"))
		client.Close()
	}()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "early late" {
		t.Fatalf("read %q %v", b, err)
	}
}

// Writes from other goroutines (the websocket library's pongs and close
// frames) during a batch, corked or being uncorked, stay whole: every write
// reaches the peer contiguously.
func TestCorkKeepsEveryWriteWhole(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	c := NewCork(server, time.Second, nil)
	const unit = 8
	var wg sync.WaitGroup
	for _, ch := range []byte("ab") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				c.Cork()
				_, _ = c.Write(bytes.Repeat([]byte{ch}, unit))
				_, _ = c.Write(bytes.Repeat([]byte{ch + 1}, unit))
				_ = c.Uncork()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			_, _ = c.Write(bytes.Repeat([]byte("."), unit))
		}
	}()
	go func() { wg.Wait(); client.Close() }()
	b, _ := io.ReadAll(client)
	if len(b) != 250*unit {
		t.Fatalf("%d bytes, want %d", len(b), 250*unit)
	}
	for i := 0; i < len(b); i += unit {
		if chunk := b[i : i+unit]; !bytes.Equal(chunk, bytes.Repeat(chunk[:1], unit)) {
			t.Fatalf("a write was split at byte %d: %q", i, chunk)
		}
	}
}

// pipeListener hands an http.Server the server end of one net.Pipe.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// dialPipe opens a real websocket over net.Pipe to handler, whose
// connection goes through Hijacker.
func dialPipe(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *websocket.Conn {
	t.Helper()
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(handler)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		server, client := net.Pipe()
		select {
		case l.conns <- server:
			return client, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://pipe/", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// TestKeepalive: a client that reads answers pings and stays; one that
// stops reading stops answering and is given up on.
func TestKeepalive(t *testing.T) {
	pongs := atomic.Int64{}
	dead := make(chan string, 1)
	ready := make(chan *Keepalive, 1)
	client := dialPipe(t, func(w http.ResponseWriter, r *http.Request) {
		h := &Hijacker{ResponseWriter: w, WriteTimeout: time.Second}
		var k *Keepalive
		var mu sync.Mutex
		c, err := websocket.Accept(h, r, &websocket.AcceptOptions{OnPongReceived: func(context.Context, []byte) {
			pongs.Add(1)
			mu.Lock()
			defer mu.Unlock()
			k.Touch()
		}})
		if err != nil {
			t.Error(err)
			return
		}
		if h.Cork == nil {
			t.Error("Hijacker did not set its Cork")
		}
		mu.Lock()
		k = StartKeepalive(context.Background(), KeepaliveConfig{Interval: 10 * time.Millisecond, Idle: 150 * time.Millisecond, Ping: c.Ping,
			Dead: func(reason string) {
				dead <- reason
				_ = c.CloseNow()
			}})
		mu.Unlock()
		ready <- k
		// The server reads too: pongs are handled by a reader.
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	})
	k := <-ready
	readCtx, stopReading := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		_, _, _ = client.Read(readCtx) // answers pings while it reads
	}()
	// Several rounds of pings outlast the idle timeout without dying.
	staysAlive(t, dead, "20 pongs", func() bool { return pongs.Load() >= 20 })
	stopReading()
	<-readerDone
	givenUp(t, dead, ReasonNoPong, ReasonIdle)
	k.Stop() // after dead: harmless
}

// staysAlive waits until done, failing if the keepalive gives up first.
func staysAlive(t *testing.T, dead <-chan string, what string, done func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, func() bool {
		select {
		case reason := <-dead:
			t.Fatalf("a live peer was given up on (%s) before %s", reason, what)
		default:
		}
		return done()
	})
}

// givenUp waits for the keepalive to give up, for one of reasons.
func givenUp(t *testing.T, dead <-chan string, reasons ...string) {
	t.Helper()
	select {
	case reason := <-dead:
		if !slices.Contains(reasons, reason) {
			t.Fatalf("given up for %q, want one of %q", reason, reasons)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent peer was never given up on")
	}
}

// Stop, from any goroutine and at any time, is final: no tick re-arms and
// dead is never called after it.
func TestKeepaliveStopIsFinal(t *testing.T) {
	var deaths, pings atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := StartKeepalive(context.Background(), KeepaliveConfig{Interval: time.Microsecond, Idle: time.Hour,
				Ping: func(context.Context) error { pings.Add(1); return nil },
				Dead: func(string) { deaths.Add(1) }})
			k.Stop()
			k.Stop()
		}()
	}
	wg.Wait()
	// A tick already running when Stop came may ping once more, but none
	// re-arms: the count settles. Nothing announces "no more ticks", so
	// this watches for a while.
	settled := pings.Load()
	for range 5 {
		time.Sleep(5 * time.Millisecond)
		settled = max(settled, pings.Load())
	}
	time.Sleep(10 * time.Millisecond)
	if n := pings.Load(); n != settled || n > 50 {
		t.Fatalf("stopped keepalives kept pinging: %d then %d pings", settled, n)
	}
	if deaths.Load() != 0 {
		t.Fatalf("dead called %d times for stopped keepalives", deaths.Load())
	}
}

// A keepalive whose context ended does nothing more.
func TestKeepaliveEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pinged := make(chan struct{}, 1)
	k := StartKeepalive(ctx, KeepaliveConfig{Interval: time.Microsecond, Idle: time.Hour,
		Ping: func(context.Context) error { pinged <- struct{}{}; return nil },
		Dead: func(string) { t.Error("dead called after the context ended") }})
	defer k.Stop()
	select {
	case <-pinged:
		t.Fatal("pinged after the context ended")
	case <-time.After(20 * time.Millisecond):
	}
}

// The idle deadline counts from the last Touch: a peer from which nothing
// arrived for idle is dead even when pings seem to succeed.
func TestKeepaliveIdle(t *testing.T) {
	dead := make(chan string, 1)
	k := StartKeepalive(context.Background(), KeepaliveConfig{Interval: 5 * time.Millisecond, Idle: 30 * time.Millisecond,
		Ping: func(context.Context) error { return nil }, Dead: func(reason string) { dead <- reason }})
	defer k.Stop()
	givenUp(t, dead, ReasonIdle)
}

// TestKeepaliveCountsProgress: a peer that keeps acknowledging what is
// sent stays, though its pongs never come back in time (they wait behind a
// backlog it reads slowly), or though no ping is sent at all (a write to
// it is under way: a ping would wait behind it, and the websocket library
// closes a connection whose ping waits 5 s); once it stops acknowledging,
// it is given up on.
func TestKeepaliveCountsProgress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ping    func(context.Context) error
		writing func() bool
		reasons []string
	}{
		{"pong behind a backlog", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, nil,
			[]string{ReasonNoPong, ReasonIdle}},
		{"during a write", func(context.Context) error { t.Error("pinged during a write"); return nil }, func() bool { return true },
			[]string{ReasonIdle}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var acked, looks atomic.Uint64
			reading := atomic.Bool{}
			reading.Store(true)
			dead := make(chan string, 1)
			k := StartKeepalive(context.Background(), KeepaliveConfig{Interval: 2 * time.Millisecond, Idle: 40 * time.Millisecond,
				Ping: tc.ping, Writing: tc.writing, Dead: func(reason string) { dead <- reason },
				Acked: func() uint64 {
					looks.Add(1)
					if reading.Load() {
						return acked.Add(1)
					}
					return acked.Load()
				}})
			defer k.Stop()
			staysAlive(t, dead, "20 looks at the acknowledged bytes", func() bool { return looks.Load() >= 20 })
			reading.Store(false)
			givenUp(t, dead, tc.reasons...)
		})
	}
}

// TestTCPAcked reads what a TCP peer acknowledged: it grows as the peer
// takes what is written, and it is nil for a connection that is not TCP.
func TestTCPAcked(t *testing.T) {
	if a, _ := net.Pipe(); TCPAcked(a) != nil {
		t.Fatal("TCPAcked of a pipe is not nil")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	acked := TCPAcked(c)
	if acked == nil {
		t.Fatal("TCPAcked of a TCP connection is nil")
	}
	before := acked()
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "64 KiB acknowledged", func() bool { return acked()-before >= 64<<10 })
	c.Close()
	if n := <-got; n != 64<<10 {
		t.Fatalf("the peer read %d bytes", n)
	}
}
