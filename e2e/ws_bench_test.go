package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/switchboard-dev/switchboard/server"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWSFreshness measures the time from sending an inbound message
// over REST to each of the inbox's 4 subscribed agents receiving the update
// that carries it, at increasing rates (run with -benchtime=1x; each rate
// runs for a few seconds).
func BenchmarkWSFreshness(b *testing.B) {
	// One key holds all 40 connections: lift its per-credential cap.
	n := testNode(b, func(c *server.Config) { c.Limits.WSPerCredential = 100 })
	c := api{t: b, base: n.URL()}
	tn := newTenant(b, c, "Bench")
	k := c.with(tn.key)
	const inboxes, subsPerInbox = 10, 4
	ids := []string{tn.inbox}
	for i := 1; i < inboxes; i++ {
		ids = append(ids, k.must(201, "POST", "/v1/inboxes", map[string]any{"name": fmt.Sprint("inbox ", i)})["id"].(string))
	}
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	var lat []time.Duration
	var wg sync.WaitGroup
	for _, id := range ids {
		for range subsPerInbox {
			ws := mustWS(b, n.URL(), wsOpts{token: tn.key})
			ws.subscribe(id, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range ws.frames {
					if f.typ() != "update" {
						continue
					}
					body := lastMessageBody(f)
					mu.Lock()
					if t0, ok := sentAt[body]; ok {
						lat = append(lat, f.at.Sub(t0))
					}
					mu.Unlock()
				}
			}()
		}
	}
	for _, rate := range []int{250, 500, 1000, 2000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			mu.Lock()
			lat = lat[:0]
			mu.Unlock()
			const seconds = 3
			total := rate * seconds
			interval := time.Second / time.Duration(rate)
			var next atomic.Int64
			var late atomic.Int64
			start := time.Now()
			var sw sync.WaitGroup
			for w := range 32 {
				sw.Add(1)
				go func() {
					defer sw.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= total {
							return
						}
						due := start.Add(time.Duration(i) * interval)
						if d := time.Until(due); d > 0 {
							time.Sleep(d) // pacing the load, not synchronization
						} else if d < -10*time.Millisecond {
							late.Add(1)
						}
						body := fmt.Sprintf("r%d-%d-%d", rate, w, i)
						mu.Lock()
						sentAt[body] = time.Now()
						mu.Unlock()
						inbound(k, ids[i%inboxes], phoneN(i%500), body)
					}
				}()
			}
			sw.Wait()
			elapsed := time.Since(start)
			want := total * subsPerInbox
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				got := len(lat)
				mu.Unlock()
				if got >= want || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond) // polling a counter fed by the readers
			}
			mu.Lock()
			ds := append([]time.Duration(nil), lat...)
			mu.Unlock()
			p50, p99, mx := percentiles(ds)
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(mx.Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(total)/elapsed.Seconds(), "msg/s")
			b.Logf("rate %d/s (achieved %.0f/s, %d sends late >10ms): %d deliveries of %d: p50 %v p99 %v max %v",
				rate, float64(total)/elapsed.Seconds(), late.Load(), len(ds), want, p50, p99, mx)
		})
	}
}

// BenchmarkWSIdleMemory measures the server's memory per idle subscribed
// connection. The clients are bare sockets that did the handshake by hand,
// so that the measure is the server's (run with -benchtime=1x).
func BenchmarkWSIdleMemory(b *testing.B) {
	const conns = 2000
	raiseNoFile(b, 2*conns+1000)
	// The bare clients answer no pings: keep the keepalive out of the way.
	// One key holds every connection: lift its per-credential cap.
	n := testNode(b, func(c *server.Config) {
		c.WS.PingInterval, c.WS.IdleTimeout, c.Limits.WSPerCredential = time.Hour, 2*time.Hour, 2*conns
	})
	c := api{t: b, base: n.URL()}
	tn := newTenant(b, c, "Bench")
	addr := strings.TrimPrefix(n.URL(), "http://")
	// Warm up one connection so that one-time allocations do not count.
	warm := rawWS(b, addr, tn.key, tn.inbox)
	defer warm.Close()
	measure := func() (heap, stack uint64, goroutines int) {
		for range 3 {
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
	}
	h0, s0, g0 := measure()
	held := make([]net.Conn, 0, conns)
	for range conns {
		held = append(held, rawWS(b, addr, tn.key, tn.inbox))
	}
	h1, s1, g1 := measure()
	per := float64((h1+s1)-(h0+s0)) / conns
	b.ReportMetric(per/1024, "KiB/conn")
	b.ReportMetric(float64(g1-g0)/conns, "goroutines/conn")
	b.Logf("%d idle subscribed connections: heap +%d KiB, stacks +%d KiB, %.1f KiB per connection (server and bare client sockets), %.2f goroutines per connection",
		conns, (h1-h0)/1024, (s1-s0)/1024, per/1024, float64(g1-g0)/conns)
	for _, c := range held {
		_ = c.Close()
	}
}

// rawWS opens a websocket by hand, subscribes, reads up to the snapshot and
// then holds the socket without reading.
func rawWS(tb testing.TB, addr, token, inbox string) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v1/ws HTTP/1.1\r\nAuthorization: Bearer %s\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", token, addr)
	br := bufio.NewReaderSize(conn, 256)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		tb.Fatalf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	payload := []byte(`{"type":"subscribe","inbox_id":"` + inbox + `"}`)
	frame := []byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i, c := range payload {
		frame = append(frame, c^[]byte{1, 2, 3, 4}[i%4])
	}
	if _, err := conn.Write(frame); err != nil {
		tb.Fatal(err)
	}
	var seen []byte
	buf := make([]byte, 512)
	for {
		k, err := br.Read(buf)
		if err != nil {
			tb.Fatalf("reading the snapshot: %v after %q", err, seen)
		}
		seen = append(seen, buf[:k]...)
		if bytes.Contains(seen, []byte(`"snapshot"`)) {
			break
		}
		if len(seen) > 256 {
			seen = seen[len(seen)-64:]
		}
	}
	return conn
}
