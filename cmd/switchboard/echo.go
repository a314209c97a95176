package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchboard-dev/switchboard/consumers/webhooks"
)

// webhookEcho is `switchboard webhook-echo`: a tiny webhook receiver for
// trying webhooks by hand. It verifies each delivery's signature and prints
// the event.
func webhookEcho(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("switchboard webhook-echo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "where to listen")
	secret := fs.String("secret", os.Getenv("WEBHOOK_SECRET"), "the webhook's secret (whsec_...), or WEBHOOK_SECRET")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *secret == "" {
		fmt.Fprintln(os.Stderr, "switchboard webhook-echo: --secret (or WEBHOOK_SECRET) is required")
		return 2
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := webhooks.Verify(*secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			fmt.Printf("REJECTED %s: %v\n", r.Header.Get("webhook-id"), err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("%s verified\n%s\n\n", r.Header.Get("webhook-id"), body)
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard webhook-echo:", err)
		return 1
	}
	fmt.Printf("webhook-echo listening on http://%s/ (Ctrl-C stops)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "switchboard webhook-echo:", err)
		return 1
	}
	return 0
}
