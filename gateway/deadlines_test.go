package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWorkDeadline: a request's context ends Timeouts.Work after its body
// is whole (after its headers without one), not counting a slow body's
// arrival; a websocket upgrade's does not end.
func TestWorkDeadline(t *testing.T) {
	const work = 100 * time.Millisecond
	type seen struct {
		bodyWhole error // the context's error once the body was read
		cause     error // why the context ended
		waited    time.Duration
	}
	seenc := make(chan seen, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Header.Get("X-Unread") == "" {
			_, _ = io.ReadAll(r.Body)
		}
		var s seen
		s.bodyWhole = r.Context().Err()
		if r.Header.Get("Upgrade") != "" {
			// Outlast the work deadline: the context must still be live.
			select {
			case <-r.Context().Done():
				s.cause = context.Cause(r.Context())
			case <-time.After(3 * work):
			}
		} else {
			<-r.Context().Done()
			s.cause = context.Cause(r.Context())
		}
		s.waited = time.Since(start)
		seenc <- s
		writeErr(w, s.cause)
	})
	srv := httptest.NewServer(Deadlines(h, Timeouts{Work: work, Body: 3 * work}.WithDefaults()))
	defer srv.Close()

	t.Run("without a body", func(t *testing.T) {
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		s := <-seenc
		if !errors.Is(s.cause, errWorkTimeout) || res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("cause %v, status %d; want the work deadline and 503", s.cause, res.StatusCode)
		}
	})
	t.Run("after a slow body", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		const body = `{"name":"slow"}`
		if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body[:5]); err != nil {
			t.Fatal(err)
		}
		// The client takes longer than the work deadline to send its body.
		time.Sleep(2 * work)
		if _, err := io.WriteString(conn, body[5:]); err != nil {
			t.Fatal(err)
		}
		s := <-seenc
		if s.bodyWhole != nil || !errors.Is(s.cause, errWorkTimeout) {
			t.Fatalf("context when the body was whole: %v, then %v; want live, then the work deadline", s.bodyWhole, s.cause)
		}
	})
	t.Run("before the body is read", func(t *testing.T) {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"name":"x"}`))
		req.Header.Set("X-Unread", "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if s := <-seenc; !errors.Is(s.cause, errWorkTimeout) || s.waited < 3*work {
			t.Fatalf("cause %v after %v; want the work deadline after the body's and the work's times", s.cause, s.waited)
		}
	})
	t.Run("websocket upgrade", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if s := <-seenc; s.cause != nil {
			t.Fatalf("an upgrade's context ended after %v: %v", s.waited, s.cause)
		}
	})
}
